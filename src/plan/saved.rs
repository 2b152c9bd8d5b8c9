//! Saved plans (`plan --out`, `apply FILE`, `show FILE`): the plan's JSON document (SPEC
//! §9) with a `saved` field that holds the typed plan itself and a fingerprint of
//! everything it was computed from — the manifest's path and bytes, the state read from
//! the repository (refs, worktrees, metadata, the ownership record) and the plan.
//!
//! `apply FILE` reads the plan back, plans again under the lock, and carries out the plan
//! it read only when nothing it relies on changed (the fingerprint) and the plan made now
//! is that plan, step for step: a file edited by hand, or made over another repository,
//! is refused, never executed. Reading the file is the store's
//! (`store::saved_plan`); this module only says what it holds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::read::state::State;

/// The version of the `saved` field's layout that this flowloom reads and writes.
pub const VERSION: u32 = 3;

/// What `plan --out` adds to the JSON plan (a field added, per SPEC §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// [`VERSION`]; a file without it was saved by a flowloom that did not keep the plan.
    #[serde(default)]
    pub version: u32,
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
    /// The manifest's `root` as written, to show paths as `plan` showed them.
    pub root: PathBuf,
    /// The plan itself: what `apply FILE` carries out and `show FILE` prints.
    pub plan: Plan,
}

impl Saved {
    /// The record of `plan`, made from `manifest` and `state` with `targets`.
    pub fn new(manifest: &Manifest, state: &State, plan: &Plan, targets: &[String]) -> Saved {
        Saved {
            version: VERSION,
            fingerprint: fingerprint(manifest, state, plan),
            manifest: manifest.path.clone(),
            force: plan.force,
            manifest_digest: manifest_digest(manifest),
            targets: targets.to_vec(),
            root: manifest.defaults.root.clone(),
            plan: plan.clone(),
        }
    }

    /// Whether this saved plan may be carried out now: made from `manifest`, over the
    /// state `state` (the fingerprint), and `now` (the plan made under the lock) is the
    /// saved plan exactly.
    pub fn check(&self, manifest: &Manifest, state: &State, now: &Plan) -> Result<(), Stale> {
        if self.manifest != manifest.path {
            return Err(Stale::OtherManifest(self.manifest.clone()));
        }
        if self.manifest_digest != manifest_digest(manifest) {
            return Err(Stale::ManifestChanged);
        }
        let same_inputs = self.fingerprint == fingerprint(manifest, state, now);
        if same_inputs && self.plan == *now {
            return Ok(());
        }
        let sessions = differing_sessions(&self.plan, now);
        match (same_inputs, sessions.is_empty()) {
            // Made over this very state, yet not what it plans: the file was edited.
            (true, _) => Err(Stale::NotAsPlanned(sessions)),
            (false, false) => Err(Stale::SessionsDiffer(sessions)),
            (false, true) => Err(Stale::RepositoryChanged),
        }
    }
}

/// Why a saved plan is not carried out (each says what differs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("it was made for another manifest ({})", .0.display())]
    OtherManifest(PathBuf),
    #[error("the manifest changed")]
    ManifestChanged,
    #[error("the plan for {} is not the same now", .0.join(", "))]
    SessionsDiffer(Vec<String>),
    #[error("the repository changed in what the plan read (refs, worktrees, files)")]
    RepositoryChanged,
    #[error("its steps are not the ones flowloom plans{} (was the file edited?)", for_sessions(.0))]
    NotAsPlanned(Vec<String>),
}

fn for_sessions(sessions: &[String]) -> String {
    if sessions.is_empty() {
        String::new()
    } else {
        format!(" for {}", sessions.join(", "))
    }
}

/// The sessions whose changes differ between two plans, each once, in order.
pub fn differing_sessions(a: &Plan, b: &Plan) -> Vec<String> {
    let sessions: std::collections::BTreeSet<&String> =
        a.changes.iter().chain(&b.changes).map(|c| &c.session).collect();
    let of = |plan: &'_ Plan, s: &String| {
        plan.changes
            .iter()
            .filter(|c| &c.session == s)
            .cloned()
            .collect::<Vec<_>>()
    };
    sessions.into_iter().filter(|s| of(a, s) != of(b, s)).cloned().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sessions: &[&str]) -> Plan {
        Plan {
            changes: sessions
                .iter()
                .map(|s| crate::plan::Change {
                    session: (*s).to_owned(),
                    branch: format!("session/{s}"),
                    path: PathBuf::from(format!("/repo/sessions/{s}")),
                    action: crate::plan::Action::Blocked { reasons: Vec::new() },
                })
                .collect(),
            unmanaged: Vec::new(),
            housekeeping: Vec::new(),
            force: false,
            held_ports: Default::default(),
        }
    }

    #[test]
    fn differing_sessions_names_each_session_whose_steps_differ() {
        assert_eq!(
            differing_sessions(&plan(&["a", "b"]), &plan(&["a", "b"])),
            Vec::<String>::new()
        );
        assert_eq!(differing_sessions(&plan(&["a", "b"]), &plan(&["b", "c"])), ["a", "c"]);
        // A second step for a session is a difference of that session.
        assert_eq!(differing_sessions(&plan(&["a", "a"]), &plan(&["a"])), ["a"]);
    }
}
