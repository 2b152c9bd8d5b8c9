//! `flowloom apply`: plan under the lock, confirm, carry out.

use std::path::Path;
use std::process::ExitCode;

use std::io::IsTerminal;

use super::{Error, compute, load, open_repo, take_lock};
use crate::apply::{Executor, Failure};
use crate::cli::{ApplyArgs, Cli};
use crate::error::RepoError;
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
    let lock = take_lock(&common_dir, &printer)?;
    let stale = lock.stale().and_then(|s| s.started);
    // Read and plan under the lock: what another apply did before we got it counts.
    let options = crate::plan::Options {
        force: args.force || saved.as_ref().is_some_and(|s| s.saved.force),
    };
    let (state, plan, bad_base) = compute(&repo, &manifest, start_dir, &options, stale, &printer)?;
    if let Some(saved) = &saved {
        let same = saved.saved.manifest == manifest.path
            && saved.saved.fingerprint == crate::saved::fingerprint(&manifest, &state, &plan);
        if !same {
            return Err(Error::Usage {
                message: "the saved plan is stale: the manifest or the repository changed since it was made; nothing was applied".into(),
                help: Some("run `flowloom plan --out FILE` again and review it".into()),
            });
        }
    }

    if !args.json {
        printer.out(&render::text(&plan, &manifest, &printer));
    }
    let mut report = None;
    if plan.has_changes() {
        if !confirmed && !printer.confirm("Apply these changes?") {
            printer.status("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
        let progress = !args.json && !printer.quiet && std::io::stderr().is_terminal();
        let mut executor = Executor::new(&repo, start_dir, progress)?;
        report = Some(executor.execute(&plan));
    }
    let mut errors = Vec::new();
    let mut late_blocks = 0;
    if let Some(report) = report {
        for (step, why) in &report.housekeeping {
            printer.warn(&format!("{}: {why}", render::housekeeping_text(step, &manifest)));
        }
        for outcome in report.changes {
            let change = outcome.change;
            match outcome.result {
                Ok(()) if matches!(change.action, Action::Blocked { .. }) => {}
                Ok(()) => {
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
                Err(Failure::Blocked(reasons)) => {
                    late_blocks += 1;
                    let words: Vec<String> = reasons.iter().map(|r| render::reason_text(r, &manifest)).collect();
                    if !args.json {
                        printer.status(&format!(
                            "{} {}: {} was not carried out; checked again, {}",
                            printer.paint(Style::Blocked, "!"),
                            change.session,
                            change.action.kind(),
                            words.join("; ")
                        ));
                    }
                    errors.push((
                        change.session.clone(),
                        RepoError::message(format!(
                            "{}: {} was not carried out: {}",
                            change.session,
                            change.action.kind(),
                            words.join("; ")
                        )),
                    ));
                }
                Err(Failure::Error(e)) => errors.push((change.session.clone(), e)),
            }
        }
    }
    let _ = late_blocks;
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
