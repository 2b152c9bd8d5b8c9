//! SPEC §10 for the planner: what a session gets after its checkout (copies, ports, setup)
//! and the late steps that finish it (§11.3), once this machine trusts its commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::SetupOf;
use super::{CopyItem, Prepare, Reason, Repair};
use crate::manifest::Session;
use crate::read::state::{State, Worktree};
use crate::store::metadata::{MetadataFile, SetupProgress, SetupState};
use crate::store::ownership::{OwnedSession, OwnedState};

/// Whether the session's `setup` list may run: an empty one always may.
pub(super) fn trusted(state: &State, session: &Session) -> bool {
    trusts(state, &session.environment)
}

/// Whether this machine trusts an environment's setup and teardown (one trust covers both,
/// with `env`): empty lists need none.
pub(super) fn trusts(state: &State, env: &crate::manifest::Environment) -> bool {
    !env.runs_commands()
        || state
            .trusted
            .contains(&crate::store::machine::setup_hash(&env.setup_script()))
}

/// SPEC §10 for a new session: the entries to copy are chosen here, from what the reader
/// found ignored in the main worktree, leaving out flowloom's own folders.
pub(super) fn prepare(state: &State, session: &Session) -> Prepare {
    let env = &session.environment;
    let main = state.main_workdir.as_deref();
    let own = |path: &str| {
        let Some(main) = main else { return true };
        let abs = main.join(path);
        abs.starts_with(&state.root)
            || state.root.starts_with(&abs)
            || path == crate::names::SESSIONS
            || path.starts_with(&format!("{}/", crate::names::SESSIONS))
    };
    let copy = if main.is_some() {
        crate::read::copy::select(&env.copy, state.include.as_deref(), &state.ignored)
            .into_iter()
            .map(CopyItem::from)
            .filter(|item| !own(&item.path))
            .collect()
    } else {
        Vec::new()
    };
    Prepare {
        from: main.map(Path::to_path_buf),
        copy,
        ports: env.ports.clone(),
        env: env.env.clone(),
        setup: env.setup.clone(),
    }
}

/// The ports this repository's sessions hold, by their `metadata.json`.
pub(super) fn held_ports(state: &State) -> BTreeSet<u16> {
    state
        .worktrees
        .values()
        .filter_map(|wt| match &wt.metadata {
            MetadataFile::Valid(m) => Some(m.ports().into_values()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The ports the session declares that its metadata does not hold yet.
pub(super) fn missing_ports(session: &Session, wt: &Worktree) -> Option<Repair> {
    let held = match &wt.metadata {
        MetadataFile::Valid(found) if !wt.missing => found.ports(),
        _ => BTreeMap::new(),
    };
    let names: Vec<String> = session
        .environment
        .ports
        .iter()
        .filter(|name| !held.contains_key(*name))
        .cloned()
        .collect();
    (!names.is_empty()).then_some(Repair::Ports { names })
}

/// SPEC §11.3 for a session in place: the copy and setup a creation did not finish (a kill,
/// Ctrl-C, a failed command), or else the `copy` entries it lacks. A creation killed before
/// its metadata recorded anything (still `creating`) has finished nothing.
pub(super) fn copies_and_setup(
    state: &State,
    session: &Session,
    wt: &Worktree,
    owned: Option<&OwnedSession>,
) -> Result<Vec<Repair>, Reason> {
    let creating = owned.is_some_and(|o| o.state == OwnedState::Creating);
    let progress = match &wt.metadata {
        MetadataFile::Valid(m) if m.records_setup() => Some(m.setup_progress()),
        MetadataFile::Valid(_) | MetadataFile::Missing if creating => Some(SetupProgress::started()),
        _ => None,
    };
    let prepare = prepare(state, session);
    let Some(progress) = progress.filter(|p| p.state != SetupState::Ok) else {
        return Ok(late_copies(wt, prepare).into_iter().collect());
    };
    let mut steps = Vec::new();
    let copying = !progress.copied && !prepare.copy.is_empty();
    if let (true, Some(from)) = (copying, prepare.from.clone()) {
        steps.push(Repair::Copies {
            from,
            items: prepare.copy.clone(),
            kept: Vec::new(),
            finishing: true,
        });
    }
    let commands = progress.remaining(&prepare.setup).to_vec();
    if !commands.is_empty() && !trusted(state, session) {
        return Err(Reason::SetupNotTrusted {
            script: session.environment.setup_script(),
        });
    }
    let recorded = matches!(&wt.metadata, MetadataFile::Valid(m) if m.records_setup());
    if recorded || !steps.is_empty() || !commands.is_empty() {
        steps.push(Repair::RunSetup {
            commands,
            done: progress.done,
            env: prepare.env,
            copied: !copying,
        });
    }
    Ok(steps)
}

/// SPEC §11.3: the `copy` entries a finished session lacks (added since it was made), and
/// those it has, which stay as they are.
pub(super) fn late_copies(wt: &Worktree, prepare: Prepare) -> Option<Repair> {
    let settled = wt.copy_settled.as_ref()?;
    let from = prepare.from?;
    let (kept, items): (Vec<_>, Vec<_>) = prepare.copy.into_iter().partition(|i| settled.contains(&i.path));
    (!items.is_empty()).then(|| Repair::Copies {
        from,
        items,
        kept: kept.into_iter().map(|i| i.path).collect(),
        finishing: false,
    })
}
