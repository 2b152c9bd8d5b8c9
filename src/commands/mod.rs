//! The commands, one file each; this module holds what they share: finding the
//! repository and the manifest, and the error type sorted into exit codes at the edge.

mod apply;
mod complete;
mod completions;
mod edit;
mod fallback;
mod first_use;
mod import;
mod init;
mod merge;
mod new;
mod path;
mod plan;
mod rm;
mod run;
mod setup;
mod share;
mod shell_init;
mod show;
mod status;
mod trust;
mod validate;
mod wiring;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use miette::{Diagnostic, SourceSpan};

use crate::cli::{Cli, Command};
use crate::error::RepoError;
use crate::manifest::{self, Manifest};
use crate::plan::{Action, Plan, Reason};
use crate::read::state::State;
use crate::render::output::Printer;
use crate::store::lock::ApplyLock;

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
    Lock(#[from] crate::store::lock::LockError),
    /// A repository format git or gitoxide cannot honour: refused before anything is read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Format(#[from] crate::read::format::FormatError),
    /// The command line asks for something that cannot be: a usage error.
    #[error("{message}")]
    #[diagnostic(code(flowloom::usage))]
    Usage {
        message: String,
        #[help]
        help: Option<String>,
    },
    /// `-C DIR` (or the current directory) cannot be used.
    #[error("cannot use {} as the working directory: {why}", dir.display())]
    #[diagnostic(code(flowloom::working_directory), help("pass an existing directory to -C"))]
    WorkingDirectory { dir: PathBuf, why: String },
    /// No repository at or above the working directory.
    #[error("{} is not inside a git repository: {why}", dir.display())]
    #[diagnostic(
        code(flowloom::not_a_repository),
        help("run flowloom inside the repository, or point -C at it (GIT_DIR and GIT_WORK_TREE are honoured)")
    )]
    NotARepository { dir: PathBuf, why: String },
    /// A repository another user owns, which git refuses too unless `safe.directory` says.
    #[error("detected dubious ownership in the repository at {}: {why}", dir.display())]
    #[diagnostic(
        code(flowloom::dubious_ownership),
        help(
            "git refuses it too. If you trust it, run `git config --global --add safe.directory <path>` as git suggests"
        )
    )]
    DubiousOwnership { dir: PathBuf, why: String },
    /// `core.sharedRepository` holds a value git refuses.
    #[error("core.sharedRepository is `{value}`, which git refuses too")]
    #[diagnostic(
        code(flowloom::shared_repository),
        help("set it to umask, group, all, or an octal mode that lets the owner read and write (0660, 0640)")
    )]
    SharedRepository { value: String },
    /// A bare repository has no main worktree, so no default place for the manifest.
    #[error("the repository is bare: it has no main worktree to hold flowloom.toml")]
    #[diagnostic(code(flowloom::bare), help("pass --manifest PATH"))]
    BareWithoutManifest,
    /// A session the command names that neither the manifest nor the repository holds.
    #[error("{message}")]
    #[diagnostic(code(flowloom::no_session))]
    NoSession {
        message: String,
        #[help]
        help: String,
    },
    /// A declared session whose worktree is not made (yet).
    #[error("session `{id}` has no worktree{} ({})", if *with_metadata { " with a readable metadata.json" } else { "" }, path.display())]
    #[diagnostic(code(flowloom::no_worktree), help("make it with `flowloom apply --target {id}`"))]
    NoWorktree {
        id: String,
        path: PathBuf,
        /// What is missing is the session's `metadata.json` (a worktree may be there).
        with_metadata: bool,
    },
    /// SPEC §8: a session's path (a worktree made by hand) holds a character that cannot be
    /// printed as it is: escaped, it would name another folder; raw, it could fake a line.
    #[error("the path of session `{id}` holds a control character or is not UTF-8, so it is not printed: {path}")]
    #[diagnostic(
        code(flowloom::unprintable_path),
        help("move the worktree to a plain name with `git worktree move`, then ask again")
    )]
    UnprintablePath {
        id: String,
        /// The path, escaped.
        path: String,
    },
    /// `flowloom cd` without the shell function.
    #[error("`flowloom cd {id}` needs the shell function: a program cannot change its shell's directory")]
    #[diagnostic(
        code(flowloom::shell_function),
        help(
            "add `eval \"$(flowloom shell-init bash)\"` to ~/.bashrc (zsh: ~/.zshrc with `zsh`; fish: `flowloom shell-init fish | source` in config.fish) and open a new shell; meanwhile: cd \"$(flowloom path ID)\""
        )
    )]
    NeedsShellFunction { id: String },
    /// `flowloom run`: the command could not be started.
    #[error("cannot run {program}: {why}")]
    #[diagnostic(code(flowloom::run), help("check the command name and PATH"))]
    CannotRun { program: String, why: std::io::Error },
    /// Something from the manifest would run (or set a variable) that this machine does not trust.
    #[error("{message}")]
    #[diagnostic(code(flowloom::not_trusted))]
    NotTrusted {
        message: String,
        #[help]
        help: String,
    },
    /// SPEC §11.1, first use: a command that edits the committed layer, run where there is
    /// no `flowloom.toml`.
    #[error("there is no {file} to {what}; nothing was written")]
    #[diagnostic(
        code(flowloom::no_committed_manifest),
        help(
            "run `flowloom init` first (it writes one with this repository's defaults), then this command again; if the file is stashed or on another branch, bring it back first"
        )
    )]
    NoCommittedManifest { file: String, what: String },
    /// A manifest layer the editor cannot edit (`new`, `rm`, `import`, `share`).
    #[error("cannot edit {file}: {why}")]
    #[diagnostic(
        code(flowloom::manifest_edit),
        help("run `flowloom validate` and fix what it reports")
    )]
    ManifestEdit {
        file: String,
        why: crate::plan::adopt::EditError,
    },
    /// A manifest file to edit is read-only (no write permission for its owner): flowloom
    /// neither replaces it nor drops its mode.
    #[error("{file} is read-only; flowloom does not edit it, and nothing was written")]
    #[diagnostic(
        code(flowloom::manifest_read_only),
        help("make it writable (`chmod u+w {file}`) and run the command again, or edit it by hand")
    )]
    ManifestReadOnly { file: String },
    /// The manifest changed under every attempt of an edit.
    #[error("{file} kept changing while flowloom edited it; nothing was written")]
    #[diagnostic(
        code(flowloom::manifest_busy),
        help("run the command again once nothing else writes the manifest")
    )]
    ManifestBusy { file: String },
    /// `flowloom init` where a manifest is.
    #[error("{file} already exists; flowloom init never overwrites a manifest")]
    #[diagnostic(
        code(flowloom::manifest_exists),
        help("edit it and check it with `flowloom validate`, or move it away and run `flowloom init` again")
    )]
    ManifestExists { file: String },
    /// A command that asks first, with nobody to ask.
    #[error("refusing to {what} without confirmation: standard input is not a terminal")]
    #[diagnostic(code(flowloom::confirmation))]
    NoConfirmation {
        what: String,
        #[help]
        help: String,
    },
    /// SPEC §11.2: a removal that `rm` (or the end of `merge`) refuses, all or nothing.
    #[error("{message}")]
    #[diagnostic(code(flowloom::blocked))]
    Blocked {
        message: String,
        #[help]
        help: String,
    },
    /// `flowloom merge`: the merge landed, the removal it ends with did not finish.
    #[error("{landed}, but the removal of session `{session}` did not finish; the merge stays")]
    #[diagnostic(code(flowloom::merge::removal))]
    Landed {
        landed: String,
        session: String,
        #[help]
        help: String,
        /// What stopped the removal.
        #[related]
        removal: Vec<Error>,
    },
    /// A file flowloom would have to rewrite (`info/exclude`) that it refuses to read.
    #[error("{message}")]
    #[diagnostic(code(flowloom::unreadable))]
    Unreadable {
        message: String,
        #[help]
        help: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Land(#[from] crate::apply::land::LandError),
    /// A saved plan that cannot be read back (`apply FILE`, `show FILE`).
    #[error(transparent)]
    #[diagnostic(code(flowloom::saved_plan))]
    SavedPlan(#[from] crate::store::saved_plan::ReadError),
    /// A saved plan that may not be carried out now: nothing was applied.
    #[error("the saved plan is stale: {0}; nothing was applied")]
    #[diagnostic(
        code(flowloom::stale_plan),
        help("run `flowloom plan --out FILE` again and review it")
    )]
    StalePlan(#[from] crate::plan::saved::Stale),
    /// `plan --out` of a plan that has no JSON form (a path that is not UTF-8).
    #[error("cannot save the plan to {}: {why}", file.display())]
    #[diagnostic(code(flowloom::save_plan))]
    Unsaveable { file: PathBuf, why: serde_json::Error },
    #[error("{count} {} could not be applied", crate::plan::plural(*count, "change"))]
    #[diagnostic(code(flowloom::apply))]
    Apply {
        count: usize,
        #[related]
        errors: Vec<RepoError>,
    },
    /// `flowloom setup`: a setup command failed, or how far the setup got could not be recorded.
    #[error("{why}")]
    #[diagnostic(code(flowloom::setup), help("fix it, then run `flowloom setup {session}` again"))]
    Setup {
        session: String,
        why: crate::apply::setup::SetupError,
    },
}

/// A `base` that does not resolve, pointed at in the manifest (SPEC §2).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
#[diagnostic(code(flowloom::base))]
pub struct BaseError {
    message: String,
    /// The manifest, read through the line index that its own diagnostics use: labels on
    /// a long line are windowed, and every session's error shares one index.
    #[source_code]
    src: manifest::ManifestSource,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: String,
}

pub fn main() -> ExitCode {
    // The completion scripts' helper, before clap: it is no command of the CLI (help and
    // clap's completions never show it), and it stays silent whatever it is given.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == complete::NAME) {
        return complete::run(args.get(2..).unwrap_or_default());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are successes; usage errors are errors (1), not "changes
            // pending" (2, which clap would use).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            usage_error(&e, &args);
            return ExitCode::from(1);
        }
    };
    let printer = Printer::new(cli.global.color, cli.global.quiet, cli.global.verbose);
    // Ctrl-C releases the lock (SPEC §4), or waits for the step being written.
    crate::store::lock::install_interrupt_handler();
    let code = match run(&cli, &printer) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    };
    // Interrupted during a write that was then finished: say so in the exit code.
    if crate::store::lock::interrupted() {
        return ExitCode::from(130);
    }
    code
}

