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
/// `index_lock` is the worktree's `index.lock`, taken before anything was written (as git
/// takes it first): the new index is written through it.
pub(crate) fn update_worktree(
    wt_repo: &gix::Repository,
    changes: &[crate::apply::land::PathChange],
    index_lock: gix::lock::File,
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
    let was_v4 = index.version() == gix::index::Version::V4;
    let changed: std::collections::BTreeSet<&gix::bstr::BStr> = changes.iter().map(|c| c.path.as_bstr()).collect();
    // Which changed files stay out of the worktree: with a sparse checkout, those its
    // patterns leave out (git marks them skip-worktree and writes nothing); without one, a
    // file marked skip-worktree by hand keeps its mark (git's merge carries the old flag
    // over) and is written all the same.
    let out_of_sparse = sparse_excluded(wt_repo, changes)?;
    let marked: std::collections::BTreeSet<gix::bstr::BString> = match &out_of_sparse {
        Some(excluded) => excluded.clone(),
        None => index
            .entries()
            .iter()
            .filter(|e| e.flags.contains(Flags::SKIP_WORKTREE) && changed.contains(e.path(&index)))
            .map(|e| e.path(&index).to_owned())
            .collect(),
    };
    index.remove_entries(|_, path, _| changed.contains(path));
    // Only the changed entries are written: every other one is skipped for the checkout,
    // and gets its own flags back after it.
    let mut skipped: std::collections::BTreeSet<gix::bstr::BString> = index
        .entries()
        .iter()
        .filter(|e| e.flags.contains(Flags::SKIP_WORKTREE))
        .map(|e| e.path(&index).to_owned())
        .collect();
    for entry in index.entries_mut() {
        entry.flags.insert(Flags::SKIP_WORKTREE);
    }
    make_way(&workdir, changes)?;
    crate::apply::failpoint("merge:worktree-part");
    let excluded = out_of_sparse.unwrap_or_default();
    for change in changes {
        if let Some((mode, id)) = change.new {
            let flags = if excluded.contains(&change.path) {
                Flags::SKIP_WORKTREE
            } else {
                Flags::empty()
            };
            index.dangerously_push_entry(Default::default(), id, flags, mode.into(), change.path.as_bstr());
        }
    }
    check_out_entries(wt_repo, &mut index, &workdir, interrupt)?;
    let written: Vec<_> = changes
        .iter()
        .filter(|c| !excluded.contains(&c.path))
        .cloned()
        .collect();
    gitlink_folders(&workdir, &written)?;
    skipped.extend(marked);
    let (entries, paths) = index.entries_mut_and_pathbacking();
    for entry in entries {
        let path = entry.path_in(paths);
        let was = skipped.contains(path);
        entry.flags.set(Flags::SKIP_WORKTREE, was);
        // As git writes them: the extended-flags bit where such a flag is set, and only there.
        let extended = entry.flags.intersects(Flags::SKIP_WORKTREE | Flags::INTENT_TO_ADD);
        entry.flags.set(Flags::EXTENDED, extended);
    }
    encodings_as_git_writes_them(wt_repo, &mut index, &workdir, Some(&changed))?;
    ident_as_git_writes_it(wt_repo, &mut index, &workdir, Some(&changed))?;
    // The cached trees no longer describe the entries.
    index.remove_tree();
    write_index(&index, index_lock, &workdir)?;
    crate::fsutil::index_v4::write_keeping_version(wt_repo, was_v4)
        .map_err(|e| RepoError::io("write the index", &wt_repo.index_path(), e))
}

