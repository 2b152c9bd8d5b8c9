//! `flowloom new ID`: declare the session (in this clone's local layer unless `--shared`,
//! comments kept, compare-and-swap) and apply that session alone, without asking:
//! creating loses nothing. Under the lock from reading the manifest to the end, so that
//! many agents can run it at once and all succeed.
//!
//! All or nothing, as `rm` (SPEC §11.2): a session whose setup this machine does not trust
//! is not declared. On a terminal the commands are shown and asked about, without the
//! lock; `n`, end of input or Ctrl-C leave nothing behind, `y` trusts them and starts over.
//!
//! As `git worktree add` would (SPEC §11.2): `ID` may be a branch name (`feature/login`
//! declares id `feature-login` with that branch), `--branch` names the branch, an existing
//! local or remote-tracking branch is checked out instead of created (§6), and `--base`
//! resolves as git resolves it (`develop` → `origin/develop` when only that exists; `HEAD`
//! at once, recorded as the branch it names or the commit). `origin/x` names the remote-
//! tracking branch: the session works on local `x`, tracking it.
//!
//! Without `flowloom.toml` (SPEC §11.1, first use) it declares in the local layer alone,
//! which records the root it was made with (`first_use`).

use std::path::Path;
use std::process::ExitCode;

use super::apply::{Confirm, Run};
use super::{Error, load, open_repo, take_lock};
use crate::cli::{Cli, NewArgs};
use crate::manifest::{Layer, Manifest};
use crate::plan::SetupOf as _;
use crate::plan::adopt::Adoption;
use crate::render::output::{Printer, escape};

/// What `new` declares: the id, and the keys of its table besides `purpose`.
struct Wanted {
    id: String,
    /// Written as `branch` when it is not what the template gives.
    branch: Option<String>,
    base: Option<String>,
    /// What `new` made of the name it was given, to say so.
    note: Option<String>,
}

pub fn run(cli: &Cli, start_dir: &Path, args: &NewArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let (id, branch) = id_and_branch(args)?;
    let repo = open_repo(start_dir)?;
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    loop {
        let lock = take_lock(&common_dir, cli.global.lock_timeout, printer)?;
        // Read under the lock: another `flowloom new` may just have added its session.
        let (current, wanted) = read_wanted(cli, start_dir, &repo, args, &id, branch.as_deref())?;
        let declared = current.sessions.contains_key(&wanted.id);
        let manifest = if declared {
            current.clone()
        } else {
            with_declaration(&current, args, &wanted)?
        };
        // SPEC §11.2, all or nothing: a session whose setup this machine does not trust is
        // not declared at all. The question is asked without the lock (others go on
        // meanwhile), and everything is read again once it is answered.
        if let Some(script) = untrusted(&manifest, &wanted.id, &common_dir)? {
            drop(lock);
            if !std::io::IsTerminal::is_terminal(&std::io::stdin())
                || !super::apply::ask_trust(std::slice::from_ref(&script), printer)
            {
                return Err(not_trusted(&wanted.id, args.shared));
            }
            let hashes = [crate::store::machine::setup_hash(&script)].into();
            crate::store::machine::trust(&crate::store::machine::repository_key(&common_dir), &hashes)?;
            continue;
        }
        if let Some(note) = &wanted.note {
            printer.status(note);
        }
        // SPEC §11.2, all or nothing, as `git worktree add` refuses before it writes: the
        // session is planned as declared, and declared (written) only when its creation is
        // not blocked (its branch checked out elsewhere, its path taken).
        let mut write = || declare(&current, &common_dir, args, &wanted).map(|_| ());
        let declaring = (!declared).then_some(&mut write as &mut dyn FnMut() -> Result<(), Error>);
        return create(&repo, start_dir, printer, &lock, &manifest, &wanted.id, declaring);
    }
}