/// A usage error as one line and a hint: what is wrong, then clap's own tip when it has one
/// (`a similar subcommand exists: 'plan'`), else where the usage is described. clap's usage
/// block and "For more information" footer are a wall of text for a typo. A command run
/// without its subcommand or arguments still gets the full help it asked for, in effect.
#[allow(clippy::print_stderr)]
fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprint!("{}", crate::render::output::terminal(&text, false));
        return;
    }
    let (first, hint) = usage_lines(e, &command_path(args));
    eprintln!("{}", crate::render::output::terminal(&first, false));
    eprintln!("{}", crate::render::output::terminal(&hint, false));
}

/// The subcommands the command line names (`["status"]`, `["trust", "show"]`), as clap
/// itself matches them when it ignores what is wrong: what a usage error's hint points to
/// is read from the arguments, never from the error's words.
fn command_path(args: &[std::ffi::OsString]) -> Vec<String> {
    use clap::CommandFactory as _;
    let Ok(matches) = Cli::command().ignore_errors(true).try_get_matches_from(args) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut at = &matches;
    while let Some((name, sub)) = at.subcommand() {
        path.push(name.to_owned());
        at = sub;
    }
    path
}

/// The error line and the hint line of clap's rendered error, for the command line that
/// names `command` (see [`command_path`]); what to hint is decided on the error's kind and
/// context and on the command, never on the error's words.
fn usage_lines(e: &clap::Error, command: &[String]) -> (String, String) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty()).peekable();
    let mut first = lines.next().unwrap_or("error: invalid usage").to_owned();
    // `the following required arguments were not provided:` lists them on the next lines.
    if first.ends_with(':') {
        while let Some(item) = lines.next_if(|l| !l.starts_with("Usage:") && !l.starts_with("tip:")) {
            first.push(' ');
            first.push_str(item);
        }
    }
    let rest: Vec<&str> = lines.collect();
    if let Some(ContextValue::String(name)) = e.get(ContextKind::InvalidSubcommand)
        && let Some(hint) = familiar_command(name)
    {
        return (first, format!("hint: {hint}"));
    }
    if e.kind() == ErrorKind::UnknownArgument && command == ["run"] {
        return (
            first,
            "hint: put the command after the session id, and after `--` when it has options: \
             flowloom run ID -- CMD ARGS..."
                .to_owned(),
        );
    }
    if let Some(tip) = rest.iter().find_map(|l| l.strip_prefix("tip:")) {
        return (first, format!("hint:{tip}"));
    }
    let command = std::iter::once("flowloom")
        .chain(command.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    (first, format!("hint: see `{command} --help`"))
}

