//! `flowloom apply`: plan under the lock, show, confirm, carry out exactly that plan, and
//! say what happened.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, compute, load, open_repo, take_lock};
use crate::apply::{Executor, Failure, Report};
use crate::cli::{ApplyArgs, Cli};
use crate::error::RepoError;
use crate::manifest::Manifest;
use crate::plan::{Action, Change, Plan};
use crate::read::state::State;
use crate::render;
use crate::render::output::{Printer, Style};

pub fn run(cli: &Cli, start_dir: &Path, args: &ApplyArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    let repo = open_repo(start_dir)?;
    // Checked before waiting for the lock (a broken manifest fails at once), and read again
    // under it: a `flowloom new` that held the lock may just have declared a session.
    load(cli, start_dir, Some(&repo))?;
    let saved = match &args.plan_file {
        Some(file) => Some(crate::store::saved_plan::read::<crate::plan::saved::Saved>(
            &start_dir.join(file),
            file,
            crate::plan::saved::VERSION,
        )?),
        None => None,
    };
    // A saved plan was reviewed when it was made (as with `terraform apply PLANFILE`).
    let confirm = if args.yes || saved.is_some() {
        Confirm::Given
    } else {
        Confirm::Ask
    };
    refuse_without_terminal(
        confirm,
        "apply",
        "review `flowloom plan`, then run `flowloom apply --yes`",
    )?;
    let options = crate::plan::Options {
        force: args.force || saved.as_ref().is_some_and(|s| s.force),
        targets: match &saved {
            Some(s) => s.targets.iter().cloned().collect(),
            None => args.target.iter().cloned().collect(),
        },
        ..Default::default()
    };
    let (lock, manifest) = lock_and_load(cli, start_dir, &repo, &printer)?;
    let run = Run {
        json: args.json,
        ..Run::new(&repo, start_dir, &printer, &lock)
    };
    run.carry_out(&manifest, &options, confirm, saved.as_ref(), &mut || Ok(()))
}

/// The apply lock (SPEC §8), then the manifest read under it: what a concurrent `new` or
/// `rm` declared while this command waited counts.
pub(super) fn lock_and_load(
    cli: &Cli,
    start_dir: &Path,
    repo: &gix::Repository,
    printer: &Printer,
) -> Result<(crate::store::lock::ApplyLock, Manifest), Error> {
    let lock = take_lock(
        &crate::fsutil::canonical(repo.common_dir()),
        cli.global.lock_timeout,
        printer,
    )?;
    let manifest = load(cli, start_dir, Some(repo))?;
    Ok((lock, manifest))
}

/// Whether the user already said yes (`--yes`, a saved plan, `flowloom new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirm {
    Given,
    Ask,
}

/// Refuse before taking the lock or reading anything: a script without `--yes` must not
/// hang, and must not change anything.
pub(super) fn refuse_without_terminal(confirm: Confirm, what: &str, help: &str) -> Result<(), Error> {
    match unconfirmed(confirm, std::io::stdin().is_terminal(), what, help) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// The refusal of a command that would ask `what` with nobody at a terminal to answer.
fn unconfirmed(confirm: Confirm, terminal: bool, what: &str, help: &str) -> Option<Error> {
    (confirm == Confirm::Ask && !terminal).then(|| Error::NoConfirmation {
        what: what.into(),
        help: help.into(),
    })
}

/// A command's own last word on a plan before it is carried out (`rm`: what blocks it).
pub(super) type Refusal<'a> = dyn Fn(&Plan, &State) -> Option<Error> + 'a;

/// One apply, under the lock already taken: plan, show, confirm, carry out, say what happened.
pub(super) struct Run<'a> {
    pub repo: &'a gix::Repository,
    pub start_dir: &'a Path,
    pub printer: &'a Printer,
    pub json: bool,
    /// When the apply the lock was taken over from started, if it was killed.
    pub stale: Option<jiff::Timestamp>,
    /// Print the plan on standard error (`flowloom new` prints only the path on stdout).
    pub plan_on_stderr: bool,
    /// All or nothing (`flowloom rm`, SPEC §11.2): an error that stops the run once the plan
    /// is made, before anything is asked or done (a blocked removal).
    pub refuse: Option<&'a Refusal<'a>>,
}

impl<'a> Run<'a> {
    /// A run under `lock`, as `apply` prints it (`new` sets `plan_on_stderr`).
    pub fn new(
        repo: &'a gix::Repository,
        start_dir: &'a Path,
        printer: &'a Printer,
        lock: &crate::store::lock::ApplyLock,
    ) -> Self {
        Run {
            repo,
            start_dir,
            printer,
            json: false,
            stale: lock.stale().and_then(|s| s.started),
            plan_on_stderr: false,
            refuse: None,
        }
    }

