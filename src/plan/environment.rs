//! SPEC §10 for the planner: what a session gets after its checkout (copies, ports, setup)
//! and the late steps that finish it (§11.3), once this machine trusts its commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

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
pub(super) fn prepare(state: &State, session: &Session, path: &Path) -> Prepare {
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
        variables: Variables::of(session, path),
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
    path: &Path,
    wt: &Worktree,
    owned: Option<&OwnedSession>,
) -> Result<Vec<Repair>, Reason> {
    let creating = owned.is_some_and(|o| o.state == OwnedState::Creating);
    let progress = match &wt.metadata {
        MetadataFile::Valid(m) if m.records_setup() => Some(m.setup_progress()),
        MetadataFile::Valid(_) | MetadataFile::Missing if creating => Some(SetupProgress::started()),
        _ => None,
    };
    let prepare = prepare(state, session, path);
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
            setup_done: Vec::new(),
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
            variables: prepare.variables,
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
    // What its metadata counts as run: a session that records no setup ran none of the
    // commands it has now (added since), and a kill during the copy must not run them.
    let setup_done = match &wt.metadata {
        MetadataFile::Valid(m) if m.records_setup() => m.setup_progress().done,
        _ => prepare.setup,
    };
    (!items.is_empty()).then(|| Repair::Copies {
        from,
        items,
        kept: kept.into_iter().map(|i| i.path).collect(),
        finishing: false,
        setup_done,
    })
}

/// SPEC §10's variables of one session as the planner fills them in: everything but the
/// ports' numbers, which apply allocates (or finds in the session's metadata) as it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variables {
    /// flowloom's own that hold no port: `FLOWLOOM_SESSION`, `FLOWLOOM_BRANCH`,
    /// `FLOWLOOM_WORKTREE`.
    pub fixed: Vec<(String, String)>,
    /// `env`'s variables in order, each value as text and the ports it names.
    pub env: Vec<(String, Vec<Segment>)>,
}

/// A piece of an `env` value once the planner filled in `{id}`, `{branch}` and `{worktree}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Text(String),
    /// `{port.<name>}`: the number of the session's port `name`.
    Port(String),
}

impl Variables {
    /// The variables of `session` working at `worktree`, but the ports' numbers.
    pub(super) fn of(session: &Session, worktree: &Path) -> Self {
        use crate::manifest::environment::{self, Filled};
        let worktree = worktree.to_string_lossy();
        let values = environment::Values {
            id: &session.id,
            branch: &session.branch,
            worktree: &worktree,
            ports: &BTreeMap::new(),
        };
        let segments = |value: &str| {
            environment::fill(value, &values)
                .into_iter()
                .map(|piece| match piece {
                    Filled::Text(text) => Segment::Text(text),
                    Filled::Port(name) => Segment::Port(name.to_owned()),
                })
                .collect()
        };
        Variables {
            fixed: environment::own_variables(&values),
            env: session
                .environment
                .env
                .iter()
                .map(|(name, value)| (name.clone(), segments(value)))
                .collect(),
        }
    }

    /// The variables as they are set, with the ports the session holds: flowloom's own (a
    /// `FLOWLOOM_PORT_<NAME>` per port), then `env`'s, as `Session::variables` gives them.
    pub fn with_ports(&self, ports: &BTreeMap<String, u16>) -> Vec<(String, String)> {
        use crate::manifest::environment::{port_value, port_variable};
        let mut vars = self.fixed.clone();
        vars.extend(ports.iter().map(|(name, port)| (port_variable(name), port.to_string())));
        for (name, segments) in &self.env {
            let value = segments
                .iter()
                .map(|segment| match segment {
                    Segment::Text(text) => text.clone(),
                    Segment::Port(port) => port_value(ports, port),
                })
                .collect();
            vars.push((name.clone(), value));
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner's variables, filled in by apply, are the manifest's for the same session.
    #[test]
    fn variables_filled_in_later_are_the_manifests() {
        let text = r#"
[sessions.a]
purpose = "p"
ports = ["web", "api-x"]
env = { URL = "http://localhost:{port.web}/{id}", BOTH = "{port.web}-{port.api-x}{{port.web}}", AT = "{worktree}@{branch}" }
"#;
        let manifest =
            crate::manifest::Manifest::from_source(Path::new("/r/flowloom.toml"), text.to_owned()).expect("manifest");
        let session = manifest.sessions.get("a").expect("session a");
        let worktree = Path::new("/r/sessions/a");
        let planned = Variables::of(session, worktree);
        for ports in [
            BTreeMap::new(),
            BTreeMap::from([("web".to_owned(), 41000)]),
            BTreeMap::from([
                ("web".to_owned(), 41000),
                ("api-x".to_owned(), 41001),
                ("old".to_owned(), 9),
            ]),
        ] {
            assert_eq!(planned.with_ports(&ports), session.variables(worktree, &ports));
        }
    }
}