/// What the commands people bring from other tools are called here.
fn familiar_command(name: &str) -> Option<&'static str> {
    Some(match name {
        "switch" | "checkout" | "go" => {
            "`flowloom cd ID` enters a session (with the shell function of `flowloom shell-init`)"
        }
        "create" | "add" | "start" => "`flowloom new ID` declares and makes a session",
        "remove" | "delete" | "del" => "`flowloom rm ID` removes a session",
        _ => return None,
    })
}

/// Print an error for people: the message, the labelled manifest span where there is one,
/// and the help; each related error (a manifest's problems, the changes that failed) as a
/// report of its own below. Without miette's code header (`flowloom::usage`: flowloom's
/// internals, not the user's) or its `Error:` prefix on related errors.
#[allow(clippy::print_stderr)]
pub(crate) fn report(e: &dyn Diagnostic) {
    let mut text = String::new();
    render_report(&mut text, e, 0);
    // The report quotes the manifest and the repository: escape their control characters.
    eprint!("{}", crate::render::output::terminal(&text, false));
}

fn render_report(text: &mut String, e: &dyn Diagnostic, depth: usize) {
    use std::fmt::Write as _;
    // Diagnostics go to stderr, which is what tests and logs capture: keep them free of
    // escape codes whatever the color choice for the plan on stdout.
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let shown = Plain(e);
    let mut one = String::new();
    // miette's graphical report pads to a label's column with `{:width$}`, which panics
    // past column 65,535: such a report is told without drawings.
    let rendered = if drawable(e, 0) {
        handler.render_report(&mut one, &shown)
    } else {
        miette::NarratableReportHandler::new().render_report(&mut one, &shown)
    };
    if rendered.is_err() {
        one = format!("  × {e}\n");
    }
    if !text.is_empty() {
        text.push('\n');
    }
    let _ = writeln!(text, "{}", one.trim_end());
    // Related diagnostics hold no cycles in flowloom, but a bound costs nothing.
    if depth < 16
        && let Some(related) = e.related()
    {
        for r in related {
            render_report(text, r, depth + 1);
        }
    }
}