    /// `before`: what to do once the user agreed, before anything of the plan is done (a
    /// manifest edit of `flowloom rm`); it runs even when the plan has nothing to do.
    pub fn carry_out(
        &self,
        manifest: &Manifest,
        options: &crate::plan::Options,
        confirm: Confirm,
        saved: Option<&crate::plan::saved::Saved>,
        before: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<ExitCode, Error> {
        let printer = self.printer;
        // Read and plan under the lock: what another apply did before we got it counts.
        let (mut state, mut plan, bad_base) =
            compute(self.repo, manifest, self.start_dir, options, self.stale, printer)?;
        // SPEC §10: on a terminal, untrusted setup commands are shown and the user asked;
        // `--yes` (Confirm::Given) never implies trust.
        if confirm == Confirm::Ask && saved.is_none() {
            let untrusted = untrusted_setup(&plan);
            if !untrusted.is_empty() && ask_trust(&untrusted, printer) {
                let hashes = untrusted.iter().map(crate::store::machine::setup_hash).collect();
                crate::store::machine::trust(&state.repository_key, &hashes)?;
                state.trusted.extend(hashes);
                plan = crate::plan::plan_with(manifest, &state, options);
            }
        }
        if let Some(saved) = saved {
            // Refused unless nothing it relies on changed and it is what is planned now,
            // step for step; then what is carried out is the plan read back from the file.
            saved.check(manifest, &state, &plan)?;
            plan = saved.plan.clone();
        }
        if let Some(error) = self.refuse.and_then(|refuse| refuse(&plan, &state)) {
            return Err(error);
        }
        if self.plan_on_stderr {
            printer.status(render::text(&plan, manifest, printer).trim_end());
        } else if !self.json {
            printer.out(&render::text(&plan, manifest, printer));
        }
        if plan.has_changes() && confirm == Confirm::Ask && !printer.confirm("Apply these changes?") {
            printer.status("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
        before()?;
        let mut summary = Summary::default();
        if plan.has_changes() {
            let progress = !self.json && !printer.quiet && std::io::stderr().is_terminal();
            let reporter = super::wiring::Terminal::new(progress);
            let mut executor = Executor::new(self.repo, &super::wiring::Reader, &reporter, self.start_dir)?;
            let report = executor.execute(&plan);
            summary = Summary::of(report, manifest, printer, !self.json);
        }
        summary.blocked += plan.count("blocked");
        if self.json {
            let mut doc = render::json(&plan, manifest);
            doc.applied = Some(summary.errors.is_empty() && summary.blocked == 0);
            doc.errors = summary
                .errors
                .iter()
                .map(|(s, e)| render::JsonError {
                    session: s.clone(),
                    error: e.to_string(),
                })
                .collect();
            printer.out(&render::to_json_string(&doc));
        } else if plan.has_changes() {
            printer.status(&summary.line(&plan, printer));
        }
        if crate::store::lock::interrupted() {
            // Released, exit 130: what is left is the next apply's plan.
            crate::store::lock::exit_if_interrupted();
        }
        if !summary.errors.is_empty() {
            return Err(Error::Apply {
                count: summary.errors.len(),
                errors: summary.errors.into_iter().map(|(_, e)| e).collect(),
            });
        }
        Ok(if summary.blocked > 0 || bad_base {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// The distinct setup scripts (setup and teardown, one trust) that keep sessions of
/// `plan` from being created or removed.
pub(super) fn untrusted_setup(plan: &Plan) -> Vec<crate::store::machine::SetupScript> {
    let mut scripts: Vec<crate::store::machine::SetupScript> = Vec::new();
    for change in &plan.changes {
        if let Action::Blocked { reasons } = &change.action {
            for r in reasons {
                if let crate::plan::Reason::SetupNotTrusted { script }
                | crate::plan::Reason::TeardownNotTrusted { script } = r
                    && !scripts.contains(script)
                {
                    scripts.push(script.clone());
                }
            }
        }
    }
    scripts
}

/// Shows the commands and asks whether this machine trusts them.
pub(super) fn ask_trust(scripts: &[crate::store::machine::SetupScript], printer: &Printer) -> bool {
    let mut text = String::from(
        "The manifest's setup and teardown commands are code from whoever last changed it. Setup runs in each new \
         session, teardown in a session right before it is removed:\n",
    );
    text.push_str(&super::trust::describe_scripts(scripts));
    // Part of the question, so that `--quiet` cannot hide what is being trusted.
    text.push_str("Trust these setup commands on this machine?");
    printer.confirm(&text)
}

/// A change apply did not carry out because checking again right before found it blocked.
fn blocked_again_text(change: &Change, reasons: &[crate::plan::Reason], manifest: &Manifest) -> String {
    let words: Vec<String> = reasons
        .iter()
        .map(|r| crate::render::output::escape(&render::reason_text(r, manifest)).into_owned())
        .collect();
    // A failed teardown is what apply did, not what it found on a check.
    let found = if reasons
        .iter()
        .all(|r| matches!(r, crate::plan::Reason::TeardownFailed { .. }))
    {
        ""
    } else {
        "checked again right before, "
    };
    format!(
        "{}: {} not carried out: {found}{}",
        change.session,
        change.action.kind(),
        words.join("; ")
    )
}

/// What an apply did, counted.
#[derive(Default)]
struct Summary {
    created: usize,
    updated: usize,
    removed: usize,
    /// Worktrees removed whose branch was kept (not integrated).
    retained: usize,
    /// Blocked in the plan, or found blocked when apply checked again.
    blocked: usize,
    /// Of those, found blocked when apply checked again (also in `errors`).
    late_blocked: usize,
    /// Made, but their `post-checkout` hook failed (also in `errors`).
    hook_failed: usize,
    interrupted: usize,
    errors: Vec<(String, RepoError)>,
}

impl Summary {
    /// Count the outcomes, printing a line for each change done or found blocked.
    fn of(report: Report<'_>, manifest: &Manifest, printer: &Printer, lines: bool) -> Summary {
        let mut s = Summary::default();
        for (step, why) in &report.housekeeping {
            printer.warn(&format!(
                "{}: {}",
                crate::render::output::escape(&render::housekeeping_text(step, manifest)),
                crate::render::output::escape(&why.to_string())
            ));
        }
        for outcome in report.changes {
            let change = outcome.change;
            match outcome.result {
                Ok(()) if !change.action.changes_anything() => {}
                Ok(()) => {
                    let (verb, style) = s.count_done(&change.action);
                    if lines {
                        printer.status(&format!(
                            "{} {}: {}",
                            printer.paint(style, verb),
                            change.session,
                            manifest.relative(&change.path)
                        ));
                    }
                }
                Err(Failure::Blocked(reasons)) => {
                    s.blocked += 1;
                    s.late_blocked += 1;
                    let text = blocked_again_text(change, &reasons, manifest);
                    if lines {
                        printer.status(&format!("{} {text}", printer.paint(Style::Blocked, "!")));
                    }
                    s.errors.push((change.session.clone(), RepoError::message(text)));
                }
                Err(Failure::Interrupted) => {
                    s.interrupted += 1;
                    s.errors.push((
                        change.session.clone(),
                        RepoError::message(format!(
                            "{}: {} not carried out: interrupted",
                            change.session,
                            change.action.kind()
                        )),
                    ));
                }
                Err(Failure::HookFailed(why)) => {
                    s.hook_failed += 1;
                    match change.action {
                        Action::Create { .. } => s.created += 1,
                        _ => s.updated += 1,
                    }
                    s.errors
                        .push((change.session.clone(), RepoError::message(why.to_string())));
                }
                Err(Failure::Error(e)) => s.errors.push((change.session.clone(), e)),
            }
        }
        s
    }

    /// Counts a change carried out, and gives the verb (with its style) that says what was done.
    fn count_done(&mut self, action: &Action) -> (&'static str, Style) {
        match action {
            Action::Create { .. } => {
                self.created += 1;
                ("created", Style::Create)
            }
            Action::Update { .. } => {
                self.updated += 1;
                ("updated", Style::Update)
            }
            Action::Retain { .. } => {
                self.retained += 1;
                ("removed the worktree, kept the branch of", Style::Remove)
            }
            _ => {
                self.removed += 1;
                ("removed", Style::Remove)
            }
        }
    }

    /// `Apply complete: 2 created, 0 updated, 1 removed, 0 blocked.`, as Terraform ends.
    fn line(&self, plan: &Plan, printer: &Printer) -> String {
        let failed = self.errors.len() - self.late_blocked - self.interrupted - self.hook_failed;
        let head = if self.interrupted > 0 {
            "Apply interrupted:"
        } else if failed > 0 {
            "Apply incomplete:"
        } else {
            "Apply complete:"
        };
        let mut text = format!(
            "{} {} created, {} updated, {} removed, {} retained, {} blocked",
            printer.paint(Style::Bold, head),
            self.created,
            self.updated,
            self.removed,
            self.retained,
            self.blocked
        );
        if failed > 0 {
            text.push_str(&format!(", {failed} failed"));
        }
        if self.interrupted > 0 {
            text.push_str(&format!(", {} not started", self.interrupted));
        }
        if self.hook_failed > 0 {
            text.push_str(&format!(
                ", {} post-checkout {} failed",
                self.hook_failed,
                crate::plan::plural(self.hook_failed, "hook")
            ));
        }
        if !plan.housekeeping.is_empty() {
            text.push_str(&format!(", {} housekeeping", plan.housekeeping.len()));
        }
        text.push('.');
        text
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic as _;

    use super::{Confirm, Error, unconfirmed};

    #[test]
    fn asking_nobody_is_refused_as_a_missing_confirmation() {
        let help = "review `flowloom plan`, then run `flowloom apply --yes`";
        assert!(unconfirmed(Confirm::Given, false, "apply", help).is_none());
        assert!(unconfirmed(Confirm::Ask, true, "apply", help).is_none());
        let e = unconfirmed(Confirm::Ask, false, "apply", help).expect("refused");
        assert!(matches!(e, Error::NoConfirmation { .. }), "{e:?}");
        assert_eq!(
            e.code().map(|c| c.to_string()).as_deref(),
            Some("flowloom::confirmation")
        );
        assert_eq!(
            e.to_string(),
            "refusing to apply without confirmation: standard input is not a terminal"
        );
        assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some(help));
    }
}
