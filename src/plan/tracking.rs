//! A new branch's upstream, decided as `git branch <new> <start>` decides it (branch.c's
//! `setup_tracking`), so `git worktree add -b` and flowloom make the same `branch.*` config.

use crate::read::tracking::{AutoSetupMerge, BaseBranch, Upstream};

/// The upstream of a new branch `branch` started from `base` (the branch the start point
/// names, if any) under `setting`:
/// - `true` (the default): a remote-tracking start point is tracked;
/// - `always`: a local branch too (`remote = .`);
/// - `simple`: a remote-tracking one only when it has the new branch's name;
/// - `inherit`: the start branch's own upstream, if it is a local branch with one;
/// - `false`: nothing. A tag, a commit or an expression is never tracked.
pub fn upstream_for(setting: &AutoSetupMerge, base: Option<&BaseBranch>, branch: &str) -> Option<Upstream> {
    match (setting, base?) {
        (AutoSetupMerge::True | AutoSetupMerge::Always, BaseBranch::Remote(upstream)) => Some(upstream.clone()),
        (AutoSetupMerge::Simple, BaseBranch::Remote(upstream))
            if upstream.merge.strip_prefix("refs/heads/") == Some(branch) =>
        {
            Some(upstream.clone())
        }
        (AutoSetupMerge::Always, BaseBranch::Local { name, .. }) => Some(Upstream {
            remote: ".".to_owned(),
            merge: format!("refs/heads/{name}"),
        }),
        (AutoSetupMerge::Inherit, BaseBranch::Local { upstream, .. }) => upstream.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(branch: &str) -> BaseBranch {
        BaseBranch::Remote(Upstream {
            remote: "origin".into(),
            merge: format!("refs/heads/{branch}"),
        })
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
        let up = |remote: &str, merge: &str| {
            Some(Upstream {
                remote: remote.into(),
                merge: merge.into(),
            })
        };
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
}
