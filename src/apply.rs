//! Carry a plan out, through gix only.
//!
//! Every step is ordered so that a kill between any two of them leaves a state that `plan`
//! reads as "create" or "repair", never as unmanaged work and never as an orphan with
//! someone's commits: the ownership entry (`creating`) is written before anything else
//! of a session exists, and marked `created` only once everything does.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::refs::transaction::{Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog};

use crate::error::RepoError;
use crate::manifest::Manifest;
use crate::metadata::{self, Wanted};
use crate::ownership::{OwnedSession, OwnedState, Record};
use crate::plan::{Action, Archive, Change, INITIALIZING, Plan, Repair, Start, StartFrom, WorktreeRemoval};
use crate::state::State;

/// What happened to one change.
#[derive(Debug)]
pub struct Outcome<'p> {
    pub change: &'p Change,
    /// `None` when carried out (or blocked, which does nothing); the error otherwise.
    pub error: Option<RepoError>,
}

pub struct Applier<'a> {
    repo: &'a gix::Repository,
    manifest: &'a Manifest,
    common_dir: std::path::PathBuf,
    record: Record,
    interrupt: AtomicBool,
    /// Show a progress bar (a terminal, output for people).
    progress: bool,
    bar: Option<crate::progress::Bar>,
}

impl<'a> Applier<'a> {
    pub fn new(repo: &'a gix::Repository, manifest: &'a Manifest, state: &State, progress: bool) -> Self {
        Applier {
            repo,
            manifest,
            common_dir: crate::state::canonical(repo.common_dir()),
            record: Record {
                version: state.owned.version,
                // Entries whose worktree and branch are both gone (a removal killed after its
                // last step) are dropped the next time the record is written.
                sessions: state
                    .owned
                    .sessions
                    .iter()
                    .filter(|o| state.worktrees.contains_key(&o.path) || state.branches.contains_key(&o.branch))
                    .cloned()
                    .collect(),
            },
            interrupt: AtomicBool::new(false),
            progress,
            bar: None,
        }
    }

