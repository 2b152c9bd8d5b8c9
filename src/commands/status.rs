//! `flowloom status`: every in-scope session with its state; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, open_repo};
use crate::cli::{Cli, StatusArgs};
use crate::read::state::{Needs, State};
use crate::render::output::Printer;
use crate::status;

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
    let rows = status::rows(&repo, &manifest, &state, &plan, &|w| printer.warn(w));
    let now = status::now();
    if args.json {
        printer.out(&crate::render::to_json_string(&status::json(&rows, &manifest, now)));
    } else {
        printer.out(&status::text(&rows, &manifest, &printer, now));
    }
    Ok(ExitCode::SUCCESS)
}
