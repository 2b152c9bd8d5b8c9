//! Saved plans (`plan --out FILE`, `apply FILE`): the plan's JSON document plus a
//! fingerprint of everything it was computed from — the manifest's path and bytes, the state
//! read from the repository (refs, worktrees, metadata, the ownership record) and the plan
//! options. `apply FILE` recomputes both and refuses, changing nothing, unless they match:
//! what it carries out is then exactly the saved plan.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::plan::Options;
use crate::state::State;

/// What `plan --out` adds to the JSON plan (a field added, per SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub fingerprint: String,
    /// The manifest it was made from, absolute.
    pub manifest: PathBuf,
    pub force: bool,
}

/// The parts of a saved plan file that `apply FILE` reads back.
#[derive(Debug, Deserialize)]
pub struct SavedFile {
    pub saved: Saved,
    pub changes: serde_json::Value,
}

pub fn fingerprint(manifest: &Manifest, state: &State, options: &Options) -> String {
    // `State` holds only ordered collections, so its debug form is deterministic.
    let text = format!("{:?}\n{}\n{:?}\n{:?}", manifest.path, manifest.source, state, options);
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(text.as_bytes());
    hasher.try_finalize().map(|id| id.to_string()).unwrap_or_default()
}

pub fn read(path: &Path) -> Result<SavedFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a saved flowloom plan: {e}", path.display()))
}
