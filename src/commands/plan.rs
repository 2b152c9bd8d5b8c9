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
    };
    let stale = crate::store::recover::stale_since(&crate::fsutil::canonical(repo.common_dir()));
    let (state, plan, bad_base) = compute(&repo, &manifest, start_dir, &options, stale, printer)?;
    if let Some(out) = &args.out {
        let mut doc = render::json(&plan, &manifest);
        doc.saved = Some(crate::plan::saved::Saved {
            fingerprint: crate::plan::saved::fingerprint(&manifest, &state, &plan),
            manifest: manifest.path.clone(),
            force: args.force,
            manifest_digest: crate::plan::saved::manifest_digest(&manifest),
            targets: args.target.clone(),
        });
        let path = start_dir.join(out);
        crate::fsutil::write_atomic(&path, render::to_json_string(&doc).as_bytes())?;
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