/// The manifest as read under the lock, and what `new` is asked to declare in it; refused
/// when the id is declared already with something else.
fn read_wanted(
    cli: &Cli,
    start_dir: &Path,
    repo: &gix::Repository,
    args: &NewArgs,
    id: &str,
    branch: Option<&str>,
) -> Result<(Manifest, Wanted), Error> {
    let current = load(cli, start_dir, Some(repo))?;
    if args.shared {
        super::first_use::needs_committed(&current, "declare a shared session in")?;
    }
    // An unusable root is refused before the manifest is touched.
    crate::read::state::check_root(repo, &current)?;
    let tracked = branch.and_then(|b| tracked(repo, b, &current.defaults.remote));
    let (id, branch) = match &tracked {
        // `ID` was the branch: the id is the local branch's.
        Some(t) if args.branch.is_none() => {
            let own = id_of_branch(&t.local);
            let id = if crate::manifest::is_valid_id(&own) {
                own
            } else {
                id.to_owned()
            };
            (id, Some(t.local.clone()))
        }
        Some(t) => (id.to_owned(), Some(t.local.clone())),
        None => (id.to_owned(), branch.map(str::to_owned)),
    };
    let base = match (&args.base, &tracked) {
        (Some(base), _) => Some(resolve_base(repo, base, &current.defaults.remote)?),
        (None, Some(t)) => t.base.clone(),
        (None, None) => None,
    };
    let branch = branch.filter(|b| *b != current.defaults.branch.expand(&id));
    let wanted = Wanted {
        note: tracked.map(|t| t.note(&id)),
        id,
        branch,
        base,
    };
    if let Some(session) = current.sessions.get(&wanted.id) {
        let differs = args.purpose.as_ref().is_some_and(|p| *p != session.purpose)
            || wanted.base.as_ref().is_some_and(|b| *b != session.base)
            || wanted.branch.as_ref().is_some_and(|b| *b != session.branch);
        if differs {
            return Err(Error::Usage {
                message: format!(
                    "session `{}` is already declared, with another purpose, base or branch; nothing was written",
                    wanted.id
                ),
                help: Some(format!(
                    "edit [sessions.{}] in {}, or choose another id",
                    wanted.id,
                    current.relative(&current.layer_path(session.layer))
                )),
            });
        }
    }
    Ok((current, wanted))
}

/// A branch named as `<remote>/NAME` that is a remote-tracking branch (and no local branch
/// of that very name): the session works on local `NAME`, as `git worktree add --track -b
/// NAME PATH <remote>/NAME` (or `git switch`'s guess) would, instead of a local branch
/// called `<remote>/NAME`.
struct Tracked {
    /// The local branch: `NAME`.
    local: String,
    /// `<remote>/NAME`.
    remote_ref: String,
    /// Whether local `NAME` exists already (it is then checked out as it is, SPEC §6).
    exists: bool,
    /// For a remote other than the manifest's: the base the new branch starts at (the
    /// manifest's remote is where SPEC §6 looks for `NAME` anyway).
    base: Option<String>,
}

impl Tracked {
    /// What `new` tells the user it made of the name.
    fn note(&self, id: &str) -> String {
        let what = if self.exists {
            format!("the existing local branch `{}`", escape(&self.local))
        } else {
            format!("a local branch `{}` tracking it", escape(&self.local))
        };
        format!(
            "`{}` is a remote-tracking branch: session `{id}` works on {what}",
            escape(&self.remote_ref)
        )
    }
}