/// With a sparse checkout (`core.sparseCheckout`, the patterns of the worktree's own
/// `info/sparse-checkout`, cone or not), the changed paths with content that its patterns
/// leave out; `None` without one.
fn sparse_excluded(
    wt_repo: &gix::Repository,
    changes: &[crate::apply::land::PathChange],
) -> Result<Option<std::collections::BTreeSet<gix::bstr::BString>>, RepoError> {
    let config = wt_repo.config_snapshot();
    if !config.boolean("core.sparseCheckout").unwrap_or(false) {
        return Ok(None);
    }
    let git_dir = wt_repo.git_dir();
    let source = git_dir.join("info").join("sparse-checkout");
    // No patterns file: git's checkout leaves nothing out (and warns).
    let Some(patterns) = crate::fsutil::read_regular(&source, 1 << 26)
        .map_err(|e| RepoError::message(format!("could not read {}: {e}", source.display())))?
    else {
        return Ok(None);
    };
    let cone = config.boolean("core.sparseCheckoutCone").unwrap_or(false);
    let case = if config.boolean("core.ignoreCase").unwrap_or(false) {
        gix::glob::pattern::Case::Fold
    } else {
        gix::glob::pattern::Case::Sensitive
    };
    let mut state = gix::index::State::new(wt_repo.object_hash());
    for change in changes {
        if let Some((mode, id)) = change.new {
            state.dangerously_push_entry(
                Default::default(),
                id,
                gix::index::entry::Flags::empty(),
                mode.into(),
                change.path.as_bstr(),
            );
        }
    }
    gix_worktree::sparse::apply_patterns(&mut state, &patterns, &source, cone, case)
        .map_err(|e| RepoError::message(format!("could not read {}: {e}", source.display())))?;
    Ok(Some(
        state
            .entries()
            .iter()
            .filter(|e| e.flags.contains(gix::index::entry::Flags::SKIP_WORKTREE))
            .map(|e| e.path(&state).to_owned())
            .collect(),
    ))
}

/// The new index through the lock taken first, committed over the old one.
fn write_index(index: &gix::index::File, lock: gix::lock::File, workdir: &std::path::Path) -> Result<(), RepoError> {
    let mut out = std::io::BufWriter::new(lock);
    index
        .write_to(&mut out, Default::default())
        .map_err(|e| RepoError::git("write the index of", workdir, e))?;
    let lock = out
        .into_inner()
        .map_err(|e| RepoError::io("write the index of", workdir, e.into_error()))?;
    lock.commit()
        .map_err(|e| RepoError::io("write the index of", workdir, e.error))?;
    Ok(())
}

/// As git's checkout: the deleted files go (and the folders they leave empty), and a file
/// or symlink where the merge writes one is unlinked first, so the new file is a new one —
/// never written into a file that is also a hard link elsewhere. Nothing is touched through
/// a symlink: a folder on the way that is one (put there since the check) stops the write.
fn make_way(workdir: &std::path::Path, changes: &[crate::apply::land::PathChange]) -> Result<(), RepoError> {
    for change in changes {
        let rel =
            gix::path::from_bstr(change.path.as_bstr()).map_err(|e| RepoError::git("name a file in", workdir, e))?;
        if let Some(parent) = rel.parent()
            && let Err(why) = crate::fsutil::check_beneath(workdir, parent)
        {
            return Err(RepoError::message(format!(
                "could not write {} in {}: {why}",
                rel.display(),
                workdir.display()
            )));
        }
        let file = workdir.join(&rel);
        if change.new.is_none() {
            delete_tracked(workdir, &file)?;
            continue;
        }
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if !meta.is_dir() => {
                std::fs::remove_file(&file).map_err(|e| RepoError::io("replace", &file, e))?
            }
            _ => {}
        }
    }
    Ok(())
}

/// A gitlink (submodule) that comes gets an empty folder, as git's checkout makes one
/// (gix's checkout skips them).
fn gitlink_folders(workdir: &std::path::Path, changes: &[crate::apply::land::PathChange]) -> Result<(), RepoError> {
    for change in changes {
        if let Some((mode, _)) = change.new
            && mode.is_commit()
        {
            let rel = gix::path::from_bstr(change.path.as_bstr())
                .map_err(|e| RepoError::git("name a file in", workdir, e))?;
            crate::fsutil::create_dir_beneath(workdir, &rel)?;
        }
    }
    Ok(())
}

/// Delete a file a checkout no longer tracks, and the folders it leaves empty below
/// `workdir`, as git does; a file already gone is fine. A folder there is a submodule's
/// (a gitlink entry): as git, it goes only when empty, and a populated one stays.
pub(crate) fn delete_tracked(workdir: &std::path::Path, file: &std::path::Path) -> Result<(), RepoError> {
    let removed = match std::fs::symlink_metadata(file) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir(file).is_ok(),
        _ => match std::fs::remove_file(file) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(RepoError::io("delete", file, e)),
        },
    };
    if removed {
        crate::apply::refs::remove_empty_parents(file, workdir);
    }
    Ok(())
}

/// gix's checkout options and object handle for writing into a worktree that has files
/// already (a switch of branch, a merge): existing files are overwritten, as git does.
pub(crate) fn over_what_is_there(
    wt_repo: &gix::Repository,
    workdir: &std::path::Path,
) -> Result<(gix::worktree::state::checkout::Options, gix::OdbHandleArc), RepoError> {
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
    Ok((options, objects))
}

