//! `flowloom show FILE`: a plan saved with `plan --out`, printed as `plan` prints it; reads
//! nothing but the file.

use std::path::Path;
use std::process::ExitCode;

use super::Error;
use crate::cli::ShowArgs;
use crate::render;
use crate::render::output::Printer;

pub fn run(start_dir: &Path, args: &ShowArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let path = start_dir.join(&args.file);
    // Named as the user wrote it: the message stays one line.
    let not_a_plan = |message: String| Error::Usage {
        message: message.replace(&path.display().to_string(), &args.file.display().to_string()),
        help: None,
    };
    // The checks `apply FILE` makes (a regular file, bounded, with a fingerprint), then the
    // whole document, read once more for what is shown.
    let saved = crate::plan::saved::read(&path).map_err(not_a_plan)?;
    let bytes = match crate::fsutil::read_regular(&path, crate::plan::saved::MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        _ => return Err(not_a_plan(format!("cannot read {}", args.file.display()))),
    };
    let invalid =
        |e: serde_json::Error| not_a_plan(format!("{} is not a saved flowloom plan: {e}", args.file.display()));
    if args.json {
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        printer.plain().out(&render::to_json_string(&doc));
    } else {
        let plan: render::ShownPlan = serde_json::from_slice(&bytes).map_err(invalid)?;
        let name = saved
            .saved
            .manifest
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "the manifest".into());
        printer.out(&render::saved_text(&plan, &name, printer));
    }
    Ok(ExitCode::SUCCESS)
}
