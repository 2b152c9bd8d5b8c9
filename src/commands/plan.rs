//! `flowloom plan`: read, plan, print; change nothing.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, compute, load, open_repo};
use crate::cli::Cli;
use crate::cli::PlanArgs;
use crate::render;
use crate::render::output::Printer;

pub fn run(cli: &Cli, start_dir: &Path, args: &PlanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let options = crate::plan::Options {
        force: args.force,
        targets: args.target.iter().cloned().collect(),
        ..Default::default()
    };
    let stale = crate::store::recover::stale_since(&crate::fsutil::canonical(repo.common_dir()));
    let (state, plan, bad_base) = compute(&repo, &manifest, start_dir, &options, stale, printer)?;
    if let Some(note) = super::first_use::defaults_note(&manifest) {
        printer.status(&note);
    }
    if let Some(out) = &args.out {
        let saved = crate::plan::saved::Saved::new(&manifest, &state, &plan, &args.target);
        save(&saved, &manifest, start_dir, out)?;
        printer.status(&format!(
            "Saved the plan to {}; `flowloom apply {}` carries it out.",
            out.display(),
            out.display()
        ));
    }
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

/// Write the plan's JSON document with `saved` (the plan itself and its fingerprint) to `out`.
fn save(
    saved: &crate::plan::saved::Saved,
    manifest: &crate::manifest::Manifest,
    start_dir: &Path,
    out: &Path,
) -> Result<(), Error> {
    let mut doc = render::json(&saved.plan, manifest);
    doc.saved = Some(saved.clone());
    // A path that is not UTF-8 has no JSON form: such a plan cannot be saved.
    let text = serde_json::to_string_pretty(&doc).map_err(|why| Error::Unsaveable {
        file: out.to_owned(),
        why,
    })?;
    crate::fsutil::write_atomic(&start_dir.join(out), format!("{text}\n").as_bytes())?;
    Ok(())
}
