//! `plan(&Manifest, &State) -> Plan`: the rules of SPEC §3, §6 and §7 as a pure function.
//!
//! No I/O and no gix types: everything the rules need is in `State`, so every rule can be
//! tested with plain values. Expected outcomes — a blocked removal, drift — are values in
//! the plan, not errors. The plan is the whole contract with apply: every decision and
//! every value apply needs (the expected commit of each ref edit, the base recorded, the
//! remote tracked, the files a forced removal may lose, housekeeping) is a field of a step,
//! so apply decides nothing and reads neither the manifest nor the state.

pub mod adopt;
mod declared;
mod environment;
mod housekeep;
mod moves;
mod orphan;
mod reason;
#[cfg(test)]
mod roundtrip;
pub mod rules;
pub mod saved;
mod steps;
pub mod tracking;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::manifest::Manifest;
// The reader's findings a plan carries, named here so that render words the plan's
// vocabulary and never imports the reader.
pub use crate::read::inspect::Integration;
pub use crate::read::state::BaseFailure;
use crate::read::state::State;
pub use crate::read::tracking::Upstream;
use crate::store::ownership::OwnedState;
use declared::plan_declared;
pub use declared::questions;
use environment::held_ports;
pub use environment::{Segment, Variables};
use housekeep::{exclude_drops, housekeeping, unmanaged};
pub use moves::{owned_path, owned_worktree};
pub use orphan::orphans;
use orphan::{name_archives, plan_orphan};
pub use reason::{DirtKind, Reason, SwitchBlock};
pub use steps::{
    Action, Archive, Change, CopyItem, Housekeeping, Options, Plan, Prepare, Removal, Repair, SetupOf, Start,
    StartFrom, Teardown, Unmanaged, WorktreeRemoval,
};

/// Compute the plan. `state` must have been read for this `manifest` and have answered
/// `questions(manifest, state)`.
pub fn plan(manifest: &Manifest, state: &State) -> Plan {
    plan_with(manifest, state, &Options::default())
}

pub fn plan_with(manifest: &Manifest, state: &State, options: &Options) -> Plan {
    let checked_out = checked_out(state);
    let mut changes = Vec::new();
    for session in manifest.sessions.values() {
        let path = state.root.join(&session.worktree);
        if let Some(action) = plan_declared(manifest, state, session, &path, &checked_out) {
            changes.push(Change {
                session: session.id.clone(),
                branch: session.branch.clone(),
                path,
                action,
            });
        }
    }
    for owned in orphans(manifest, &state.root, state) {
        let environment = options.ending.get(&owned.id).unwrap_or(&manifest.defaults.environment);
        let action = plan_orphan(state, owned, &checked_out, options, environment);
        // SPEC §11.1: nothing the missing flowloom.toml may declare is removed (a removal
        // under way is finished; `rm`/`merge` name the sessions they end).
        let action = match action {
            Some(a)
                if manifest.committed_absent
                    && owned.state != OwnedState::Removing
                    && !options.ending.contains_key(&owned.id)
                    && (a.changes_anything() || matches!(a, Action::Blocked { .. })) =>
            {
                let mut reasons = vec![Reason::CommittedMissing {
                    file: manifest.path.clone(),
                }];
                if let Action::Blocked { reasons: other } = a {
                    reasons.extend(other);
                }
                Some(Action::Blocked { reasons })
            }
            other => other,
        };
        if let Some(action) = action {
            changes.push(Change {
                session: owned.id.clone(),
                branch: owned.branch.clone(),
                path: owned_path(state, owned),
                action,
            });
        }
    }
    changes.retain(|c| options.targets(&c.session));
    changes.sort_by(|a, b| a.session.cmp(&b.session).then_with(|| a.path.cmp(&b.path)));
    exclude_drops(manifest, state, &mut changes);
    name_archives(state, &mut changes);
    let mut housekeeping = housekeeping(manifest, state, &changes);
    // With targets, only their own housekeeping (and what every run needs).
    housekeeping.retain(|step| match step {
        Housekeeping::DropRecord { session, .. } => options.targets(session),
        Housekeeping::EmptyTrash { path } => {
            state.deleting.contains(path)
                || state
                    .owned
                    .sessions
                    .iter()
                    .any(|o| o.trash.as_ref() == Some(path) && options.targets(&o.id))
        }
        Housekeeping::Excludes { .. }
        | Housekeeping::Leftover(_)
        | Housekeeping::FinishMove { .. }
        | Housekeeping::RepairLinks { .. } => true,
    });
    let allocates = changes.iter().any(|c| match &c.action {
        Action::Create { prepare, .. } => !prepare.ports.is_empty(),
        Action::Update { repairs, .. } => repairs.iter().any(|r| matches!(r, Repair::Ports { .. })),
        _ => false,
    });
    Plan {
        changes,
        unmanaged: unmanaged(manifest, state),
        housekeeping,
        force: options.force,
        held_ports: if allocates { held_ports(state) } else { BTreeSet::new() },
    }
}

/// Where each branch is checked out, across every worktree flowloom knows of.
fn checked_out(state: &State) -> BTreeMap<&str, &Path> {
    let mut map: BTreeMap<&str, &Path> = state
        .busy_branches
        .iter()
        .map(|(b, p)| (b.as_str(), p.as_path()))
        .collect();
    for wt in state.worktrees.values() {
        if let Some(b) = &wt.branch {
            map.insert(b.as_str(), wt.path.as_path());
        }
    }
    map
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else if ["s", "x", "z", "ch", "sh"].iter().any(|end| word.ends_with(end)) {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod reason_table;
#[cfg(test)]
mod tests;
