//! `flowloom run ID -- CMD...`: run a command in a session's worktree with the session's
//! environment (SPEC §10): `FLOWLOOM_SESSION`, `FLOWLOOM_BRANCH`, `FLOWLOOM_WORKTREE`,
//! `FLOWLOOM_PORT_<NAME>` (the ports in its `metadata.json`) and the manifest's `env`.
//! flowloom replaces itself with the command, so the command gets every signal directly
//! (Ctrl-C, SIGTERM, SIGHUP) and its exit status is the command's own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, open_repo};
use crate::cli::{Cli, RunArgs};
use crate::manifest::Session;
use crate::plan::SetupOf as _;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &RunArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = super::fallback::load_or_record(cli, start_dir, &repo, printer)?;
    let session = super::declared(&manifest, &args.id)?;
    let worktree = crate::read::state::session_path(&repo, &manifest, &session.worktree)?;
    if !worktree.is_dir() {
        return Err(Error::NoWorktree {
            id: session.id.clone(),
            path: worktree,
            with_metadata: false,
        });
    }
    let (program, rest) = args.command.split_first().ok_or_else(|| Error::Usage {
        message: "no command to run".into(),
        help: Some("write it after `--`: flowloom run ID -- make test".into()),
    })?;
    // flowloom becomes the command (exec): signals reach it as they would without
    // flowloom, and its exit status is the command's own. Only a failure to start returns.
    use std::os::unix::process::CommandExt;
    let ports = match crate::store::metadata::read(&worktree, &session.id) {
        crate::store::metadata::MetadataFile::Valid(m) => m.ports(),
        _ => Default::default(),
    };
    warn_missing_ports(session, &ports, printer);
    check_env_trusted(&repo, session)?;
    let vars = session.variables(&worktree, &ports);
    let failed = crate::apply::setup::session_command(program, &worktree, &vars)
        .args(rest)
        .exec();
    Err(Error::CannotRun {
        program: program.to_string_lossy().into_owned(),
        why: failed,
    })
}

/// Ports the session declares that its metadata does not hold: their variables are empty.
fn warn_missing_ports(session: &Session, ports: &BTreeMap<String, u16>, printer: &Printer) {
    let missing: Vec<&str> = session
        .environment
        .ports
        .iter()
        .filter(|name| !ports.contains_key(*name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        printer.warn(&format!(
            "session `{}` holds no port for {} (its metadata.json lacks {}): FLOWLOOM_PORT_* and {{port.*}} are empty; `flowloom apply` allocates {}",
            session.id,
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "it" } else { "them" },
        ));
    }
}

/// `env` comes from a committed file: a `PATH` or `LD_PRELOAD` there changes what CMD
/// does, so it applies only once this machine trusts it (with the session's setup).
fn check_env_trusted(repo: &gix::Repository, session: &Session) -> Result<(), Error> {
    if session.environment.env.is_empty() {
        return Ok(());
    }
    let script = session.environment.setup_script();
    let key = crate::store::machine::repository_key(repo.common_dir());
    if crate::store::machine::trusted(&key)?.contains(&crate::store::machine::setup_hash(&script)) {
        return Ok(());
    }
    Err(Error::NotTrusted {
        message: format!(
            "session `{}`'s environment is not trusted on this machine, so nothing runs with it: {}",
            session.id,
            session
                .environment
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        help: "review it in the manifest, then run `flowloom trust`".into(),
    })
}
