//! A new branch's upstream, decided as `git branch <new> <start>` decides it (branch.c's
//! `setup_tracking`), so `git worktree add -b` and flowloom make the same `branch.*` config.

use crate::read::state::BaseFailure;
use crate::read::tracking::{AutoSetupMerge, AutoSetupRebase, BaseBranch, Upstream};

/// How a new branch gets its upstream: `branch.autoSetupMerge` and `branch.autoSetupRebase`.
#[derive(Debug, Clone, Copy)]
pub struct Tracking<'a> {
    pub merge: &'a AutoSetupMerge,
    pub rebase: AutoSetupRebase,
}

/// The upstream of a new branch `branch` started from `base` (the branch the start point
/// names, if any) under `setting`:
/// - `true` (the default): a ref a remote's fetch refspec writes is tracked;
/// - `always`: a local branch too (`remote = .`);
/// - `simple`: a remote's one only when it has the new branch's name;
/// - `inherit`: the start branch's own upstream (every `merge` of it), if it is a local
///   branch with one;
/// - `false`: nothing. A tag, a commit or an expression is never tracked.
///
/// `branch.autoSetupRebase` adds `rebase = true` (`local`: to a local start's upstream;
/// `remote`: to the others, an inherited `remote = .` included, as git counts it).
/// A ref more than one remote writes is refused where git would track it.
pub fn upstream_for(
    setting: Tracking<'_>,
    base: Option<&BaseBranch>,
    branch: &str,
) -> Result<Option<Upstream>, BaseFailure> {
    let Some(base) = base else { return Ok(None) };
    let (upstream, local) = match (setting.merge, base) {
        (
            AutoSetupMerge::True | AutoSetupMerge::Always | AutoSetupMerge::Simple,
            BaseBranch::TrackedByMany { reference, remotes },
        ) => {
            return Err(BaseFailure::AmbiguousUpstream {
                reference: reference.clone(),
                remotes: remotes.clone(),
            });
        }
        (AutoSetupMerge::True | AutoSetupMerge::Always, BaseBranch::Remote(upstream)) => (upstream.clone(), false),
        (AutoSetupMerge::Simple, BaseBranch::Remote(upstream))
            if upstream.merge.strip_prefix("refs/heads/") == Some(branch) =>
        {
            (upstream.clone(), false)
        }
        (AutoSetupMerge::Always, BaseBranch::Local { name, .. }) => {
            (Upstream::new(".", format!("refs/heads/{name}")), true)
        }
        (
            AutoSetupMerge::Inherit,
            BaseBranch::Local {
                upstream: Some(upstream),
                ..
            },
        ) => (upstream.clone(), false),
        _ => return Ok(None),
    };
    let rebase = match setting.rebase {
        AutoSetupRebase::Never => false,
        AutoSetupRebase::Local => local,
        AutoSetupRebase::Remote => !local,
        AutoSetupRebase::Always => true,
    };
    Ok(Some(Upstream { rebase, ..upstream }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(branch: &str) -> BaseBranch {
        BaseBranch::Remote(Upstream::new("origin", format!("refs/heads/{branch}")))
    }

    fn upstream_for(setting: &AutoSetupMerge, base: Option<&BaseBranch>, branch: &str) -> Option<Upstream> {
        let tracking = Tracking {
            merge: setting,
            rebase: AutoSetupRebase::Never,
        };
        super::upstream_for(tracking, base, branch).expect("not ambiguous")
    }

    fn local(upstream: Option<Upstream>) -> BaseBranch {
        BaseBranch::Local {
            name: "feat".into(),
            upstream,
        }
    }

    #[test]
    fn upstream_follows_auto_setup_merge_as_git_branch_does() {
        use AutoSetupMerge::*;
        let up = |remote: &str, merge: &str| Some(Upstream::new(remote, merge));
        let origin_develop = up("origin", "refs/heads/develop");
        assert_eq!(upstream_for(&True, Some(&remote("develop")), "x"), origin_develop);
        assert_eq!(upstream_for(&True, Some(&local(origin_develop.clone())), "x"), None);
        assert_eq!(
            upstream_for(&Always, Some(&local(None)), "x"),
            up(".", "refs/heads/feat")
        );
        assert_eq!(upstream_for(&Always, None, "x"), None);
        assert_eq!(upstream_for(&False, Some(&remote("develop")), "x"), None);
        assert_eq!(upstream_for(&Simple, Some(&remote("develop")), "x"), None);
        assert_eq!(
            upstream_for(&Simple, Some(&remote("x")), "x"),
            up("origin", "refs/heads/x")
        );
        assert_eq!(
            upstream_for(&Inherit, Some(&local(origin_develop.clone())), "x"),
            origin_develop
        );
        assert_eq!(upstream_for(&Inherit, Some(&remote("develop")), "x"), None);
    }

    #[test]
    fn rebase_follows_auto_setup_rebase_and_many_remotes_are_refused() {
        let with = |merge: &'static AutoSetupMerge, rebase, base: &BaseBranch| {
            super::upstream_for(Tracking { merge, rebase }, Some(base), "x")
                .expect("one remote")
                .map(|u| u.rebase)
        };
        let origin = remote("develop");
        let feat = local(Some(Upstream::new(".", "refs/heads/main")));
        assert_eq!(
            with(&AutoSetupMerge::True, AutoSetupRebase::Remote, &origin),
            Some(true)
        );
        assert_eq!(
            with(&AutoSetupMerge::True, AutoSetupRebase::Local, &origin),
            Some(false)
        );
        assert_eq!(with(&AutoSetupMerge::Always, AutoSetupRebase::Local, &feat), Some(true));
        assert_eq!(
            with(&AutoSetupMerge::Always, AutoSetupRebase::Remote, &feat),
            Some(false)
        );
        // An inherited `remote = .` is a remote to git's `should_setup_rebase`.
        assert_eq!(
            with(&AutoSetupMerge::Inherit, AutoSetupRebase::Remote, &feat),
            Some(true)
        );
        assert_eq!(
            with(&AutoSetupMerge::Inherit, AutoSetupRebase::Local, &feat),
            Some(false)
        );
        let many = BaseBranch::TrackedByMany {
            reference: "refs/remotes/origin/main".into(),
            remotes: vec!["origin".into(), "two".into()],
        };
        let tracking = |merge| Tracking {
            merge,
            rebase: AutoSetupRebase::Never,
        };
        assert!(super::upstream_for(tracking(&AutoSetupMerge::True), Some(&many), "x").is_err());
        assert_eq!(
            super::upstream_for(tracking(&AutoSetupMerge::False), Some(&many), "x"),
            Ok(None)
        );
        assert_eq!(
            super::upstream_for(tracking(&AutoSetupMerge::Inherit), Some(&many), "x"),
            Ok(None)
        );
    }
}