    /// Carry out every change it can; one failure does not stop the others.
    pub fn apply<'p>(&mut self, plan: &'p Plan, state: &State) -> Vec<Outcome<'p>> {
        let mut outcomes = Vec::new();
        if plan.has_changes()
            && let Err(e) = crate::exclude::ensure(&self.common_dir, &state.missing_excludes)
        {
            return plan
                .changes
                .iter()
                .map(|change| Outcome {
                    change,
                    error: Some(clone_err(&e)),
                })
                .collect();
        }
        let checkouts = plan
            .changes
            .iter()
            .filter(|c| match &c.action {
                Action::Create { .. } => true,
                Action::Update { repairs, .. } => repairs.iter().any(|r| matches!(r, Repair::Worktree { .. })),
                _ => false,
            })
            .count();
        let bar = crate::progress::Bar::new(self.progress && checkouts > 0, checkouts);
        self.bar = Some(bar);
        for change in &plan.changes {
            let result = match &change.action {
                Action::Create { start, wanted, base } => self.create(change, start, wanted, base),
                Action::Update { repairs, wanted } => self.update(change, repairs, wanted),
                Action::Remove {
                    worktree,
                    delete_branch,
                    archive,
                    discard,
                } => self.remove(
                    change,
                    *worktree,
                    *delete_branch,
                    archive.as_ref(),
                    !discard.is_empty(),
                    state,
                ),
                Action::Blocked { .. } => Ok(()),
            };
            outcomes.push(Outcome {
                change,
                error: result.err(),
            });
        }
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        outcomes
    }

    fn save_record(&self) -> Result<(), RepoError> {
        self.record.write(&self.common_dir)
    }

    fn mark(&mut self, change: &Change, base: &str, state: OwnedState) -> Result<(), RepoError> {
        self.record.upsert(OwnedSession {
            id: change.session.clone(),
            branch: change.branch.clone(),
            path: change.path.clone(),
            base: base.to_owned(),
            state,
        });
        self.save_record()
    }

    fn create(&mut self, change: &Change, start: &Start, wanted: &Wanted, base: &str) -> Result<(), RepoError> {
        self.mark(change, base, OwnedState::Creating)?;
        failpoint("create:record");
        self.ensure_branch(&change.branch, start)?;
        failpoint("create:branch");
        self.add_worktree(change)?;
        failpoint("create:checkout");
        self.write_session_folder(change, wanted, None)?;
        failpoint("create:metadata");
        self.mark(change, base, OwnedState::Created)
    }

    fn update(&mut self, change: &Change, repairs: &[Repair], wanted: &Wanted) -> Result<(), RepoError> {
        let base = self
            .record
            .by_path(&change.path)
            .map_or_else(|| self.manifest.defaults.base.clone(), |o| o.base.clone());
        let mut recreated = false;
        for repair in repairs {
            match repair {
                Repair::Worktree { start, reset } => {
                    // Making the worktree again is creating it: recorded the same way, so
                    // that a kill during its checkout is recognised and redone.
                    self.mark(change, &base, OwnedState::Creating)?;
                    self.drop_registration(&change.path, *reset)?;
                    self.ensure_branch(&change.branch, start)?;
                    self.add_worktree(change)?;
                    recreated = true;
                }
                Repair::Metadata { new, .. } => self.write_metadata(change, wanted, new.as_deref())?,
                Repair::SwitchBranch { from, start } => {
                    self.ensure_branch(&change.branch, start)?;
                    self.switch_branch(change, from)?;
                }
                Repair::Artifacts => {
                    let dir = artifacts_dir(&change.path, &change.session);
                    std::fs::create_dir_all(&dir).map_err(|e| RepoError::io("create", &dir, e))?;
                }
                Repair::FinishRecord => self.mark(change, &base, OwnedState::Created)?,
            }
        }
        if recreated {
            self.mark(change, &base, OwnedState::Created)?;
        }
        Ok(())
    }

    /// Archive (forced only), then the worktree, then the branch, then the record entry:
    /// a kill between any two leaves an orphan that the next plan removes the rest of.
    fn remove(
        &mut self,
        change: &Change,
        worktree: WorktreeRemoval,
        delete_branch: bool,
        archive: Option<&Archive>,
        discard_changes: bool,
        state: &State,
    ) -> Result<(), RepoError> {
        if let Some(archive) = archive {
            self.write_archive(archive)?;
            failpoint("remove:archive");
        }
        let resuming = state
            .owned
            .by_path(&change.path)
            .is_some_and(|o| o.state == OwnedState::Removing);
        if worktree != WorktreeRemoval::None && !resuming {
            let base = self
                .record
                .by_path(&change.path)
                .map_or_else(|| self.manifest.defaults.base.clone(), |o| o.base.clone());
            self.mark(change, &base, OwnedState::Removing)?;
            failpoint("remove:marked");
        }
        match worktree {
            // An interrupted removal may have deleted the worktree's `.git` file already,
            // which gix's removal would (rightly) refuse: the plan checked that only deleted
            // files remain, so finish the folder here and drop the registration.
            WorktreeRemoval::Remove if resuming => self.drop_registration(&change.path, true)?,
            WorktreeRemoval::Remove => {
                use gix::worktree::remove::Force;
                let half_made = state.worktrees.get(&change.path).and_then(|w| w.lock.as_deref()) == Some(INITIALIZING);
                let force = if half_made {
                    Force::OverrideLock
                } else if discard_changes {
                    Force::DiscardChanges
                } else {
                    Force::Never
                };
                self.repo
                    .prepare_remove_worktree(&change.path)
                    .and_then(|t| t.remove(force, gix::progress::Discard))
                    .map_err(|e| RepoError::git("remove worktree", &change.path, e))?;
            }
            WorktreeRemoval::Prune => self.drop_registration(&change.path, false)?,
            WorktreeRemoval::None => {}
        }
        failpoint("remove:worktree");
        if delete_branch {
            let commit = state.branches.get(&change.branch).map(|b| b.commit.clone());
            self.delete_branch(&change.branch, commit.as_deref())?;
            failpoint("remove:branch");
        }
        self.record.remove_path(&change.path);
        self.save_record()
    }

    /// Keep the commits a forced removal would make unreachable under an archive ref, with
    /// a reflog so that `git reflog` shows when and why.
    fn write_archive(&self, archive: &Archive) -> Result<(), RepoError> {
        let id = gix::ObjectId::from_hex(archive.commit.as_bytes())
            .map_err(|e| RepoError::git("parse object id", Path::new(&archive.commit), e))?;
        let _intent = crate::recover::SharedEdit::begin(&self.common_dir);
        let name: gix::refs::FullName = archive
            .reference
            .as_str()
            .try_into()
            .map_err(|e| RepoError::git("name archive", Path::new(&archive.reference), e))?;
        self.repo
            .edit_reference(RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: true,
                        message: "flowloom: archived before a forced removal".into(),
                    },
                    // Either new, or an earlier (killed) run already stored this commit.
                    expected: PreviousValue::ExistingMustMatch(gix::refs::Target::Object(id)),
                    new: gix::refs::Target::Object(id),
                },
                name,
                deref: false,
            })
            .map_err(|e| RepoError::git("write archive", Path::new(&archive.reference), e))?;
        Ok(())
    }

    /// Create the local branch unless it exists (SPEC §6); from a remote, also track it.
    fn ensure_branch(&self, branch: &str, start: &Start) -> Result<(), RepoError> {
        let full = format!("refs/heads/{branch}");
        if start.from == StartFrom::Local {
            return Ok(());
        }
        if self.repo.try_find_reference(full.as_str()).ok().flatten().is_some() {
            // A killed apply got this far already; the branch is ours and unmoved or it
            // would have been planned as `local`. What may be missing is its upstream.
            if start.from == StartFrom::Remote {
                self.set_upstream(branch)?;
            }
            return Ok(());
        }
        let id = gix::ObjectId::from_hex(start.commit.as_bytes())
            .map_err(|e| RepoError::git("parse object id", Path::new(&start.commit), e))?;
        // A ref edit may take `packed-refs.lock` (when the repository has packed refs).
        let _intent = crate::recover::SharedEdit::begin(&self.common_dir);
        let message = format!("branch: Created from {}", start.reference);
        self.repo
            .edit_reference(RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: message.into(),
                    },
                    expected: PreviousValue::MustNotExist,
                    new: gix::refs::Target::Object(id),
                },
                name: full
                    .as_str()
                    .try_into()
                    .map_err(|e| RepoError::git("name branch", Path::new(&full), e))?,
                deref: false,
            })
            .map_err(|e| RepoError::git("create branch", Path::new(&full), e))?;
        if start.from == StartFrom::Remote {
            failpoint("create:branch-ref");
            self.set_upstream(branch)?;
        }
        Ok(())
    }

    /// `branch.<name>.remote` and `.merge`, as `git branch --track` writes them.
    fn set_upstream(&self, branch: &str) -> Result<(), RepoError> {
        let _intent = crate::recover::SharedEdit::begin(&self.common_dir);
        let config_path = self.common_dir.join("config");
        let mut config = self
            .repo
            .config_file_mut(&config_path)
            .map_err(|e| RepoError::git("open", &config_path, e))?;
        let remote = self.manifest.defaults.remote.as_str();
        let merge = format!("refs/heads/{branch}");
        config
            .set_raw_value_by("branch", Some(branch.into()), "remote", remote)
            .and_then(|_| config.set_raw_value_by("branch", Some(branch.into()), "merge", merge.as_str()))
            .map_err(|e| RepoError::git("set the upstream in", &config_path, e))?;
        config.commit().map_err(|e| RepoError::git("write", &config_path, e))
    }

    fn add_worktree(&self, change: &Change) -> Result<(), RepoError> {
        let path = &change.path;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create", parent, e))?;
        }
        let full: gix::refs::FullName = format!("refs/heads/{}", change.branch)
            .try_into()
            .map_err(|e| RepoError::git("name branch", Path::new(&change.branch), e))?;
        let prepared = self
            .repo
            .prepare_add_worktree(path, gix::worktree::add::Head::Attached(full), &self.interrupt)
            .map_err(|e| RepoError::git("add worktree", path, e))?;
        // Registered and locked `initializing`, nothing checked out: where a kill during
        // checkout leaves a worktree.
        failpoint("create:registered");
        let progress = match &self.bar {
            Some(bar) => bar.files(&change.session),
            None => crate::progress::Bar::new(false, 0).files(&change.session),
        };
        prepared
            .checkout(progress, &self.interrupt)
            .map_err(|e| RepoError::git("check out worktree", path, e))?;
        if let Some(bar) = &self.bar {
            bar.session_done();
        }
        Ok(())
    }

    /// Check out the session's branch in a clean worktree that is on `from`, as
    /// `git switch` does for a clean tree: files tracked only by `from` are deleted, the
    /// branch's tree is written over the rest, then the index and `HEAD` follow. Untracked
    /// (ignored) files and the session folder stay. A kill in between leaves `HEAD` on
    /// `from` with changes, which the next plan reports as blocked instead of guessing.
    fn switch_branch(&self, change: &Change, from: &str) -> Result<(), RepoError> {
        use gix::bstr::ByteSlice;
        let path = &change.path;
        let git = |action: &'static str| move |e: gix::Error| RepoError::git(action, path, e);
        // Through its registration, so that it inherits this repository's open options.
        let wt_repo = self
            .proxy(path)?
            .ok_or_else(|| RepoError::message(format!("{} is not a registered worktree", path.display())))?
            .into_repo()
            .map_err(|e| RepoError::git("open worktree", path, e))?;
        let workdir = wt_repo
            .workdir()
            .map(Path::to_owned)
            .ok_or_else(|| RepoError::message("no worktree"))?;
        let full = format!("refs/heads/{}", change.branch);
        let tree = wt_repo
            .find_reference(full.as_str())
            .and_then(|mut r| r.peel_to_commit())
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(git("read the branch tree for"))?;
        let mut index = wt_repo.index_from_tree(&tree).map_err(git("build the index for"))?;
        let old = wt_repo.open_index().map_err(git("read the index of"))?;
        // Say, in the worktree's administration folder, that the files about to change are
        // a switch to this branch: a kill in the middle then leaves changes the next plan
        // can recognise as this switch's own and finish (`state::switch_leftovers_are_ours`).
        let marker = wt_repo.git_dir().join(crate::state::SWITCH_MARKER);
        std::fs::write(&marker, format!("{}\n", change.branch)).map_err(|e| RepoError::io("write", &marker, e))?;
        let keep: std::collections::BTreeSet<&gix::bstr::BStr> =
            index.entries().iter().map(|e| e.path(&index)).collect();
        for entry in old.entries() {
            let rel = entry.path(&old);
            if keep.contains(rel) {
                continue;
            }
            let rel = gix::path::from_bstr(rel.as_bstr()).map_err(git("name a file in"))?;
            let file = workdir.join(rel);
            match std::fs::remove_file(&file) {
                Ok(()) => remove_empty_parents(&file, &workdir),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RepoError::io("delete", &file, e)),
            }
        }
        let mut options = wt_repo
            .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
            .map_err(git("read checkout options for"))?;
        options.overwrite_existing = true;
        options.destination_is_initially_empty = false;
        let objects = wt_repo
            .objects
            .clone()
            .into_arc()
            .map_err(|e| RepoError::git("open objects of", path, e))?;
        let files = gix::progress::Discard;
        let bytes = gix::progress::Discard;
        failpoint("switch:deleted");
        gix::worktree::state::checkout(&mut index, &workdir, objects, &files, &bytes, &self.interrupt, options)
            .map_err(|e| RepoError::git("check out", path, e))?;
        failpoint("switch:checked-out");
        index
            .write(Default::default())
            .map_err(|e| RepoError::git("write the index of", path, e))?;
        let head: gix::refs::FullName = full
            .as_str()
            .try_into()
            .map_err(|e| RepoError::git("name branch", path, e))?;
        let head_ref: gix::refs::FullName = "HEAD".try_into().map_err(|e| RepoError::git("name HEAD", path, e))?;
        let commit = wt_repo
            .find_reference(full.as_str())
            .and_then(|mut r| r.peel_to_id().map(|id| id.detach()))
            .map_err(git("read the branch of"))?;
        let message: gix::bstr::BString = format!("checkout: moving from {from} to {}", change.branch).into();
        let _intent = crate::recover::SharedEdit::begin(&self.common_dir);
        // Point HEAD at the branch, then log the move in HEAD's own reflog (as git does)
        // without touching the branch itself.
        for edit in [
            RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: message.clone(),
                    },
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Symbolic(head),
                },
                name: head_ref.clone(),
                deref: false,
            },
            RefEdit {
                change: RefChange::Update {
                    log: LogChange {
                        mode: RefLog::Only,
                        force_create_reflog: true,
                        message,
                    },
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Object(commit),
                },
                name: head_ref,
                deref: false,
            },
        ] {
            wt_repo.edit_reference(edit).map_err(git("point HEAD of"))?;
        }
        let _ = std::fs::remove_file(&marker);
        Ok(())
    }

    /// Remove the registration of a worktree whose folder is gone (`reset`: or whose
    /// checkout a killed apply left half-made or half-deleted, which goes first).
    fn drop_registration(&self, path: &Path, reset: bool) -> Result<(), RepoError> {
        let force = if reset {
            match std::fs::remove_dir_all(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RepoError::io("delete", path, e)),
            }
            gix::worktree::remove::Force::OverrideLock
        } else {
            gix::worktree::remove::Force::Never
        };
        if let Some(proxy) = self.proxy(path)? {
            proxy
                .remove(force, gix::progress::Discard)
                .map_err(|e| RepoError::git("remove the registration of", path, e))?;
        }
        Ok(())
    }

    /// The registration of the worktree at `path` (canonical), if any.
    fn proxy(&self, path: &Path) -> Result<Option<gix::worktree::Proxy<'_>>, RepoError> {
        let proxies = self
            .repo
            .worktrees()
            .map_err(|e| RepoError::git("list worktrees", path, e))?;
        Ok(proxies
            .into_iter()
            .find(|p| p.base().is_ok_and(|base| crate::state::canonical(&base) == path)))
    }

    fn write_session_folder(&self, change: &Change, wanted: &Wanted, text: Option<&str>) -> Result<(), RepoError> {
        let dir = artifacts_dir(&change.path, &change.session);
        std::fs::create_dir_all(&dir).map_err(|e| RepoError::io("create", &dir, e))?;
        self.write_metadata(change, wanted, text)
    }

    fn write_metadata(&self, change: &Change, wanted: &Wanted, text: Option<&str>) -> Result<(), RepoError> {
        let path = metadata::path(&change.path, &change.session);
        let fresh;
        let text = match text {
            Some(t) => t,
            None => {
                fresh = wanted.create(shell_pid(), &now());
                &fresh
            }
        };
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    /// Delete a branch only if it still points where the plan saw it (compare-and-swap).
    fn delete_branch(&self, branch: &str, commit: Option<&str>) -> Result<(), RepoError> {
        let full = format!("refs/heads/{branch}");
        // Deleting a packed ref takes `packed-refs.lock`, and the config section below takes
        // `config.lock`: locks every git command shares.
        let _intent = crate::recover::SharedEdit::begin(&self.common_dir);
        let expected = match commit.and_then(|c| gix::ObjectId::from_hex(c.as_bytes()).ok()) {
            Some(id) => PreviousValue::MustExistAndMatch(gix::refs::Target::Object(id)),
            None => PreviousValue::MustExist,
        };
        self.repo
            .edit_reference(RefEdit {
                change: RefChange::Delete {
                    expected,
                    log: RefLog::AndReference,
                },
                name: full
                    .as_str()
                    .try_into()
                    .map_err(|e| RepoError::git("name branch", Path::new(&full), e))?,
                deref: false,
            })
            .map_err(|e| RepoError::git("delete branch", Path::new(&full), e))?;
        // `git branch -d` drops the branch's config section with it. Only lock the config
        // when there is one: most session branches have none.
        let has_section = self
            .repo
            .config_snapshot()
            .plumbing()
            .section("branch", Some(branch.into()))
            .is_ok();
        if !has_section {
            return Ok(());
        }
        let config_path = self.common_dir.join("config");
        let mut config = self
            .repo
            .config_file_mut(&config_path)
            .map_err(|e| RepoError::git("open", &config_path, e))?;
        if config.remove_section("branch", Some(branch.into())).is_some() {
            config.commit().map_err(|e| RepoError::git("write", &config_path, e))?;
        }
        Ok(())
    }
}