/// A diagnostic as shown: everything but its code and its related diagnostics (shown
/// apart, see [`report`]).
struct Plain<'a>(&'a dyn Diagnostic);

impl std::fmt::Debug for Plain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

/// A diagnostic's message, help and labels are one line each; what they quote from the
/// manifest or the repository (a purpose, a path, a command) is escaped, so that it
/// cannot add lines of its own to the report (SPEC §8, §11.4).
impl std::fmt::Display for Plain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::render::output::escape(&self.0.to_string()))
    }
}

impl std::error::Error for Plain<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Diagnostic for Plain<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let help = self.0.help()?.to_string();
        Some(Box::new(crate::render::output::escape(&help).into_owned()))
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let labels = self.0.labels()?.map(|l| {
            let text = l.label().map(|t| crate::render::output::escape(t).into_owned());
            if l.primary() {
                miette::LabeledSpan::new_primary_with_span(text, *l.inner())
            } else {
                miette::LabeledSpan::new_with_span(text, *l.inner())
            }
        });
        Some(Box::new(labels))
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.0.diagnostic_source()
    }
}

/// Whether every label of `e` (and of the diagnostics it relates) starts close enough to the
/// start of its line, as miette would show it, for the graphical report.
fn drawable(e: &dyn Diagnostic, depth: usize) -> bool {
    // A tab is drawn 4 columns wide: 16,000 bytes stay under 65,535 columns.
    const MAX_COLUMN: usize = 16_000;
    if depth > 16 {
        return false;
    }
    if let (Some(source), Some(labels)) = (e.source_code(), e.labels()) {
        for label in labels {
            let Ok(contents) = source.read_span(label.inner(), 1, 1) else {
                continue;
            };
            let data = contents.data();
            let Some(rel) = label.offset().checked_sub(contents.span().offset()) else {
                return false;
            };
            let before = data.get(..rel.min(data.len())).unwrap_or_default();
            let column = before.iter().rev().take_while(|b| **b != b'\n').count();
            if column > MAX_COLUMN {
                return false;
            }
        }
    }
    let related_ok = e.related().is_none_or(|mut r| r.all(|d| drawable(d, depth + 1)));
    related_ok && e.diagnostic_source().is_none_or(|d| drawable(d, depth + 1))
}