/// gix's checkout of the entries not marked to skip, over what is there.
fn check_out_entries(
    wt_repo: &gix::Repository,
    index: &mut gix::index::File,
    workdir: &std::path::Path,
    interrupt: &std::sync::atomic::AtomicBool,
) -> Result<(), RepoError> {
    let (options, objects) = over_what_is_there(wt_repo, workdir)?;
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

/// gix writes a file whose `working-tree-encoding` is UTF-16 or UTF-32 as its UTF-8 blob
/// (after `ident` and eol conversion, which git also applies first); git writes it in that
/// encoding (`fsutil::wide`). Each such file of `index` (only those in `only`, when given)
/// is rewritten so, and its entry gets the new file's stat. A blob that is not UTF-8 stays
/// as it is, as git leaves it. Whether any entry changed.
pub(crate) fn encodings_as_git_writes_them(
    wt_repo: &gix::Repository,
    index: &mut gix::index::File,
    workdir: &std::path::Path,
    only: Option<&std::collections::BTreeSet<&gix::bstr::BStr>>,
) -> Result<bool, RepoError> {
    if !attributes_mention(wt_repo, index, b"working-tree-encoding=") {
        return Ok(false);
    }
    let mut attributes = wt_repo
        .attributes_only(index, gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| RepoError::git("read the attributes of", workdir, e))?;
    let wide: Vec<(usize, crate::fsutil::wide::Wide, Option<gix::bstr::BString>)> = {
        let mut outcome = attributes.selected_attribute_matches(["working-tree-encoding", "filter"]);
        let mut found = Vec::new();
        for (i, entry) in index.entries().iter().enumerate() {
            use gix::index::entry::Mode;
            let path = entry.path(index);
            if (entry.mode != Mode::FILE && entry.mode != Mode::FILE_EXECUTABLE)
                || only.is_some_and(|o| !o.contains(path))
            {
                continue;
            }
            let Ok(platform) = attributes.at_entry(path, Some(entry.mode)) else {
                continue;
            };
            platform.matching_attributes(&mut outcome);
            let value = |name: &str| {
                outcome.iter_selected().find_map(|m| match m.assignment.state {
                    gix::attrs::StateRef::Value(v) if m.assignment.name.as_str() == name => {
                        Some(v.as_bstr().to_owned())
                    }
                    _ => None,
                })
            };
            if let Some(form) = value("working-tree-encoding").and_then(|v| crate::fsutil::wide::by_name(&v)) {
                found.push((i, form, value("filter")));
            }
        }
        found
    };
    let mut changed = false;
    for (i, form, filter) in wide {
        let entry = &index.entries()[i];
        let Ok(rel) = gix::path::from_bstr(entry.path(index)).map(|p| p.into_owned()) else {
            continue;
        };
        let file = workdir.join(rel);
        if !std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let driver = filter.and_then(|name| {
            let drivers = gix::filter::Pipeline::options(wt_repo).ok()?.drivers;
            drivers
                .into_iter()
                .find(|d| d.name == name && (d.smudge.is_some() || d.process.is_some()))
        });
        let written = match driver {
            Some(driver) => {
                let (id, mode, path) = (entry.id, entry.mode, entry.path(index).to_owned());
                let path: &gix::bstr::BStr = path.as_ref();
                let platform = attributes
                    .at_entry(path, Some(mode))
                    .map_err(|e| RepoError::git("read the attributes of", &file, e))?;
                smudged_wide(wt_repo, &platform, path, id, form, &driver)
                    .map_err(|e| RepoError::git("check out", &file, e))?
            }
            None => {
                let bytes = std::fs::read(&file).map_err(|e| RepoError::io("read", &file, e))?;
                std::str::from_utf8(&bytes).ok().map(|text| form.encode(text))
            }
        };
        let Some(written) = written else { continue };
        std::fs::write(&file, written).map_err(|e| RepoError::io("write", &file, e))?;
        let meta = gix::index::fs::Metadata::from_path_no_follow(&file).map_err(|e| RepoError::io("stat", &file, e))?;
        if let Ok(stat) = gix::index::entry::Stat::from_fs(&meta) {
            index.entries_mut()[i].stat = stat;
            changed = true;
        }
    }
    Ok(changed)
}

/// What git writes for blob `id` at `path` with a UTF-16/32 `form` and the filter `driver`:
/// git encodes before it smudges, so the filter gets the encoded bytes (convert.c,
/// `convert_to_working_tree_ca_internal`: ident, eol, encoding, then the filter), where gix
/// gives it the UTF-8 text. The blob through ident and eol (gix's pipeline without its
/// drivers), encoded, then through the driver. `None` for a blob that is not UTF-8 (git
/// cannot encode it, and checks it out as gix did).
fn smudged_wide(
    wt_repo: &gix::Repository,
    attributes: &gix::worktree::stack::Platform<'_>,
    path: &gix::bstr::BStr,
    id: gix::ObjectId,
    form: crate::fsutil::wide::Wide,
    driver: &gix::filter::plumbing::Driver,
) -> Result<Option<Vec<u8>>, gix::Error> {
    use gix::filter::plumbing::{driver, pipeline::convert::to_worktree};
    use std::io::Read;
    let blob = wt_repo.find_blob(id)?.detach().data;
    let mut options = gix::filter::Pipeline::options(wt_repo)?;
    options.drivers.clear();
    let context = wt_repo.command_context()?;
    let mut pipeline = gix::filter::plumbing::Pipeline::new(context, wt_repo.object_hash(), options);
    let text = pipeline
        .convert_to_worktree(
            &blob,
            path,
            &mut |_, outcome| {
                attributes.matching_attributes(outcome);
            },
            to_worktree::Options {
                can_delay: driver::apply::Delay::Forbid,
                unknown_encoding: to_worktree::UnknownEncoding::Ignore,
            },
        )?
        .as_bytes()
        .map(<[u8]>::to_vec);
    let Some(text) = text.and_then(|t| String::from_utf8(t).ok()) else {
        return Ok(None);
    };
    let encoded = form.encode(&text);
    let mut state = pipeline.into_driver_state();
    let context = driver::apply::Context {
        rela_path: path,
        ref_name: None,
        treeish: None,
        blob: Some(id),
    };
    let smudged = state.apply(driver, &mut encoded.as_slice(), driver::Operation::Smudge, context)?;
    let Some(mut smudged) = smudged else {
        return Ok(Some(encoded));
    };
    let mut out = Vec::new();
    smudged.read_to_end(&mut out).map_err(gix::Error::from_error)?;
    drop(smudged);
    Ok(Some(out))
}

/// gix's `ident` filter writes `$Id: <blob id>$`; git writes `$Id: <blob id> $`. Only when
/// some attributes file names `ident`, every checked-out file of `index` (only those in
/// `only`, when given) that holds its own blob id that way gets git's spacing (nothing
/// else can hold its own id), and its entry the new file's stat, as git's checkout records
/// it. Whether any entry changed.
pub(crate) fn ident_as_git_writes_it(
    wt_repo: &gix::Repository,
    index: &mut gix::index::File,
    workdir: &std::path::Path,
    only: Option<&std::collections::BTreeSet<&gix::bstr::BStr>>,
) -> Result<bool, RepoError> {
    if !attributes_mention(wt_repo, index, b"ident") {
        return Ok(false);
    }
    let files: Vec<(usize, std::path::PathBuf, gix::ObjectId)> = index
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            use gix::index::entry::Mode;
            (e.mode == Mode::FILE || e.mode == Mode::FILE_EXECUTABLE) && only.is_none_or(|o| o.contains(e.path(index)))
        })
        .filter_map(|(i, e)| {
            let rel = gix::path::from_bstr(e.path(index)).ok()?.into_owned();
            Some((i, workdir.join(rel), e.id))
        })
        .collect();
    let mut changed = false;
    for (i, file, id) in files {
        if !std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&file) else { continue };
        let gix_form = format!("$Id: {id}$");
        if bytes.find(gix_form.as_bytes()).is_none() {
            continue;
        }
        let fixed = bytes.replace(gix_form.as_bytes(), format!("$Id: {id} $").as_bytes());
        std::fs::write(&file, fixed).map_err(|e| RepoError::io("write", &file, e))?;
        if let Ok(meta) = gix::index::fs::Metadata::from_path_no_follow(&file)
            && let Ok(stat) = gix::index::entry::Stat::from_fs(&meta)
        {
            index.entries_mut()[i].stat = stat;
            changed = true;
        }
    }
    Ok(changed)
}

