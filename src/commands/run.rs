//! `flowloom run ID -- CMD...`: run a command in a session's worktree with the session's
//! environment (SPEC §10): `FLOWLOOM_SESSION`, `FLOWLOOM_BRANCH`, `FLOWLOOM_WORKTREE`. It
//! exits with the command's code (128 + the signal that ended it); Ctrl-C and SIGTERM sent
//! to flowloom are passed on to the command.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo};
use crate::cli::{Cli, RunArgs};
use crate::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &RunArgs, _printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let Some(session) = manifest.sessions.get(&args.id) else {
        return Err(Error::Usage {
            message: format!(
                "no session `{}` in {}",
                crate::output::escape(&args.id),
                manifest.relative(&manifest.path)
            ),
            help: Some("`flowloom status` lists the sessions; `flowloom new ID` makes one".into()),
        });
    };
    let worktree = crate::state::canonical(&manifest.worktree_path(session));
    if !worktree.is_dir() {
        return Err(Error::Usage {
            message: format!("session `{}` has no worktree yet ({})", session.id, worktree.display()),
            help: Some(format!("make it with `flowloom apply --target {}`", session.id)),
        });
    }
    let (program, rest) = args.command.split_first().ok_or_else(|| Error::Usage {
        message: "no command to run".into(),
        help: Some("write it after `--`: flowloom run ID -- make test".into()),
    })?;
    let mut child = std::process::Command::new(program)
        .args(rest)
        .current_dir(&worktree)
        .env("FLOWLOOM_SESSION", &session.id)
        .env("FLOWLOOM_BRANCH", &session.branch)
        .env("FLOWLOOM_WORKTREE", &worktree)
        .spawn()
        .map_err(|e| Error::Usage {
            message: format!("cannot run {}: {e}", program.to_string_lossy()),
            help: Some("check the command name and PATH".into()),
        })?;
    // While the command runs, Ctrl-C does not end flowloom: it is passed on.
    let _critical = crate::lock::Critical::enter();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut forwarded = false;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if crate::lock::interrupted() && !forwarded {
                    forward_interrupt(pid);
                    forwarded = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let status = child.wait().map_err(|e| Error::Usage {
        message: format!("waiting for {} failed: {e}", program.to_string_lossy()),
        help: None,
    })?;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.join();
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn forward_interrupt(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}
