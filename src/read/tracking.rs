//! What decides a new branch's upstream as `git branch` (and so `git worktree add -b`)
//! decides it: `branch.autoSetupMerge`, and which branch the start point names.

use gix::bstr::ByteSlice;

/// `branch.<name>.remote` and `.merge` of an upstream (`remote` is `.` for a local branch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upstream {
    pub remote: String,
    /// A full ref name on the remote, `refs/heads/<branch>`.
    pub merge: String,
}

/// `branch.autoSetupMerge` (git's default: `true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoSetupMerge {
    False,
    #[default]
    True,
    Always,
    Inherit,
    Simple,
    /// A value git refuses (`bad boolean config value`): no branch is made from it.
    Invalid(String),
}

/// The branch a start point names, once git's rules expanded it (`HEAD` to the branch it
/// points to).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum BaseBranch {
    /// `refs/heads/<name>`, with the upstream it has (for `inherit`).
    Local { name: String, upstream: Option<Upstream> },
    /// A remote-tracking branch, as the remote and its branch there.
    Remote(Upstream),
}

/// `branch.autoSetupMerge` as git reads it.
pub fn auto_setup_merge(repo: &gix::Repository) -> AutoSetupMerge {
    let config = repo.config_snapshot();
    let Some(value) = config.string("branch.autoSetupMerge") else {
        return AutoSetupMerge::True;
    };
    let value = value.to_str_lossy().into_owned();
    match value.to_ascii_lowercase().as_str() {
        "always" => AutoSetupMerge::Always,
        "inherit" => AutoSetupMerge::Inherit,
        "simple" => AutoSetupMerge::Simple,
        _ => match config.boolean("branch.autoSetupMerge") {
            Some(true) => AutoSetupMerge::True,
            Some(false) => AutoSetupMerge::False,
            None => AutoSetupMerge::Invalid(value),
        },
    }
}

/// The branch `spec` names, if it names one (not a tag, a commit or an expression).
pub fn base_branch(repo: &gix::Repository, spec: &str) -> Option<BaseBranch> {
    let mut reference = repo.try_find_reference(spec).ok()??;
    // git's dwim follows symbolic refs (`HEAD` → `refs/heads/main`).
    if let Some(target) = reference.target().try_name().map(|n| n.to_owned()) {
        reference = repo.try_find_reference(target.as_ref()).ok()??;
    }
    let full = reference.name().as_bstr().to_str_lossy().into_owned();
    if let Some(name) = full.strip_prefix("refs/heads/") {
        let upstream = configured_upstream(repo, name);
        return Some(BaseBranch::Local {
            name: name.to_owned(),
            upstream,
        });
    }
    let rest = full.strip_prefix("refs/remotes/")?;
    // The remote whose name leads the ref (the default fetch refspec's mapping).
    let names = repo.remote_names();
    let remote = names
        .iter()
        .map(|n| n.to_str_lossy().into_owned())
        .filter(|n| rest.starts_with(&format!("{n}/")))
        .max_by_key(String::len)?;
    let branch = &rest[remote.len() + 1..];
    Some(BaseBranch::Remote(Upstream {
        merge: format!("refs/heads/{branch}"),
        remote,
    }))
}

fn configured_upstream(repo: &gix::Repository, branch: &str) -> Option<Upstream> {
    let config = repo.config_snapshot();
    let section = config.plumbing().section("branch", Some(branch.into())).ok()?;
    let remote = section.value("remote")?.to_str_lossy().into_owned();
    let merge = section.value("merge")?.to_str_lossy().into_owned();
    Some(Upstream { remote, merge })
}

/// The refs a plain name `spec` expands to by git's rules (`<spec>`, `refs/<spec>`,
/// `refs/tags/…`, `refs/heads/…`, `refs/remotes/…`, `refs/remotes/…/HEAD`): more than one
/// and `git branch <new> <spec>` (so `git worktree add -b`) refuses it as ambiguous. With
/// `core.warnAmbiguousRefs=false` git takes the first and so is never ambiguous.
pub fn refs_named(repo: &gix::Repository, spec: &str) -> Vec<String> {
    if repo.config_snapshot().boolean("core.warnAmbiguousRefs") == Some(false) {
        return Vec::new();
    }
    let rules = [
        "{}",
        "refs/{}",
        "refs/tags/{}",
        "refs/heads/{}",
        "refs/remotes/{}",
        "refs/remotes/{}/HEAD",
    ];
    rules
        .iter()
        .map(|rule| rule.replace("{}", spec))
        .filter(|full| {
            let Ok(name) = gix::refs::FullName::try_from(full.as_str()) else {
                return false;
            };
            // `HEAD` and the like are names only at the top; everything else under refs/.
            (full.starts_with("refs/") || !full.contains('/'))
                && repo.try_find_reference(name.as_ref()).ok().flatten().is_some()
        })
        .collect()
}