fn tracked(repo: &gix::Repository, branch: &str, default_remote: &str) -> Option<Tracked> {
    let exists = |full: &str| repo.try_find_reference(full).ok().flatten().is_some();
    if exists(&crate::names::branch_ref(branch)) || !exists(&format!("refs/remotes/{branch}")) {
        return None;
    }
    // The remote whose name leads it (the longest, as the default refspec maps them).
    let remote = repo
        .remote_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| {
            branch
                .strip_prefix(n.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(String::len)?;
    let local = branch.get(remote.len() + 1..)?.to_owned();
    if local == "HEAD" || crate::manifest::branch_problem(&local).is_some() {
        return None;
    }
    Some(Tracked {
        exists: exists(&crate::names::branch_ref(&local)),
        base: (remote != default_remote).then(|| branch.to_owned()),
        remote_ref: branch.to_owned(),
        local,
    })
}

/// The setup (and teardown) that creating session `id` of `manifest` would need trusted and
/// this machine does not trust; none when its worktree is there already.
fn untrusted(
    manifest: &Manifest,
    id: &str,
    common_dir: &Path,
) -> Result<Option<crate::store::machine::SetupScript>, Error> {
    let Some(session) = manifest.sessions.get(id) else {
        return Ok(None);
    };
    if !session.environment.runs_commands() || manifest.worktree_path(session).is_dir() {
        return Ok(None);
    }
    let script = session.environment.setup_script();
    let trusted = crate::store::machine::trusted(&crate::store::machine::repository_key(common_dir))?;
    Ok((!trusted.contains(&crate::store::machine::setup_hash(&script))).then_some(script))
}

/// `new` refused for an untrusted setup: nothing was written.
fn not_trusted(id: &str, shared: bool) -> Error {
    let again = if shared { " --shared" } else { "" };
    Error::Blocked {
        message: format!(
            "session `{id}` was not created: its setup commands are not trusted on this machine; nothing was written"
        ),
        help: format!("review them and trust them with `flowloom trust`, then run `flowloom new{again} {id}` again"),
    }
}

/// Apply the session `id` alone, without asking (creating loses nothing), and print its path.
/// `declaring`: the session is not declared yet: its creation is refused when blocked, and
/// this writes its declaration once the plan may go ahead.
fn create(
    repo: &gix::Repository,
    start_dir: &Path,
    printer: &Printer,
    lock: &crate::store::lock::ApplyLock,
    manifest: &Manifest,
    id: &str,
    declaring: Option<&mut dyn FnMut() -> Result<(), Error>>,
) -> Result<ExitCode, Error> {
    let fresh = declaring.is_some();
    let refuse = |plan: &crate::plan::Plan, _: &crate::read::state::State| {
        fresh.then(|| blocked_creation(plan, manifest, id)).flatten()
    };
    let run = Run {
        plan_on_stderr: true,
        refuse: Some(&refuse),
        ..Run::new(repo, start_dir, printer, lock)
    };
    let options = crate::plan::Options {
        force: false,
        targets: [id.to_owned()].into(),
        ..Default::default()
    };
    let code = match declaring {
        Some(declare) => run.carry_out(manifest, &options, Confirm::Given, None, declare)?,
        None => run.carry_out(manifest, &options, Confirm::Given, None, &mut || Ok(()))?,
    };
    if let Some(session) = manifest.sessions.get(id) {
        let worktree = manifest.worktree_path(session);
        if worktree.is_dir() {
            let worktree = crate::fsutil::canonical(&worktree);
            printer.out(&format!("{}\n", worktree.display()));
            super::shell_init::change_directory(&worktree);
        }
    }
    Ok(code)
}

/// Why the creation of the session `id`, declared by this `new`, cannot go ahead: what
/// blocks it, as `new`'s error (nothing is written).
fn blocked_creation(plan: &crate::plan::Plan, manifest: &Manifest, id: &str) -> Option<Error> {
    let change = plan.changes.iter().find(|c| c.session == id)?;
    let crate::plan::Action::Blocked { reasons } = &change.action else {
        return None;
    };
    let why: Vec<String> = reasons
        .iter()
        .map(|r| escape(&crate::render::reason_text(r, manifest)).into_owned())
        .collect();
    Some(Error::Blocked {
        message: format!(
            "session `{id}` was not created: {}; nothing was written",
            why.join("; ")
        ),
        help: format!("remove what blocks it, or choose another branch or id, then run `flowloom new {id}` again"),
    })
}

/// The id, and the branch when one is named: `--branch NAME`, or an `ID` that is a branch
/// name rather than an id (`feature/login` → `feature-login`).
fn id_and_branch(args: &NewArgs) -> Result<(String, Option<String>), Error> {
    let not_id = |why: &str| Error::Usage {
        message: format!(
            "`{}` is neither a session id nor a branch name: {why}",
            escape(&args.id)
        ),
        help: Some(
            "an id is [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters, not ending in .lock; a branch name is \
             what `git branch` accepts"
                .into(),
        ),
    };
    if let Some(branch) = &args.branch {
        check_branch(branch)?;
        if !crate::manifest::is_valid_id(&args.id) {
            return Err(not_id("with --branch, ID names the session"));
        }
        return Ok((args.id.clone(), Some(branch.clone())));
    }
    if crate::manifest::is_valid_id(&args.id) {
        return Ok((args.id.clone(), None));
    }
    if let Some(why) = crate::manifest::branch_problem(&args.id) {
        return Err(not_id(&why));
    }
    let id = id_of_branch(&args.id);
    if !crate::manifest::is_valid_id(&id) {
        return Err(not_id("no session id can be made of it"));
    }
    Ok((id, Some(args.id.clone())))
}

fn check_branch(branch: &str) -> Result<(), Error> {
    match crate::manifest::branch_problem(branch) {
        Some(why) => Err(Error::Usage {
            message: format!("`{}` is not a valid branch name: {why}", escape(branch)),
            help: Some("name a branch as `git branch` accepts it".into()),
        }),
        None if branch.contains(crate::manifest::Template::PLACEHOLDER) => Err(Error::Usage {
            message: format!("branch `{}` holds `{{id}}`", escape(branch)),
            help: Some("name the branch itself; `{id}` belongs in the [defaults] template".into()),
        }),
        None => Ok(()),
    }
}

/// A session id made of a branch name: every run of characters an id cannot hold becomes
/// one `-`, and it is cut to 64 characters.
pub(super) fn id_of_branch(branch: &str) -> String {
    let mut id = String::new();
    for c in branch.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    let mut id: String = id.trim_matches(|c| c == '-' || c == '.').chars().take(64).collect();
    loop {
        let trimmed = id.strip_suffix(".lock").unwrap_or(&id).trim_end_matches(['-', '.']);
        if trimmed.len() == id.len() {
            return id;
        }
        id = trimmed.to_owned();
    }
}

/// `--base` as `git worktree add` reads it: a revspec of this repository; else
/// `<remote>/REV` when only that exists; `HEAD` and `@` now, as the branch they name (or
/// the commit, when detached), so that the manifest never says `HEAD`.
fn resolve_base(repo: &gix::Repository, base: &str, remote: &str) -> Result<String, Error> {
    if base == "HEAD" || base == "@" {
        return head_now(repo);
    }
    let resolves = |rev: &str| repo.rev_parse_single(crate::names::commit_spec(rev).as_str()).is_ok();
    if resolves(base) {
        return Ok(base.to_owned());
    }
    let tracking = format!("{remote}/{base}");
    if repo
        .try_find_reference(format!("refs/remotes/{tracking}").as_str())
        .ok()
        .flatten()
        .is_some()
    {
        return Ok(tracking);
    }
    Err(Error::Usage {
        message: format!(
            "base `{}` does not resolve to a commit of this repository, and there is no `{}`; nothing was written",
            escape(base),
            escape(&tracking)
        ),
        help: Some(format!(
            "name a branch, tag or commit, or fetch it first (`git fetch {remote}`)"
        )),
    })
}

/// Where `HEAD` is now: its branch's name, or the commit when it is detached.
fn head_now(repo: &gix::Repository) -> Result<String, Error> {
    let unborn = || Error::Usage {
        message: "`HEAD` names no commit yet; nothing was written".into(),
        help: Some("make a first commit, or name a base with --base".into()),
    };
    let head = repo
        .head()
        .map_err(|e| crate::error::RepoError::git("read HEAD of", repo.git_dir(), e))?;
    if let Some(name) = head.referent_name() {
        let short = name.shorten().to_string();
        if head.id().is_none() {
            return Err(unborn());
        }
        return Ok(short);
    }
    head.id().map(|id| id.to_string()).ok_or_else(unborn)
}

/// The layer `new` declares in: the local one unless `--shared`.
fn layer(args: &NewArgs) -> Layer {
    if args.shared { Layer::Shared } else { Layer::Local }
}

/// `text` (of the layer `new` declares in) with `[sessions.<id>]` added, comments kept.
fn declaration(current: &Manifest, args: &NewArgs, wanted: &Wanted, text: &str) -> Result<String, Error> {
    let mut keys = Vec::new();
    if let Some(purpose) = &args.purpose {
        keys.push(("purpose", purpose.clone()));
    }
    if let Some(base) = &wanted.base {
        keys.push(("base", base.clone()));
    }
    if let Some(branch) = &wanted.branch {
        keys.push(("branch", branch.clone()));
    }
    let adoption = Adoption {
        id: wanted.id.clone(),
        keys,
        branch: String::new(),
        path: Default::default(),
        notes: Vec::new(),
    };
    let cannot = |why: crate::plan::adopt::EditError| Error::ManifestEdit {
        file: current.relative(&current.layer_path(layer(args))).to_string(),
        why,
    };
    // SPEC §11.1, first use: the local layer records the root it is made with.
    let text = match layer(args) {
        Layer::Local => super::first_use::with_recorded_root(current, text)
            .map_err(|e| cannot(crate::plan::adopt::EditError::NotToml(e.to_string())))?,
        Layer::Shared => text.to_owned(),
    };
    crate::plan::adopt::edit(&text, std::slice::from_ref(&adoption)).map_err(cannot)
}

/// The manifest as it would be with the session declared, nothing written.
fn with_declaration(current: &Manifest, args: &NewArgs, wanted: &Wanted) -> Result<Manifest, Error> {
    let layer = layer(args);
    let text = declaration(current, args, wanted, current.layer_source(layer))?;
    Ok(current.with_layer(layer, text)?)
}

/// Add `[sessions.<id>]` to the local layer (the committed manifest with `--shared`),
/// compare-and-swap, refusing anything that would make the manifest invalid; the manifest
/// as now written.
fn declare(current: &Manifest, common_dir: &Path, args: &NewArgs, wanted: &Wanted) -> Result<Manifest, Error> {
    let change = |text: &str| declaration(current, args, wanted, text).map(Some);
    super::edit::edit(current, common_dir, &[(layer(args), &change)])
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_of_branch_names() {
        assert_eq!(super::id_of_branch("feature/login"), "feature-login");
        assert_eq!(super::id_of_branch("a//b"), "a-b");
        assert_eq!(super::id_of_branch("-x/"), "x");
        assert_eq!(super::id_of_branch("x/y.lock"), "x-y");
        let long = super::id_of_branch(&"a/".repeat(100));
        assert!(long.len() <= 64 && crate::manifest::is_valid_id(&long), "{long}");
    }
}