fn run(cli: &Cli, printer: &Printer) -> Result<ExitCode, Error> {
    let start_dir = start_dir(cli.global.directory.as_deref())?;
    match &cli.command {
        Command::Validate => validate::run(cli, &start_dir, printer),
        Command::Plan(args) => plan::run(cli, &start_dir, args, printer),
        Command::Apply(args) => apply::run(cli, &start_dir, args, printer),
        Command::Status(args) => status::run(cli, &start_dir, args, printer),
        Command::Show(args) => show::run(&start_dir, args, printer),
        Command::Path(args) => path::run(cli, &start_dir, args, printer),
        Command::Init => init::run(cli, &start_dir, printer),
        Command::Import(args) => import::run(cli, &start_dir, args, printer),
        Command::Completions(args) => Ok(completions::run(args, printer)),
        Command::New(args) => new::run(cli, &start_dir, args, printer),
        Command::Rm(args) => rm::run(cli, &start_dir, args, printer),
        Command::Merge(args) => merge::run(cli, &start_dir, args, printer),
        Command::Run(args) => run::run(cli, &start_dir, args, printer),
        Command::Setup(args) => setup::run(cli, &start_dir, args, printer),
        Command::ShellInit(args) => Ok(shell_init::run(args, printer)),
        Command::Trust => trust::run(cli, &start_dir, printer),
        Command::Cd(args) => Err(Error::NeedsShellFunction {
            id: crate::render::output::escape(&args.id).into_owned(),
        }),
        Command::Share(args) => share::run(cli, &start_dir, args, crate::manifest::Layer::Shared, printer),
        Command::Unshare(args) => share::run(cli, &start_dir, args, crate::manifest::Layer::Local, printer),
        Command::Schema => {
            printer.out(&crate::manifest::json_schema());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn start_dir(dir: Option<&Path>) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir().map_err(|e| RepoError::io("read", Path::new("the current directory"), e))?;
    let moved = dir.is_some();
    let dir = match dir {
        Some(d) => cwd.join(d),
        None => cwd,
    };
    let not_usable = |why: String| Error::WorkingDirectory { dir: dir.clone(), why };
    let canonical = dir.canonicalize().map_err(|e| not_usable(e.to_string()))?;
    if !canonical.is_dir() {
        return Err(not_usable("it is not a directory".into()));
    }
    if moved {
        // As `git -C`: the process moves there, so that a relative `GIT_DIR` or
        // `GIT_WORK_TREE` (and any relative path) is read from DIR, as git reads it; gix
        // would read them from where flowloom was started, another repository perhaps.
        std::env::set_current_dir(&canonical).map_err(|e| not_usable(e.to_string()))?;
    }
    Ok(canonical)
}

/// Configuration every repository flowloom opens gets (worktrees opened from it inherit it):
/// - `gitoxide.core.useNsec`: compare file times to the nanosecond, as git built for Linux
///   does; with whole seconds, every file checked out in the second the index was written
///   counts as racily clean and each status hashes it again.
/// - a committer fallback: reflogs need one, and git invents one rather than refusing to
///   create a branch on a machine without `user.name`.
const CONFIG_OVERRIDES: [&str; 3] = [
    "gitoxide.core.useNsec=true",
    "gitoxide.committer.nameFallback=flowloom",
    "gitoxide.committer.emailFallback=flowloom@localhost",
];

pub(crate) fn open_repo(start_dir: &Path) -> Result<gix::Repository, Error> {
    // As git: GIT_DIR and GIT_WORK_TREE are honoured, and a repository another user owns is
    // refused unless `safe.directory` says otherwise (gix would open it with reduced trust,
    // silently skipping its own filter configuration).
    let mut trust = gix::sec::trust::Mapping::<gix::open::Options>::default();
    trust.full = trust.full.config_overrides(CONFIG_OVERRIDES).bail_if_untrusted(true);
    trust.reduced = trust.reduced.config_overrides(CONFIG_OVERRIDES).bail_if_untrusted(true);
    let as_is = trust.full.clone().open_path_as_is(true);
    let repo =
        gix::ThreadSafeRepository::discover_with_environment_overrides_opts(start_dir, Default::default(), trust)
            .map(gix::Repository::from)
            .map_err(|e| {
                // gix refuses some formats itself (SHA-256, a version above 1): say it as git does.
                if let Some(Err(refusal)) = common_dir_of(start_dir).map(|dir| crate::read::format::check(&dir)) {
                    return refusal.into();
                }
                open_error(start_dir, &e)
            })?;
    crate::read::format::check(repo.common_dir())?;
    let mut repo = bare_as_configured(repo, as_is)?;
    shared_repository(&repo)?;
    crate::store::objects::honour_environment(&mut repo)?;
    Ok(repo)
}

/// gix decides whether a repository is bare from its `config` alone, before it reads
/// `config.worktree`: with `extensions.worktreeConfig` and `core.bare = true` there (the
/// bare-clone layout, `proj/.git` a gitfile to `proj/.bare`), it takes the folder beside the
/// git dir for a main worktree that git does not see. Reopened as bare, as git reads it
/// (`GIT_WORK_TREE` or `core.worktree` still give a worktree, as in git).
fn bare_as_configured(repo: gix::Repository, as_is: gix::open::Options) -> Result<gix::Repository, Error> {
    let bare_by_git = {
        let config = repo.config_snapshot();
        config.boolean("core.bare") == Some(true)
            && config.string("core.worktree").is_none()
            && std::env::var_os("GIT_WORK_TREE").is_none()
    };
    if !bare_by_git || repo.workdir().is_none() || repo.kind() != gix::repository::Kind::Common {
        return Ok(repo);
    }
    let git_dir = repo.git_dir().to_owned();
    let bare = gix::open_opts(&git_dir, as_is).map_err(|e| open_error(&git_dir, &e))?;
    Ok(if bare.workdir().is_none() { bare } else { repo })
}

/// The common directory of the repository at or above `start_dir` (or named by `GIT_DIR`),
/// found without reading its configuration: for the format check when gix cannot open it.
fn common_dir_of(start_dir: &Path) -> Option<PathBuf> {
    let git_dir = match std::env::var_os("GIT_DIR") {
        Some(dir) => start_dir.join(dir),
        None => {
            gix::discover::upwards(start_dir)
                .ok()?
                .0
                .into_repository_and_work_tree_directories()
                .0
        }
    };
    match std::fs::read(git_dir.join("commondir")) {
        Ok(bytes) => {
            let rel = String::from_utf8_lossy(&bytes)
                .trim_end_matches(['\n', '\r'])
                .to_owned();
            Some(git_dir.join(rel))
        }
        Err(_) => Some(git_dir),
    }
}

/// `core.sharedRepository`, remembered for the files flowloom makes in the repository
/// (`fsutil::shared`); a value git refuses is refused, as git refuses it.
fn shared_repository(repo: &gix::Repository) -> Result<(), Error> {
    const KEY: &str = "core.sharedRepository";
    let config = repo.config_snapshot();
    let value = config.string(KEY);
    let shared = match &value {
        Some(v) => crate::fsutil::shared::parse(Some(&v.to_string())),
        None if config.boolean(KEY) == Some(true) => crate::fsutil::shared::parse(None),
        None => Some(0),
    };
    let shared = shared.ok_or_else(|| Error::SharedRepository {
        value: crate::render::output::escape(&value.map(|v| v.to_string()).unwrap_or_default()).into_owned(),
    })?;
    crate::fsutil::shared::set(shared);
    Ok(())
}

/// Whether gix classed the failure to open as `class` itself (an I/O error of that kind
/// on the way, such as a folder it may not read, does not count).
fn classed_as(e: &gix::Error, class: gix::error::Class) -> bool {
    e.classify()
        .any(|c| c.class() == class && c.error().downcast_ref::<std::io::Error>().is_none())
}

/// Why a repository could not be opened, in the words a git user expects: gix refuses a
/// repository another user owns as permission denied.
fn open_error(start_dir: &Path, e: &gix::Error) -> Error {
    let (dir, why) = (start_dir.to_owned(), crate::error::chain(e));
    if classed_as(e, gix::error::Class::PermissionDenied) {
        return Error::DubiousOwnership { dir, why };
    }
    Error::NotARepository { dir, why }
}

/// Take the apply lock (SPEC §8). A lock taken over from an apply that was killed is said
/// so; what that apply left behind is housekeeping of the next plan.
pub(crate) fn take_lock(
    common_dir: &Path,
    timeout: std::time::Duration,
    printer: &Printer,
) -> Result<ApplyLock, Error> {
    let waiting = |holder: &str| {
        printer.status(&format!(
            "waiting up to {} for the lock another flowloom holds ({holder})",
            crate::cli::show_duration(timeout)
        ))
    };
    Ok(ApplyLock::acquire(common_dir, timeout, waiting, |holder| {
        printer.warn(&format!(
            "took over the lock of an apply that ended without releasing it ({holder})"
        ))
    })?)
}

/// The manifest to use: `--manifest`, else `flowloom.toml` at the root of the main worktree.
pub(crate) fn manifest_path(cli: &Cli, start_dir: &Path, repo: Option<&gix::Repository>) -> Result<PathBuf, Error> {
    let path = match (&cli.global.manifest, repo) {
        (Some(p), _) => start_dir.join(p),
        (None, Some(repo)) => {
            let main = repo
                .main_repo()
                .map_err(|e| RepoError::git("open the main worktree of", repo.common_dir(), e))?;
            let top = main
                .workdir()
                .or(bare_clone_folder(repo).as_deref())
                .map(Path::to_owned);
            let top = top.ok_or(Error::BareWithoutManifest)?;
            top.join(manifest::FILE_NAME)
        }
        (None, None) => start_dir.join(manifest::FILE_NAME),
    };
    Ok(canonical_folder(&path))
}

/// The folder of the bare-clone layout: a bare repository (`proj/.bare`, any name) whose
/// parent holds a `.git` gitfile pointing at it, with the worktrees beside. That folder
/// stands for the main worktree: it holds `flowloom.toml`.
pub(crate) fn bare_clone_folder(repo: &gix::Repository) -> Option<PathBuf> {
    let common = crate::fsutil::canonical(repo.common_dir());
    let parent = common.parent()?;
    let dot_git = parent.join(".git");
    if !dot_git.symlink_metadata().ok()?.is_file() {
        return None;
    }
    let target = gix::discover::path::from_gitdir_file(&dot_git).ok()?;
    (crate::fsutil::canonical(&parent.join(target)) == common).then(|| parent.to_owned())
}

/// `path` with its folder made canonical (so that every path derived from it compares with
/// what git records) and its file name kept as it is: a manifest that is a symlink stays one,
/// and the reader refuses it instead of reading what it points to (SPEC §8).
fn canonical_folder(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            crate::fsutil::canonical(parent).join(name)
        }
        // `/`, or a path ending in `..`: no file name to keep.
        _ => crate::fsutil::canonical(path),
    }
}

