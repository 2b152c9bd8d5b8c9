//! What a new worktree's checkout reads, as git reads it there.

use gix::bstr::ByteSlice;

use crate::error::RepoError;

/// Whether `condition` (an `includeIf` subsection) is a `gitdir:` or `gitdir/i:` one.
fn is_gitdir_condition(condition: &[u8]) -> bool {
    let lower = condition.to_ascii_lowercase();
    lower.starts_with(b"gitdir:") || lower.starts_with(b"gitdir/i:")
}

/// Whether the config has an `includeIf "gitdir:…"` (or `gitdir/i:`) section, matched or not.
pub(crate) fn has_gitdir_condition(repo: &gix::Repository) -> bool {
    let config = repo.config_snapshot();
    config
        .plumbing()
        .sections_by_name("includeIf")
        .is_some_and(|mut sections| {
            sections.any(|s| {
                s.header()
                    .subsection_name()
                    .is_some_and(|n| is_gitdir_condition(n.as_bytes()))
            })
        })
}

/// git evaluates `includeIf "gitdir:…"` against the repository's own git dir, which for a
/// linked worktree is `.git/worktrees/<id>` (`repo_read_config` passes `repo->gitdir`);
/// gix evaluates it against the common dir, so a condition naming the main worktree's
/// `.git` would apply to every linked worktree's checkout too (and one naming
/// `.git/worktrees/` to none). Where the config has such a condition, its includes are
/// resolved again for this worktree: the sections that came from includes are dropped and
/// every `include`/`includeIf` followed anew with the worktree's git dir and branch.
pub(crate) fn config_as_git_reads_it(wt_repo: &mut gix::Repository) -> Result<(), RepoError> {
    let git_dir = wt_repo.git_dir().to_path_buf();
    if crate::fsutil::canonical(&git_dir) == crate::fsutil::canonical(wt_repo.common_dir()) {
        return Ok(());
    }
    if !has_gitdir_condition(wt_repo) {
        return Ok(());
    }
    let mut config = wt_repo.config_snapshot().plumbing().clone();
    let included: Vec<_> = config
        .sections_and_ids()
        .filter(|(section, _)| section.meta().level > 0)
        .map(|(_, id)| id)
        .collect();
    for id in included {
        config.remove_section_by_id(id);
    }
    let branch = wt_repo.head_name().ok().flatten();
    let home = gix::path::env::home_dir();
    // As gix: `%(prefix)/` is relative to the running program's folder.
    let install_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf));
    let options = gix::config::file::init::Options {
        includes: gix::config::file::includes::Options::follow(
            gix::config::path::interpolate::Context {
                git_install_dir: install_dir.as_deref(),
                home_dir: home.as_deref(),
                home_for_user: Some(gix::config::path::interpolate::home_for_user),
            },
            gix::config::file::includes::conditional::Context {
                git_dir: Some(&git_dir),
                branch_name: branch.as_ref().map(|b| b.as_ref()),
            },
        ),
        ..Default::default()
    };
    config
        .resolve_includes(options)
        .map_err(|e| RepoError::git("read the included config for", &git_dir, e))?;
    let mut snapshot = wt_repo.config_snapshot_mut();
    *snapshot = config;
    snapshot
        .commit()
        .map_err(|e| RepoError::git("apply the config of", &git_dir, e))?;
    Ok(())
}