/// Whether `info/attributes` or a `.gitattributes` of `index` holds `word`: a cheap look
/// before attributes are matched entry by entry.
fn attributes_mention(repo: &gix::Repository, index: &gix::index::File, word: &[u8]) -> bool {
    let holds = |text: &[u8]| text.find(word).is_some();
    crate::fsutil::read_regular(&repo.common_dir().join("info").join("attributes"), 1 << 20)
        .ok()
        .flatten()
        .is_some_and(|t| holds(&t))
        || index.entries().iter().any(|e| {
            let rel = e.path(index);
            (rel == ".gitattributes" || rel.ends_with(b"/.gitattributes"))
                && repo.find_object(e.id).is_ok_and(|o| holds(&o.data))
        })
}

/// Why a checkout of `tree` failed, when a filter the repository configures is the cause,
/// found from what the repository holds (never from the words of the error, which for a
/// filter process that dies is the reader's "failed to fill whole buffer"):
///
/// - files whose attributes give `filter=<driver>` with a `process` or `smudge` command;
/// - among those, Git LFS pointers whose object is not in the LFS store
///   (`<common dir>/lfs/objects/ab/cd/<oid>`, or under `lfs.storage`): named, with
///   `git lfs fetch` ([`RepoError::LfsObjectsMissing`]);
/// - otherwise the filtered files ([`RepoError::FilterFailed`]), with `reason`.
///
/// `None` when no file of the tree goes through a configured filter: the error is another.
pub(crate) fn filter_failure(repo: &gix::Repository, tree: gix::ObjectId, reason: &RepoError) -> Option<RepoError> {
    let index = repo.index_from_tree(&tree).ok()?;
    let mut attributes = repo
        .attributes_only(&index, gix::worktree::stack::state::attributes::Source::IdMapping)
        .ok()?;
    let mut outcome = attributes.selected_attribute_matches(["filter"]);
    let config = repo.config_snapshot();
    let configured = |driver: &str| {
        ["process", "smudge"]
            .iter()
            .any(|key| config.string(format!("filter.{driver}.{key}").as_str()).is_some())
    };
    let lfs_store = lfs_store(repo);
    let mut filtered: Vec<(String, String)> = Vec::new();
    let mut missing = Vec::new();
    for entry in index.entries() {
        use gix::index::entry::Mode;
        if entry.mode != Mode::FILE && entry.mode != Mode::FILE_EXECUTABLE {
            continue;
        }
        let path = entry.path(&index);
        let Ok(platform) = attributes.at_entry(path, Some(entry.mode)) else {
            continue;
        };
        platform.matching_attributes(&mut outcome);
        let driver = outcome.iter_selected().find_map(|m| match m.assignment.state {
            gix::attrs::StateRef::Value(v) => Some(v.as_bstr().to_str_lossy().into_owned()),
            _ => None,
        });
        let Some(driver) = driver.filter(|d| configured(d)) else {
            continue;
        };
        let shown = crate::escape::escape(&path.to_str_lossy()).into_owned();
        if let Some(oid) = repo.find_object(entry.id).ok().and_then(|o| lfs_pointer_oid(&o.data))
            && !lfs_store.join(&oid[..2]).join(&oid[2..4]).join(&oid).is_file()
        {
            missing.push(shown.clone());
        }
        filtered.push((driver, shown));
    }
    if !missing.is_empty() {
        return Some(RepoError::LfsObjectsMissing { files: missing });
    }
    let driver = filtered.first()?.0.clone();
    Some(RepoError::FilterFailed {
        files: filtered
            .into_iter()
            .filter(|(d, _)| *d == driver)
            .map(|(_, f)| f)
            .collect(),
        driver,
        reason: reason.to_string(),
    })
}

/// Where git-lfs keeps its objects: `lfs.storage` (relative to the common dir), or
/// `<common dir>/lfs/objects`.
fn lfs_store(repo: &gix::Repository) -> std::path::PathBuf {
    let common = repo.common_dir();
    match repo.config_snapshot().trusted_path("lfs.storage").ok().flatten() {
        Some(storage) => common.join(storage).join("objects"),
        None => common.join("lfs").join("objects"),
    }
}

/// The sha256 of a Git LFS pointer file (`version https://git-lfs.github.com/spec/v1`,
/// `oid sha256:<64 hex>`, `size <n>`); `None` for anything else.
fn lfs_pointer_oid(data: &[u8]) -> Option<String> {
    if data.len() > 1024 || !data.starts_with(b"version https://git-lfs.github.com/spec/") {
        return None;
    }
    let oid = data.lines().find_map(|l| l.strip_prefix(b"oid sha256:"))?;
    (oid.len() == 64 && oid.iter().all(u8::is_ascii_hexdigit)).then(|| oid.to_str_lossy().to_ascii_lowercase())
}