/// The session `id` the manifest declares, or the error that says there is none.
pub(crate) fn declared<'m>(manifest: &'m Manifest, id: &str) -> Result<&'m manifest::Session, Error> {
    manifest.sessions.get(id).ok_or_else(|| no_session(manifest, id))
}

/// "No session `id`" in the manifest's words, with where to look.
pub(crate) fn no_session(manifest: &Manifest, id: &str) -> Error {
    Error::NoSession {
        message: format!(
            "no session `{}` in {}",
            crate::render::output::escape(id),
            manifest.relative(&manifest.path)
        ),
        help: "`flowloom status` lists the sessions; `flowloom new ID` makes one".into(),
    }
}

pub(crate) fn load(cli: &Cli, start_dir: &Path, repo: Option<&gix::Repository>) -> Result<Manifest, Error> {
    let path = manifest_path(cli, start_dir, repo)?;
    // SPEC §11.1, first use: no flowloom.toml where flowloom looks is an empty committed
    // layer; one named with `--manifest` must exist.
    let mut manifest = match cli.global.manifest {
        Some(_) => Manifest::load(&path)?,
        None => Manifest::load_or_empty(&path)?,
    };
    if let Some(repo) = repo {
        manifest.use_default_base(&default_base(repo, &manifest.defaults.remote));
        // `{repo}` in `root`: the main worktree's folder name (a bare repository has none:
        // the manifest folder's name stays).
        if let Some(name) =
            crate::read::state::main_workdir(repo).and_then(|top| top.file_name().map(std::ffi::OsStr::to_owned))
        {
            manifest.use_repo_name(&name);
        }
        first_use::use_recorded_root(repo, &mut manifest);
    }
    Ok(manifest)
}

