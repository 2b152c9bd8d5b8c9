//! SPEC §11.1, first use: a repository without `flowloom.toml` works as one whose committed
//! layer is empty, with the defaults `flowloom init` would write (the detected base, the
//! root beside the repository). `new` declares in `flowloom.local.toml` and records the root
//! there, so that a `flowloom.toml` added later does not move the sessions; the commands
//! that would edit the committed file (`share`, `new --shared`, `import --shared`) refuse.

use std::collections::BTreeMap;
use std::path::Path;

use super::Error;
use crate::manifest::Manifest;

/// With no file writing `root`: the folder that holds most of the sessions flowloom made
/// (a `flowloom.toml` that is stashed or not in this checkout put them there), so that they
/// stay where they are; else `flowloom init`'s, as loaded.
pub(super) fn use_recorded_root(repo: &gix::Repository, manifest: &mut Manifest) {
    if !manifest.committed_absent || manifest.defaults.root_given {
        return;
    }
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    let Ok(record) = crate::store::ownership::Record::read(&common_dir) else {
        return;
    };
    let mut folders: BTreeMap<&Path, usize> = BTreeMap::new();
    for owned in &record.sessions {
        if let Some(parent) = owned.path.parent() {
            *folders.entry(parent).or_default() += 1;
        }
    }
    let starter = manifest.root_dir();
    if folders.is_empty() || folders.contains_key(starter.as_path()) {
        return;
    }
    let most = folders.iter().max_by_key(|(_, n)| **n).map(|(folder, _)| *folder);
    if let Some(text) = most.and_then(|folder| super::fallback::relative_root(&manifest.dir, folder)) {
        manifest.use_default_root(&text);
    }
}

/// `what` needs the committed file: refused while there is none.
pub(super) fn needs_committed(manifest: &Manifest, what: &str) -> Result<(), Error> {
    if !manifest.committed_absent {
        return Ok(());
    }
    Err(Error::NoCommittedManifest {
        file: manifest.relative(&manifest.path).to_string(),
        what: what.to_owned(),
    })
}

/// The line that says a command runs without `flowloom.toml`, and on which defaults.
pub(super) fn defaults_note(manifest: &Manifest) -> Option<String> {
    manifest.committed_absent.then(|| {
        format!(
            "no {}: using the defaults `flowloom init` would write (base `{}`, root `{}`)",
            manifest.relative(&manifest.path),
            crate::render::output::escape(&manifest.defaults.base),
            crate::render::output::escape(&manifest.root_text())
        )
    })
}

/// The local layer's text with `[defaults] root` recorded, when no file writes one and
/// there is no committed file: a `flowloom.toml` added later (with another root, or none)
/// then does not move this clone's sessions. A new file gets a header saying what it is.
pub(super) fn with_recorded_root(manifest: &Manifest, text: &str) -> Result<String, toml_edit::TomlError> {
    if !manifest.committed_absent || manifest.defaults.root_given {
        return Ok(text.to_owned());
    }
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let new_file = text.trim().is_empty();
    let defaults = doc
        .entry("defaults")
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            // Before every session's table.
            table.set_position(Some(-1));
            if new_file {
                table.decor_mut().set_prefix(HEADER);
            }
            toml_edit::Item::Table(table)
        })
        .as_table_mut();
    if let Some(defaults) = defaults {
        defaults.insert("root", toml_edit::value(manifest.root_text()));
    }
    Ok(doc.to_string())
}

/// The first lines of a local layer that `new` writes where there is no `flowloom.toml`.
const HEADER: &str = "# flowloom.local.toml: this clone's own sessions, never committed (listed in .git/info/exclude).\n\
# `root` is recorded so that a flowloom.toml added later does not move them.\n\n";
