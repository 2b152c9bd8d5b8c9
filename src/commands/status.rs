//! `flowloom status`: every in-scope session with its state; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, open_repo};
use crate::cli::{Cli, StatusArgs};
use crate::manifest::Manifest;
use crate::read::dashboard::Unreadable;
use crate::read::state::{Needs, State};
use crate::render::output::Printer;
use crate::status::{self, Dashboard};

pub fn run(cli: &Cli, start_dir: &Path, args: &StatusArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    let repo = open_repo(start_dir)?;
    let manifest = super::fallback::load_or_record(cli, start_dir, &repo, &printer)?;
    let mut state = State::read(&repo, &manifest, start_dir)?;
    // Of the planner's questions, only the merge checks of undeclared sessions' branches:
    // they tell a retained branch from one apply deletes. The dirty checks are status's
    // own (every worktree, in parallel); the removal checks (processes, submodules) would
    // only tell one kind of orphan from another.
    let needs = crate::plan::questions(&manifest, &state);
    state.answer(
        &repo,
        &Needs {
            unmerged: needs.unmerged,
            ..Needs::default()
        },
    )?;
    let plan = crate::plan::plan(&manifest, &state);
    let (dashboard, unreadable) = status::dashboard(&repo, &manifest, &state, &plan, start_dir);
    print_dashboard(&dashboard, &unreadable, &manifest, args, &printer);
    Ok(ExitCode::SUCCESS)
}

/// The dashboard as JSON or as the fitted table, after a warning per unreadable worktree.
fn print_dashboard(
    dashboard: &Dashboard,
    unreadable: &[Unreadable],
    manifest: &Manifest,
    args: &StatusArgs,
    printer: &Printer,
) {
    use crate::render::status as words;
    for u in unreadable {
        printer.warn(&words::unreadable_warning(&manifest.relative(&u.path), &u.error));
    }
    let now = status::now();
    if args.json {
        let json = words::json(dashboard, manifest, now);
        printer.out(&crate::render::to_json_string(&json));
    } else {
        let width = (!args.wide).then(words::terminal_width);
        let name = manifest.relative(&manifest.path);
        printer.out(&words::text(dashboard, &name, printer, now, width));
    }
}