/// SPEC §2: the remote's default branch (what `refs/remotes/<remote>/HEAD` points at: the
/// local branch of that name when it exists, else the remote-tracking branch), else `main`,
/// else `master`, else `main` (which then does not resolve, and the plan says so).
pub(crate) fn default_base(repo: &gix::Repository, remote: &str) -> String {
    let exists = |full: &str| repo.try_find_reference(full).ok().flatten().is_some();
    let remote_head = repo
        .try_find_reference(format!("refs/remotes/{remote}/HEAD").as_str())
        .ok()
        .flatten()
        .and_then(|r| match r.target() {
            gix::refs::TargetRef::Symbolic(name) => Some(name.as_bstr().to_string()),
            gix::refs::TargetRef::Object(_) => None,
        });
    if let Some(target) = remote_head
        && let Some(name) = target.strip_prefix(&format!("refs/remotes/{remote}/"))
    {
        if exists(&crate::names::branch_ref(name)) {
            return name.to_owned();
        }
        if exists(&target) {
            return format!("{remote}/{name}");
        }
    }
    for candidate in ["main", "master"] {
        if exists(&crate::names::branch_ref(candidate)) {
            return candidate.to_owned();
        }
    }
    "main".to_owned()
}

/// Read the repository and plan; also report a `base` that does not resolve. `stale`: when
/// the apply that last held the lock started, if it was killed (its leftovers are planned).
pub(crate) fn compute(
    repo: &gix::Repository,
    manifest: &Manifest,
    start_dir: &Path,
    options: &crate::plan::Options,
    stale: Option<jiff::Timestamp>,
    printer: &Printer,
) -> Result<(State, Plan, bool), Error> {
    printer.detail(&format!(
        "manifest {}, git dir {}",
        manifest.path.display(),
        repo.common_dir().display()
    ));
    let started = std::time::Instant::now();
    check_targets(repo, manifest, &options.targets)?;
    let mut state = State::read(repo, manifest, start_dir)?;
    // A plan keeps flowloom's block of `info/exclude` up to date: one it may not read (a
    // symlink, a special file) it could not rewrite either, so there is no plan.
    if let Some(why) = state.exclude.unreadable.take() {
        return Err(Error::Unreadable {
            message: why.message,
            help: why.help,
        });
    }
    // A session `rm` or `merge` ends is no longer in `manifest`: its teardown needs trust too.
    if options.ending.values().any(|e| !e.teardown.is_empty()) {
        state.trusted = crate::store::machine::trusted(&state.repository_key)?;
    }
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    state.leftovers = crate::store::recover::leftovers(&common_dir, &state.owned, stale);
    state
        .leftovers
        .extend(crate::store::recover::empty_trash(&state.root, &state.owned));
    let needs = crate::plan::questions(manifest, &state);
    state.answer(repo, &needs)?;
    let plan = crate::plan::plan_with(manifest, &state, options);
    printer.detail(&format!(
        "read {} worktrees and {} branches in scope, {} owned sessions, {} dirty checks; planned in {:.1?}",
        state.worktrees.len(),
        state.branches.len(),
        state.owned.sessions.len(),
        state.worktrees.values().filter(|w| w.dirt.is_some()).count(),
        started.elapsed()
    ));
    let bad_base = report_bad_bases(manifest, &plan);
    Ok((state, plan, bad_base))
}

