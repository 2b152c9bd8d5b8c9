//! The command line: clap derive types. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declarative parallel work sessions for one git repository.
///
/// The sessions a team wants are listed in `flowloom.toml`; `flowloom plan` shows how the
/// repository differs from that list and `flowloom apply` makes it so, never deleting work
/// that is not safely stored in git.
#[derive(Debug, Parser)]
#[command(name = "flowloom", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if flowloom was started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Use this manifest instead of `flowloom.toml` at the root of the main worktree.
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest: Option<PathBuf>,

    /// When to color the output (`NO_COLOR` also turns it off).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// Print only errors and what was asked for.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail about what is read and done.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// How long to wait for the lock another flowloom holds (e.g. `30s`, `2m`, `0`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, global = true)]
    pub lock_timeout: std::time::Duration,
}

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration: write e.g. `30s`, `2m` or `500ms`")]
    NotANumber(String),
    #[error("`{0}`: the unit must be ms, s, m or h")]
    Unit(String),
    #[error("`{0}` is too long a duration")]
    TooLong(String),
}

/// `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| DurationError::NotANumber(text.to_owned()))?;
    let millis = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(DurationError::Unit(text.to_owned())),
    }
    .ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
    Ok(std::time::Duration::from_millis(millis))
}

/// A duration as the user would write it.
pub fn show_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show how the repository differs from the manifest; changes nothing.
    Plan(PlanArgs),
    /// Make the repository match the manifest: create, repair and remove sessions.
    Apply(ApplyArgs),
    /// Check the manifest alone (the repository is only looked at to find it; nothing is written).
    Validate,
    /// One row per in-scope session: state, commits ahead of and behind its base and
    /// upstream, and its last commit.
    ///
    /// The state is the first that applies of: `missing` (declared, not created yet),
    /// `drifted` (declared, differs from the manifest), `orphan` (created by flowloom, no
    /// longer declared), `retained` (an orphan whose worktree is gone and whose branch is
    /// kept: its work is in no base yet), `integrated` (its commits are in its base or
    /// upstream already), `unmanaged` (made by hand; see `flowloom import`), `locked`
    /// (`git worktree lock`), `dirty` (uncommitted changes or untracked files), `unchecked`
    /// (its contents could not be read), `ok`.
    #[command(visible_aliases = ["list", "ls"])]
    Status(StatusArgs),
    /// Print a plan saved with `plan --out FILE`, as `plan` shows it; reads only the file.
    Show(ShowArgs),
    /// Print the absolute worktree path of a session, for `cd "$(flowloom path ID)"`.
    Path(PathArgs),
    /// Write a commented starter flowloom.toml (never overwrites an existing file).
    Init,
    /// Adopt sessions made by hand: declare them in the manifest, keeping its comments.
    ///
    /// Each in-scope, unmanaged session with a worktree is added under its existing id with
    /// only the keys the defaults do not give, so the next plan leaves it as it is; it is
    /// then recorded as flowloom's own. Shows the manifest diff and asks first.
    Import(ImportArgs),
    /// Print a shell completion script to standard output.
    Completions(CompletionsArgs),
    /// Declare a session in the manifest (comments kept) and make it at once; prints its
    /// worktree path, for `cd "$(flowloom new ID)"`.
    New(NewArgs),
    /// Drop a session from the manifest and remove it, with every check `apply` makes.
    Rm(RmArgs),
    /// Land a session on its base branch (squash, rebase or fast-forward), update the
    /// worktree where the base is checked out, then remove the session as `rm` does.
    Merge(MergeArgs),
    /// Run a command in a session's worktree, with the session's environment; exits with
    /// the command's code.
    Run(RunArgs),
    /// Run a session's `setup` commands again, in its worktree with its environment (trusted
    /// as `apply` requires); its metadata records whether they succeeded.
    Setup(SetupArgs),
    /// Print a shell function so that `flowloom cd ID` changes the shell's directory.
    ShellInit(ShellInitArgs),
    /// Trust the manifest's current `setup` commands and `env` variables on this machine, so
    /// that apply runs the commands in new sessions and `run` sets the variables. Shows what
    /// it trusts; a changed command or variable must be trusted again.
    Trust,
    /// Print the JSON Schema of flowloom.toml, for editors with a TOML language server.
    Schema,
    /// `flowloom cd ID` is the shell function's (`shell-init`); the program says how to get it.
    #[command(hide = true)]
    Cd(PathArgs),
    /// Move a session of this clone's `flowloom.local.toml` into the committed manifest,
    /// for the team; its worktree and branch stay as they are.
    Share(ShareArgs),
    /// Move a session of the committed manifest into this clone's `flowloom.local.toml`;
    /// its worktree and branch stay as they are.
    Unshare(ShareArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The session id, or a branch name (`feature/login` declares id `feature-login` with
    /// that branch).
    pub id: String,
    /// The session's branch: checked out when it exists (locally, or as `<remote>/NAME`,
    /// then tracked), created at the base otherwise. flowloom never deletes a branch it did
    /// not create.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// What the session is for (written as `purpose`).
    #[arg(long, value_name = "TEXT")]
    pub purpose: Option<String>,
    /// Where its branch starts: any revspec (written as `base`).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Declare it in the committed manifest, for the team, instead of this clone's
    /// `flowloom.local.toml`.
    #[arg(long)]
    pub shared: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The session id.
    pub id: String,
    /// Do not ask for confirmation.
    #[arg(long, visible_alias = "auto-approve")]
    pub yes: bool,
    /// As `apply --force`: archive, then remove despite uncommitted work.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The session id.
    pub id: String,
    /// One commit on the base with the session's changes (the default unless `merge` in
    /// the manifest says otherwise).
    #[arg(long, group = "mode")]
    pub squash: bool,
    /// Replay each of the session's commits onto the base, linear.
    #[arg(long, group = "mode")]
    pub rebase: bool,
    /// Only move the base forward to the session's tip; refuse otherwise.
    #[arg(long, group = "mode")]
    pub ff_only: bool,
    /// The squash commit's message (default: the purpose and the commits' subjects).
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, visible_alias = "auto-approve")]
    pub yes: bool,
    /// As `rm --force` for the removal that follows.
    #[arg(long)]
    pub force: bool,
    /// Print what was done as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The session id.
    pub id: String,
    /// The command and its arguments (after `--` when the command has options of its own
    /// that flowloom could mistake for its own).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The session id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ShellInitArgs {
    /// The shell to print the function for.
    #[arg(value_enum)]
    pub shell: InitShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document (format_version 1) with `main`, `sessions` and `overlaps`.
    #[arg(long)]
    pub json: bool,

    /// Show every column and every value whole, however wide the terminal.
    #[arg(long)]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The saved plan.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print the saved JSON document instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    /// The session id (the key of its `[sessions.<id>]` table).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Do not ask for confirmation.
    #[arg(long, visible_alias = "auto-approve")]
    pub yes: bool,
    /// Declare them in the committed manifest instead of this clone's `flowloom.local.toml`.
    #[arg(long)]
    pub shared: bool,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The session id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the plan as one JSON document (format_version 1).
    #[arg(long)]
    pub json: bool,

    /// Exit 0 when there is nothing to do, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Show what `apply --force` would do.
    #[arg(long)]
    pub force: bool,

    /// Also save the plan to FILE, for `flowloom apply FILE` to carry out exactly.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Plan only this session (repeatable), as Terraform's `-target`.
    #[arg(long, value_name = "ID")]
    pub target: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`: applied exactly, without asking, and refused when the
    /// manifest or the repository changed since it was made.
    #[arg(value_name = "FILE", conflicts_with = "force")]
    pub plan_file: Option<PathBuf>,

    /// Do not ask for confirmation.
    #[arg(long, visible_alias = "auto-approve")]
    pub yes: bool,

    /// Print the outcome as one JSON document (format_version 1); implies no colors.
    #[arg(long)]
    pub json: bool,

    /// Remove orphans despite uncommitted changes, files in their session folder and
    /// unmerged commits. Commits that would become unreachable are first kept under
    /// `refs/flowloom/archive/<n>/<branch>`; deleted files are listed. Never lifts a worktree
    /// lock or removes the worktree flowloom runs in.
    #[arg(long)]
    pub force: bool,

    /// Apply only this session (repeatable), as Terraform's `-target`.
    #[arg(long, value_name = "ID", conflicts_with = "plan_file")]
    pub target: Vec<String>,
}
