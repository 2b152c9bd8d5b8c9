//! `flowloom plan`: read, plan, print; change nothing.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, compute, load, open_repo};
use crate::cli::Cli;
use crate::cli::PlanArgs;
use crate::output::Printer;
use crate::render;

pub fn run(cli: &Cli, start_dir: &Path, args: &PlanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let (_, plan, bad_base) = compute(&repo, &manifest, start_dir, &crate::plan::Options { force: args.force })?;
    if args.json {
        printer.out(&render::to_json_string(&render::json(&plan, &manifest)));
    } else {
        printer.out(&render::text(&plan, &manifest, printer));
    }
    Ok(if bad_base {
        ExitCode::from(1)
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
