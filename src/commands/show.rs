//! `flowloom show FILE`: a plan saved with `plan --out`, read back and printed by the
//! renderer `plan` prints with (text, or `--json`); reads nothing but the file.

use std::path::Path;
use std::process::ExitCode;

use super::Error;
use crate::cli::ShowArgs;
use crate::render;
use crate::render::output::Printer;

pub fn run(start_dir: &Path, args: &ShowArgs, printer: &Printer) -> Result<ExitCode, Error> {
    // Named as the user wrote it: the message stays one line.
    let saved = crate::store::saved_plan::read::<crate::plan::saved::Saved>(
        &start_dir.join(&args.file),
        &args.file,
        crate::plan::saved::VERSION,
    )?;
    if args.json {
        printer
            .plain()
            .out(&render::to_json_string(&render::json(&saved.plan, &saved)));
    } else {
        printer.out(&render::text(&saved.plan, &saved, printer));
    }
    Ok(ExitCode::SUCCESS)
}
