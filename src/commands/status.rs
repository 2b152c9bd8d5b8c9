//! `flowloom status`: every in-scope session with its state; changes nothing.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo};
use crate::cli::{Cli, StatusArgs};
use crate::output::Printer;
use crate::state::State;
use crate::status;

pub fn run(cli: &Cli, start_dir: &Path, args: &StatusArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let state = State::read(&repo, &manifest, start_dir)?;
    let plan = crate::plan::plan(&manifest, &state);
    let rows = status::rows(&repo, &manifest, &state, &plan, &|w| printer.warn(w));
    if args.json {
        printer.out(&crate::render::to_json_string(&status::json(&rows, &manifest)));
    } else {
        printer.out(&status::text(&rows, &manifest, &printer));
    }
    Ok(ExitCode::SUCCESS)
}
