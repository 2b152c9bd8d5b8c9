//! The commands: find the manifest and the repository, then plan, apply or validate.
//! Errors are sorted into exit codes here, at the edge.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::apply::Applier;
use crate::cli::{ApplyArgs, Cli, Command, PlanArgs};
use crate::error::RepoError;
use crate::lock::ApplyLock;
use crate::manifest::{self, Manifest};
use crate::output::{Printer, Style};
use crate::plan::{Action, Plan};
use crate::render;
use crate::state::State;

/// Everything a command can fail with, as one diagnostic.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("{message}")]
    #[diagnostic(code(flowloom::usage))]
    Usage {
        message: String,
        #[help]
        help: Option<String>,
    },
    #[error("{count} {} could not be applied", crate::plan::plural(*count, "change"))]
    #[diagnostic(code(flowloom::apply))]
    Apply {
        count: usize,
        #[related]
        errors: Vec<RepoError>,
    },
}

/// A `base` that does not resolve, pointed at in the manifest (SPEC §2).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("session `{session}`: base `{base}` does not resolve to a commit")]
#[diagnostic(
    code(flowloom::base),
    help("name a branch, tag or commit that exists in this repository, or fetch it first")
)]
pub struct BaseError {
    session: String,
    base: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("not found in the repository")]
    span: Option<SourceSpan>,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; usage errors are errors (1), not "changes
            // pending" (2, which clap would use).
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let printer = Printer::new(cli.global.color, cli.global.quiet, cli.global.verbose);
    match run(&cli, &printer) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

#[allow(clippy::print_stderr)]
fn report(e: &dyn Diagnostic) {
    let mut text = String::new();
    // Diagnostics go to stderr, which is what tests and logs capture: keep them free of
    // escape codes whatever the color choice for the plan on stdout.
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    if handler.render_report(&mut text, e).is_err() {
        text = e.to_string();
    }
    eprint!("{text}");
}

fn run(cli: &Cli, printer: &Printer) -> Result<ExitCode, Error> {
    let start_dir = start_dir(cli.global.directory.as_deref())?;
    match &cli.command {
        Command::Validate => validate(cli, &start_dir, printer),
        Command::Plan(args) => plan_cmd(cli, &start_dir, args, printer),
        Command::Apply(args) => apply_cmd(cli, &start_dir, args, printer),
    }
}

fn start_dir(dir: Option<&Path>) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir().map_err(|e| RepoError::io("read", Path::new("the current directory"), e))?;
    let dir = match dir {
        Some(d) => cwd.join(d),
        None => cwd,
    };
    dir.canonicalize().map_err(|e| Error::Usage {
        message: format!("cannot use {} as the working directory: {e}", dir.display()),
        help: Some("pass an existing directory to -C".into()),
    })
}

fn open_repo(start_dir: &Path) -> Result<gix::Repository, Error> {
    gix::discover(start_dir).map_err(|e| Error::Usage {
        message: format!(
            "{} is not inside a git repository: {}",
            start_dir.display(),
            crate::error::chain(&e)
        ),
        help: Some("run flowloom inside the repository, or point -C at it".into()),
    })
}

/// The manifest to use: `--manifest`, else `flowloom.toml` at the root of the main worktree.
fn manifest_path(cli: &Cli, start_dir: &Path, repo: Option<&gix::Repository>) -> Result<PathBuf, Error> {
    let path = match (&cli.global.manifest, repo) {
        (Some(p), _) => start_dir.join(p),
        (None, Some(repo)) => {
            let main = repo
                .main_repo()
                .map_err(|e| RepoError::git("open the main worktree of", repo.common_dir(), e))?;
            let top = main.workdir().ok_or_else(|| Error::Usage {
                message: "the repository is bare: it has no main worktree to hold flowloom.toml".into(),
                help: Some("pass --manifest PATH".into()),
            })?;
            top.join(manifest::FILE_NAME)
        }
        (None, None) => start_dir.join(manifest::FILE_NAME),
    };
    // Canonical, so that every path derived from it compares with what git records.
    Ok(match path.canonicalize() {
        Ok(p) => p,
        Err(_) => crate::state::canonical(&path),
    })
}

fn load(cli: &Cli, start_dir: &Path, repo: Option<&gix::Repository>) -> Result<Manifest, Error> {
    let path = manifest_path(cli, start_dir, repo)?;
    Ok(Manifest::load(&path)?)
}

fn validate(cli: &Cli, start_dir: &Path, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = if cli.global.manifest.is_some() {
        None
    } else {
        Some(open_repo(start_dir)?)
    };
    let manifest = load(cli, start_dir, repo.as_ref())?;
    let n = manifest.sessions.len();
    printer.status(&format!(
        "{} is valid: {n} {} declared.",
        manifest.relative(&manifest.path),
        crate::plan::plural(n, "session")
    ));
    Ok(ExitCode::SUCCESS)
}

/// Read the repository and plan; also report a `base` that does not resolve.
fn compute(repo: &gix::Repository, manifest: &Manifest, start_dir: &Path) -> Result<(State, Plan, bool), Error> {
    let state = State::read(repo, manifest, start_dir)?;
    let plan = crate::plan::plan(manifest, &state);
    let mut bad_base = false;
    for change in &plan.changes {
        let Action::Blocked { reasons } = &change.action else {
            continue;
        };
        let Some(session) = manifest.sessions.get(&change.session) else {
            continue;
        };
        if reasons.iter().any(|r| r.starts_with("base `")) {
            bad_base = true;
            report(&BaseError {
                session: session.id.clone(),
                base: session.base.clone(),
                src: NamedSource::new(manifest.relative(&manifest.path), manifest.source.clone()),
                span: session.base_span.clone().map(SourceSpan::from),
            });
        }
    }
    Ok((state, plan, bad_base))
}

fn plan_cmd(cli: &Cli, start_dir: &Path, args: &PlanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let (_, plan, bad_base) = compute(&repo, &manifest, start_dir)?;
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

fn apply_cmd(cli: &Cli, start_dir: &Path, args: &ApplyArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let printer = if args.json { printer.plain() } else { *printer };
    let repo = open_repo(start_dir)?;
    let manifest = load(cli, start_dir, Some(&repo))?;
    let common_dir = crate::state::canonical(repo.common_dir());
    // Refuse before taking the lock or reading anything: a script without --yes must not
    // hang, and must not change anything.
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: "refusing to apply without confirmation: standard input is not a terminal".into(),
            help: Some("review `flowloom plan`, then run `flowloom apply --yes`".into()),
        });
    }
    let _lock = ApplyLock::acquire(&common_dir, |holder| {
        printer.warn(&format!(
            "took over the lock of an apply that ended without releasing it ({holder})"
        ))
    })?;
    // Read and plan under the lock: what another apply did before we got it counts.
    let (state, plan, bad_base) = compute(&repo, &manifest, start_dir)?;

    if !args.json {
        printer.out(&render::text(&plan, &manifest, &printer));
    }
    let mut applied = Vec::new();
    if plan.has_changes() {
        if !args.yes && !printer.confirm("Apply these changes?") {
            printer.status("Apply cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
        let mut applier = Applier::new(&repo, &manifest, &state);
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