/// Remove the now empty folders between `file` and `top`, as git does after deleting a file.
fn remove_empty_parents(file: &Path, top: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == top || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Debug builds only (the tests' binary): `FLOWLOOM_FAILPOINT=<step>` aborts the process at
/// that step, as a `kill -9` would, to prove every intermediate state converges.
fn failpoint(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == step) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// The failpoints a plain (base-started) creation and a removal pass through; remote-started
/// creation also passes `create:branch-ref` (between the branch and its upstream).
pub const FAILPOINTS: [&str; 9] = [
    "create:record",
    "create:branch",
    "create:registered",
    "create:checkout",
    "create:metadata",
    "remove:archive",
    "remove:marked",
    "remove:worktree",
    "remove:branch",
];

fn artifacts_dir(worktree: &Path, id: &str) -> std::path::PathBuf {
    worktree.join("sessions").join(id).join("artifacts")
}

fn clone_err(e: &RepoError) -> RepoError {
    RepoError::message(e.to_string())
}

/// The parent of this process: the shell that ran flowloom (SPEC §5 `shellPid`).
fn shell_pid() -> u32 {
    #[cfg(unix)]
    {
        std::os::unix::process::parent_id()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Now, in UTC, to the second: `2026-11-24T06:00:00Z`.
fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
