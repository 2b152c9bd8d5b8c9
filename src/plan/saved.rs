//! Saved plans (`plan --out FILE`, `apply FILE`): the plan's JSON document plus a
//! fingerprint of everything it was computed from — the manifest's path and bytes, the state
//! read from the repository (refs, worktrees, metadata, the ownership record) and the plan
//! options. `apply FILE` recomputes both and refuses, changing nothing, unless they match:
//! what it carries out is then exactly the saved plan.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::read::state::State;

/// What `plan --out` adds to the JSON plan (a field added, per SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub fingerprint: String,
    /// The manifest it was made from, absolute.
    pub manifest: PathBuf,
    pub force: bool,
    /// A digest of the manifest's bytes, to say whether it is what changed.
    #[serde(default)]
    pub manifest_digest: String,
    /// `--target`: the sessions the plan was limited to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

/// The parts of a saved plan file that `apply FILE` reads back.
#[derive(Debug, Deserialize)]
pub struct SavedFile {
    pub saved: Saved,
    pub changes: serde_json::Value,
}

/// A digest of the manifest's bytes.
pub fn manifest_digest(manifest: &Manifest) -> String {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(manifest.source.as_bytes());
    if let Some(local) = &manifest.local {
        hasher.update(b"\0");
        hasher.update(local.source.as_bytes());
    }
    hasher.try_finalize().map(|id| id.to_string()).unwrap_or_default()
}

/// What differs between a saved plan and the plan made now, in words, for the refusal.
pub fn what_changed(saved: &SavedFile, manifest: &Manifest, now: &serde_json::Value) -> String {
    let mut what = Vec::new();
    if saved.saved.manifest != manifest.path {
        what.push(format!(
            "it was made for another manifest ({})",
            saved.saved.manifest.display()
        ));
    } else if saved.saved.manifest_digest != manifest_digest(manifest) {
        what.push("the manifest changed".to_owned());
    }
    let by_session = |v: &serde_json::Value| -> std::collections::BTreeMap<String, serde_json::Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|c| (c["session"].as_str().unwrap_or_default().to_owned(), c.clone()))
            .collect()
    };
    let (before, after) = (by_session(&saved.changes), by_session(now));
    let sessions: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let differ: Vec<&str> = sessions
        .into_iter()
        .filter(|s| before.get(*s) != after.get(*s))
        .map(String::as_str)
        .collect();
    if !differ.is_empty() {
        what.push(format!("the plan for {} is not the same now", differ.join(", ")));
    }
    if what.is_empty() {
        what.push("the repository changed in what the plan read (refs, worktrees, files)".to_owned());
    }
    what.join("; ")
}

/// A hash of everything a plan was computed from and of the plan itself, in serialized
/// form: the manifest's path and bytes, the state read from the repository, and every step
/// with every value apply will use.
pub fn fingerprint(manifest: &Manifest, state: &State, plan: &Plan) -> String {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    for part in [
        manifest.path.to_string_lossy().into_owned(),
        manifest.source.clone(),
        manifest.local.as_ref().map(|l| l.source.clone()).unwrap_or_default(),
        serde_json::to_string(state).unwrap_or_default(),
        serde_json::to_string(plan).unwrap_or_default(),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.try_finalize().map(|id| id.to_string()).unwrap_or_default()
}

/// The largest saved plan `apply FILE` reads: a plan of tens of thousands of sessions fits.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Read a saved plan: a regular file (not a symlink, FIFO or device) of at most
/// [`MAX_BYTES`].
pub fn read(path: &Path) -> Result<SavedFile, String> {
    let bytes = match crate::fsutil::read_regular(path, MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(format!("cannot read {}: there is no such file", path.display())),
        Err(e @ crate::fsutil::ReadError::Io(_)) => return Err(format!("cannot read {}: {e}", path.display())),
        Err(e) => return Err(format!("refusing to read {}: {e}", path.display())),
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a saved flowloom plan: {e}", path.display()))
}
