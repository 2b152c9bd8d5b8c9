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

/// Bring a worktree whose branch moved to the new commit as `git merge` leaves it: each
/// file of `changes` is deleted or written through the same filters, modes and symlink
/// rules as a checkout (attributes as the new index holds them), its index entry replaced
/// with fresh stat data; every other entry, staged changes included, and every other file
/// stay as they are. The caller checked that no local change touches these paths.
pub(crate) fn update_worktree(
    wt_repo: &gix::Repository,
    changes: &[crate::apply::land::PathChange],
    interrupt: &std::sync::atomic::AtomicBool,
) -> Result<(), RepoError> {
    use gix::index::entry::Flags;
    let workdir = wt_repo
        .workdir()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| RepoError::message("the base's worktree has no folder"))?;
    let mut index = wt_repo
        .open_index()
        .map_err(|e| RepoError::git("read the index of", &workdir, e))?;
    let changed: std::collections::BTreeSet<&gix::bstr::BStr> = changes.iter().map(|c| c.path.as_bstr()).collect();
    index.remove_entries(|_, path, _| changed.contains(path));
    // Only the changed entries are written: every other one is skipped for the checkout,
    // and gets its own flags back after it.
    let skipped: std::collections::BTreeSet<gix::bstr::BString> = index
        .entries()
        .iter()
        .filter(|e| e.flags.contains(Flags::SKIP_WORKTREE))
        .map(|e| e.path(&index).to_owned())
        .collect();
    for entry in index.entries_mut() {
        entry.flags.insert(Flags::SKIP_WORKTREE);
    }
    delete_files(&workdir, changes)?;
    for change in changes {
        if let Some((mode, id)) = change.new {
            index.dangerously_push_entry(
                Default::default(),
                id,
                Flags::empty(),
                mode.into(),
                change.path.as_bstr(),
            );
        }
    }
    check_out_entries(wt_repo, &mut index, &workdir, interrupt)?;
    let (entries, paths) = index.entries_mut_and_pathbacking();
    for entry in entries {
        let path = entry.path_in(paths);
        let was = skipped.contains(path);
        entry.flags.set(Flags::SKIP_WORKTREE, was);
    }
    // The cached trees no longer describe the entries.
    index.remove_tree();
    index
        .write(Default::default())
        .map_err(|e| RepoError::git("write the index of", &workdir, e))?;
    if crate::apply::index_v4::wants_v4(wt_repo) {
        let path = wt_repo.index_path();
        crate::apply::index_v4::rewrite(&path).map_err(|e| RepoError::io("write the index", &path, e))?;
    }
    Ok(())
}

/// The deleted files go, and the folders they leave empty.
fn delete_files(workdir: &std::path::Path, changes: &[crate::apply::land::PathChange]) -> Result<(), RepoError> {
    for change in changes.iter().filter(|c| c.new.is_none()) {
        let rel =
            gix::path::from_bstr(change.path.as_bstr()).map_err(|e| RepoError::git("name a file in", workdir, e))?;
        let file = workdir.join(rel);
        match std::fs::remove_file(&file) {
            Ok(()) => crate::apply::refs::remove_empty_parents(&file, workdir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::io("delete", &file, e)),
        }
    }
    Ok(())
}

/// gix's checkout of the entries not marked to skip, over what is there.
fn check_out_entries(
    wt_repo: &gix::Repository,
    index: &mut gix::index::File,
    workdir: &std::path::Path,
    interrupt: &std::sync::atomic::AtomicBool,
) -> Result<(), RepoError> {
    let mut options = wt_repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| RepoError::git("read checkout options for", workdir, e))?;
    options.overwrite_existing = true;
    options.destination_is_initially_empty = false;
    let objects = wt_repo
        .objects
        .clone()
        .into_arc()
        .map_err(|e| RepoError::git("open objects of", workdir, e))?;
    // Sorted for the attribute stack, which looks `.gitattributes` up by path.
    index.sort_entries();
    let outcome = gix::worktree::state::checkout(
        index,
        workdir,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        interrupt,
        options,
    )
    .map_err(|e| RepoError::git("check out", workdir, e))?;
    if let Some(e) = outcome.errors.first() {
        return Err(RepoError::message(format!(
            "could not write {} in {}: {}",
            e.path,
            workdir.display(),
            e.error
        )));
    }
    Ok(())
}
