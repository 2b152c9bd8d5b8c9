//! What decides a new branch's upstream as `git branch` (and so `git worktree add -b`)
//! decides it: `branch.autoSetupMerge`, and which branch the start point names.

use gix::bstr::ByteSlice;

/// `branch.<name>.remote` and `.merge` of an upstream (`remote` is `.` for a local branch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upstream {
    pub remote: String,
    /// A full ref name on the remote, `refs/heads/<branch>`.
    pub merge: String,
    /// More `merge` values, in order: `inherit` copies every one the start branch has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_merge: Vec<String>,
    /// `branch.<name>.rebase = true`, as `branch.autoSetupRebase` asks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebase: bool,
}

impl Upstream {
    /// An upstream with one `merge` value and no `rebase`.
    pub fn new(remote: impl Into<String>, merge: impl Into<String>) -> Upstream {
        Upstream {
            remote: remote.into(),
            merge: merge.into(),
            also_merge: Vec::new(),
            rebase: false,
        }
    }
}

/// `branch.autoSetupRebase` (git's default: `never`): which new upstreams also get
/// `branch.<name>.rebase = true` (branch.c, `should_setup_rebase`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoSetupRebase {
    #[default]
    Never,
    /// Upstreams that are local branches (`always` on a local start point).
    Local,
    /// Upstreams on a remote (`inherit` of a branch tracking a local one counts: git
    /// names its remote `.`).
    Remote,
    Always,
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
    /// A ref one remote's fetch refspecs write (`refs/remotes/<remote>/<branch>` by
    /// default), as the remote and the ref there it fetches.
    Remote(Upstream),
    /// A ref the fetch refspecs of more than one remote write: git refuses to pick an
    /// upstream for it (`not tracking: ambiguous information for ref`).
    TrackedByMany { reference: String, remotes: Vec<String> },
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

/// `branch.autoSetupRebase` as git reads it (a value it does not know reads as `never`).
pub fn auto_setup_rebase(repo: &gix::Repository) -> AutoSetupRebase {
    let value = repo.config_snapshot().string("branch.autoSetupRebase");
    match value.as_ref().map(|v| v.as_slice()) {
        Some(b"local") => AutoSetupRebase::Local,
        Some(b"remote") => AutoSetupRebase::Remote,
        Some(b"always") => AutoSetupRebase::Always,
        _ => AutoSetupRebase::Never,
    }
}

/// The branch `spec` names, if it names one (not a tag, a commit or an expression), as
/// `git branch <new> <spec>` finds it (`dwim_ref`): `@{-N}`, `<branch>@{upstream}` and `@`
/// expanded first, a symbolic ref followed, and a ref outside `refs/heads/` a branch only
/// when a remote's fetch refspec writes it.
pub fn base_branch(repo: &gix::Repository, spec: &str) -> Option<BaseBranch> {
    let spec = expand_branch_marks(repo, spec)?;
    let mut reference = repo.try_find_reference(spec.as_str()).ok()??;
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
    let mut tracked = remotes_tracking(repo, &full);
    match tracked.len() {
        0 => None,
        1 => tracked.pop().map(BaseBranch::Remote),
        _ => Some(BaseBranch::TrackedByMany {
            reference: full,
            remotes: tracked.into_iter().map(|u| u.remote).collect(),
        }),
    }
}

