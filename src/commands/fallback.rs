//! SPEC §11.1: `path`, `run`, `cd` and `status` keep working when a manifest file cannot be
//! used (a merge conflict, say). They answer from the ownership record, for the sessions
//! flowloom made, with a warning naming the broken file; the commands that change anything
//! (`plan`, `apply`, `new`, `rm`) refuse as before.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, value};

use super::{Error, load, manifest_path};
use crate::cli::Cli;
use crate::manifest::Manifest;
use crate::render::output::Printer;

/// The manifest; or, when a file of it is broken, the sessions of the ownership record as
/// a manifest that declares each one where it is.
pub(crate) fn load_or_record(
    cli: &Cli,
    start_dir: &Path,
    repo: &gix::Repository,
    printer: &Printer,
) -> Result<Manifest, Error> {
    let error = match load(cli, start_dir, Some(repo)) {
        Err(Error::Manifest(e)) => e,
        other => return other,
    };
    let path = manifest_path(cli, start_dir, Some(repo))?;
    // No manifest at all is not a broken one: `init` makes one.
    if path.symlink_metadata().is_err() {
        return Err(Error::Manifest(error));
    }
    let Some(manifest) = from_record(repo, &path) else {
        return Err(Error::Manifest(error));
    };
    printer.warn(&format!(
        "{error}; answering from flowloom's record of the sessions it made (`flowloom validate` shows what to fix)"
    ));
    Ok(manifest)
}

/// A manifest that declares every recorded session under the root of the first one (the
/// others are left out), with its branch and worktree folder.
fn from_record(repo: &gix::Repository, path: &Path) -> Option<Manifest> {
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    let record = crate::store::ownership::Record::read(&common_dir).ok()?;
    let dir = path.parent()?;
    let root = record.sessions.first()?.path.parent()?.to_owned();
    let mut doc = DocumentMut::new();
    let mut defaults = Table::new();
    defaults.insert("root", value(relative_root(dir, &root)?));
    doc.insert("defaults", Item::Table(defaults));
    let mut sessions = Table::new();
    sessions.set_implicit(true);
    for owned in record
        .sessions
        .iter()
        .filter(|o| o.path.parent() == Some(root.as_path()))
    {
        let mut t = Table::new();
        t.insert("branch", value(owned.branch.as_str()));
        t.insert("worktree", value(owned.path.file_name()?.to_str()?));
        sessions.insert(&owned.id, Item::Table(t));
    }
    doc.insert("sessions", Item::Table(sessions));
    let mut manifest = Manifest::from_source(path, doc.to_string()).ok()?;
    manifest.use_default_base(&super::default_base(repo, &manifest.defaults.remote));
    if let Some(name) =
        crate::read::state::main_workdir(repo).and_then(|top| top.file_name().map(std::ffi::OsStr::to_owned))
    {
        manifest.use_repo_name(&name);
    }
    Some(manifest)
}

/// `root` relative to the manifest's folder `dir`: inside it, or beside it (one `..`).
pub(super) fn relative_root(dir: &Path, root: &Path) -> Option<String> {
    if let Ok(rel) = root.strip_prefix(dir) {
        return rel.to_str().map(str::to_owned).filter(|r| !r.is_empty());
    }
    let rel = root.strip_prefix(dir.parent()?).ok()?;
    Some(format!("../{}", rel.to_str()?))
}
