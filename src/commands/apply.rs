//! `flowloom apply`: plan under the lock, confirm, carry out.

use std::path::Path;
use std::process::ExitCode;

use std::io::IsTerminal;

use super::{Error, compute, load, open_repo, take_lock};
use crate::apply::Applier;
use crate::cli::{ApplyArgs, Cli};
use crate::output::{Printer, Style};
use crate::plan::Action;
use crate::render;

pub fn run(cli: &Cli, start_dir: &Path, args: &ApplyArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let common_dir = crate::state::canonical(repo.common_dir());
    let saved = match &args.plan_file {
        Some(file) => Some(
            crate::saved::read(&start_dir.join(file)).map_err(|message| Error::Usage {
                message,
                help: Some("make one with `flowloom plan --out FILE`".into()),
            })?,
        ),
        None => None,
    };
    // A saved plan was reviewed when it was made (as with `terraform apply PLANFILE`).
    let confirmed = args.yes || saved.is_some();
    // Refuse before taking the lock or reading anything: a script without --yes must not
    // hang, and must not change anything.
    if !confirmed && !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: "refusing to apply without confirmation: standard input is not a terminal".into(),
            help: Some("review `flowloom plan`, then run `flowloom apply --yes`".into()),
        });
    }
    let _lock = take_lock(&common_dir, &manifest, &printer)?;
    // Read and plan under the lock: what another apply did before we got it counts.
    let options = crate::plan::Options {
        force: args.force || saved.as_ref().is_some_and(|s| s.saved.force),
    };
    let (state, plan, bad_base) = compute(&repo, &manifest, start_dir, &options, &printer)?;
    if let Some(saved) = &saved {
        let same_inputs = saved.saved.manifest == manifest.path
            && saved.saved.fingerprint == crate::saved::fingerprint(&manifest, &state, &options);
        let same_changes = serde_json::to_value(&render::json(&plan, &manifest).changes)
            .ok()
            .as_ref()
            == Some(&saved.changes);
        if !same_inputs || !same_changes {
            return Err(Error::Usage {
                message: "the saved plan is stale: the manifest or the repository changed since it was made; nothing was applied".into(),
                help: Some("run `flowloom plan --out FILE` again and review it".into()),
            });
        }
    }

    if !args.json {
        printer.out(&render::text(&plan, &manifest, &printer));
    }
    let mut applied = Vec::new();
    if plan.has_changes() {
        if !confirmed && !printer.confirm("Apply these changes?") {
            printer.status("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
        let progress = !args.json && !printer.quiet && std::io::stderr().is_terminal();
        let mut applier = Applier::new(&repo, &manifest, &state, progress);
        applied = applier.apply(&plan, &state);
    }
    let mut errors = Vec::new();
    for outcome in applied {
        let change = outcome.change;
        match outcome.error {
            None if !matches!(change.action, Action::Blocked { .. }) => {
                let (verb, style) = match change.action {
                    Action::Create { .. } => ("created", Style::Create),
                    Action::Update { .. } => ("updated", Style::Update),
                    _ => ("removed", Style::Remove),
                };
                if !args.json {
                    printer.status(&format!(
                        "{} {}: {}",
                        printer.paint(style, verb),
                        change.session,
                        manifest.relative(&change.path)
                    ));
                }
            }
            None => {}
            Some(e) => errors.push((change.session.clone(), e)),
        }
    }
    let blocked = plan.count("blocked");
    if args.json {
        let mut doc = render::json(&plan, &manifest);
        doc.applied = Some(errors.is_empty() && blocked == 0);
        doc.errors = errors
            .iter()
            .map(|(s, e)| render::JsonError {
                session: s.clone(),
                error: e.to_string(),
            })
            .collect();
        printer.out(&render::to_json_string(&doc));
    }
    if !errors.is_empty() {
        return Err(Error::Apply {
            count: errors.len(),
            errors: errors.into_iter().map(|(_, e)| e).collect(),
        });
    }
    if blocked > 0 && !args.json {
        printer.status(&format!(
            "{} {blocked} {} stayed blocked (see above).",
            printer.paint(Style::Blocked, "!"),
            crate::plan::plural(blocked, "session")
        ));
    }
    Ok(if blocked > 0 || bad_base {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