/// `spec` with git's branch marks expanded (`interpret_branch_name`): `@{-N}` is the branch
/// checked out N switches ago (from `HEAD`'s reflog), `<branch>@{upstream}` (`@{u}`, any
/// case; `<branch>` empty for `HEAD`'s) the full name of that branch's upstream, `@` alone
/// `HEAD`. Anything else is `spec` itself. `None` when a mark names nothing.
pub fn expand_branch_marks(repo: &gix::Repository, spec: &str) -> Option<String> {
    if spec == "@" {
        return Some("HEAD".to_owned());
    }
    if let Some(n) = spec
        .strip_prefix("@{-")
        .and_then(|rest| rest.strip_suffix('}'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        return nth_prior_checkout(repo, n);
    }
    let Some(at) = spec.rfind("@{") else {
        return Some(spec.to_owned());
    };
    let mark = spec[at + 2..].strip_suffix('}').map(str::to_ascii_lowercase);
    if !matches!(mark.as_deref(), Some("u" | "upstream")) {
        return Some(spec.to_owned());
    }
    let branch = match &spec[..at] {
        "" | "HEAD" => repo.head_name().ok()??.shorten().to_str_lossy().into_owned(),
        name => name.strip_prefix("refs/heads/").unwrap_or(name).to_owned(),
    };
    let upstream = configured_upstream(repo, &branch)?;
    if upstream.remote == "." {
        return Some(upstream.merge);
    }
    fetch_refspecs(repo, &upstream.remote)
        .iter()
        .find_map(|(src, dst)| map_refspec(src, dst, &upstream.merge))
}

/// The branch `@{-n}` names: the `from` of the n-th latest "checkout: moving from A to B"
/// in `HEAD`'s reflog (`interpret_nth_prior_checkout`).
fn nth_prior_checkout(repo: &gix::Repository, n: usize) -> Option<String> {
    if n == 0 {
        return None;
    }
    let head = repo.find_reference("HEAD").ok()?;
    let mut log = head.log_iter();
    let entries = log.rev().ok()??;
    entries
        .filter_map(Result::ok)
        .filter_map(|line| {
            let message = line.message.to_str_lossy().into_owned();
            let rest = message.strip_prefix("checkout: moving from ")?;
            rest.find(" to ").map(|to| rest[..to].to_owned())
        })
        .nth(n - 1)
}

/// Every remote (in config order) whose fetch refspecs write `full`, as the remote and the
/// ref there its first such refspec fetches (branch.c, `find_tracked_branch`).
fn remotes_tracking(repo: &gix::Repository, full: &str) -> Vec<Upstream> {
    remote_names(repo)
        .into_iter()
        .filter_map(|remote| {
            let src = fetch_refspecs(repo, &remote)
                .iter()
                .find_map(|(src, dst)| map_refspec(dst, src, full))?;
            Some(Upstream::new(remote, src))
        })
        .collect()
}

/// The remotes of the configuration, once each, in the order their sections come.
fn remote_names(repo: &gix::Repository) -> Vec<String> {
    let config = repo.config_snapshot();
    let mut names: Vec<String> = Vec::new();
    for section in config.plumbing().sections_by_name("remote").into_iter().flatten() {
        if let Some(name) = section.header().subsection_name() {
            let name = name.to_str_lossy().into_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// `remote.<name>.fetch` as (source, destination) pairs; negative refspecs and refspecs
/// without a destination write nothing and are left out.
fn fetch_refspecs(repo: &gix::Repository, remote: &str) -> Vec<(String, String)> {
    let config = repo.config_snapshot();
    let values = config
        .plumbing()
        .strings_by("remote", Some(remote.into()), "fetch")
        .unwrap_or_default();
    values
        .iter()
        .filter_map(|spec| {
            let spec = spec.to_str_lossy();
            let spec = spec.trim();
            let spec = spec.strip_prefix('+').unwrap_or(spec);
            if spec.starts_with('^') {
                return None;
            }
            let (src, dst) = spec.split_once(':')?;
            (!dst.is_empty()).then(|| (src.to_owned(), dst.to_owned()))
        })
        .collect()
}

/// `name` through the refspec side `key` onto the side `value` (`match_name_with_pattern`):
/// a pattern (`refs/heads/*`) maps what its `*` matches; a plain name only itself.
fn map_refspec(key: &str, value: &str, name: &str) -> Option<String> {
    let Some((prefix, suffix)) = key.split_once('*') else {
        return (key == name).then(|| value.to_owned());
    };
    let middle = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    Some(value.replacen('*', middle, 1))
}

/// The upstream branch `branch` has: its last `remote` and every `merge`, as git reads them
/// (all of the file's `[branch "<branch>"]` sections).
fn configured_upstream(repo: &gix::Repository, branch: &str) -> Option<Upstream> {
    let config = repo.config_snapshot();
    let config = config.plumbing();
    let remote = config
        .string_by("branch", Some(branch.into()), "remote")?
        .to_str_lossy()
        .into_owned();
    let mut merges = config
        .strings_by("branch", Some(branch.into()), "merge")?
        .into_iter()
        .map(|m| m.to_str_lossy().into_owned())
        .filter(|m| !m.is_empty());
    let merge = merges.next()?;
    Some(Upstream {
        also_merge: merges.collect(),
        ..Upstream::new(remote, merge)
    })
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