/// Each `--target` names a declared session or one of flowloom's own.
fn check_targets(
    repo: &gix::Repository,
    manifest: &Manifest,
    targets: &std::collections::BTreeSet<String>,
) -> Result<(), Error> {
    for target in targets {
        if !manifest.sessions.contains_key(target) {
            let owned = crate::store::ownership::Record::read(&crate::fsutil::canonical(repo.common_dir()))?
                .sessions
                .iter()
                .any(|o| &o.id == target);
            if !owned {
                return Err(Error::NoSession {
                    message: format!(
                        "--target {}: no such session in {} or among flowloom's sessions",
                        crate::render::output::escape(target),
                        manifest.relative(&manifest.path)
                    ),
                    help: "`flowloom status` lists the sessions".into(),
                });
            }
        }
    }
    Ok(())
}

/// Reports, pointing into the manifest, each declared session blocked because its base
/// does not resolve; true if there was one.
fn report_bad_bases(manifest: &Manifest, plan: &Plan) -> bool {
    let mut bad_base = false;
    // Made on the first error, then shared (one line index for the whole file).
    let mut source: Option<manifest::ManifestSource> = None;
    for change in &plan.changes {
        let Action::Blocked { reasons } = &change.action else {
            continue;
        };
        let Some(session) = manifest.sessions.get(&change.session) else {
            continue;
        };
        if let Some(why) = reasons.iter().find_map(|r| match r {
            Reason::BaseUnresolved { why, .. } => Some(why),
            _ => None,
        }) {
            bad_base = true;
            report(&base_error(manifest, session, why, &mut source));
        }
    }
    bad_base
}

/// A base that does not resolve, labelled where the manifest writes it (or the default's help).
fn base_error(
    manifest: &Manifest,
    session: &manifest::Session,
    why: &crate::plan::BaseFailure,
    source: &mut Option<manifest::ManifestSource>,
) -> BaseError {
    // The file the base is written in: either layer (SPEC §11.1).
    let (file, text, within) = session.base_span.as_ref().map_or_else(
        || (manifest.path.clone(), manifest.source.as_str(), 0..0),
        |r| manifest.locate(r),
    );
    let src = if file == manifest.path {
        source
            .get_or_insert_with(|| manifest::ManifestSource::new(&manifest.relative(&file), std::sync::Arc::from(text)))
            .clone()
    } else {
        manifest::ManifestSource::new(&manifest.relative(&file), std::sync::Arc::from(text))
    };
    let words = crate::render::base::diagnostic(
        &session.id,
        &manifest::shorten(&session.base),
        why,
        session.base_span.is_some(),
        &session.base,
    );
    // A label need not cover a 100,000-byte value to point at it.
    let span = session
        .base_span
        .as_ref()
        .filter(|_| words.label.is_some())
        .map(|_| SourceSpan::from(src.clamp(within.start, within.end.saturating_sub(within.start))));
    BaseError {
        message: words.message,
        src,
        span,
        label: words.label.unwrap_or_default(),
        help: words.help,
    }
}

#[cfg(test)]
mod tests {
    /// The error clap makes of `flowloom ARGS...`.
    fn lines(args: &[&str]) -> (String, String) {
        use clap::Parser as _;
        let argv: Vec<std::ffi::OsString> = std::iter::once("flowloom")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        let e = crate::cli::Cli::try_parse_from(&argv).expect_err("a usage error");
        super::usage_lines(&e, &super::command_path(&argv))
    }

    #[test]
    fn usage_errors_are_one_line_and_a_hint() {
        assert_eq!(
            lines(&["status", "--bogus"]),
            (
                "error: unexpected argument '--bogus' found".to_owned(),
                "hint: see `flowloom status --help`".to_owned()
            )
        );
        assert!(
            lines(&["switch"]).1.contains("flowloom cd ID"),
            "{:?}",
            lines(&["switch"])
        );
        assert!(
            lines(&["run", "--bogus", "a"]).1.contains("flowloom run ID -- CMD"),
            "{:?}",
            lines(&["run", "--bogus", "a"])
        );
        assert_eq!(lines(&["plna"]).1, "hint: a similar subcommand exists: 'plan'");
        assert_eq!(
            lines(&["path"]),
            (
                "error: the following required arguments were not provided: <ID>".to_owned(),
                "hint: see `flowloom path --help`".to_owned()
            )
        );
    }
}
