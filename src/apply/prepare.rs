//! SPEC §10: what a new (or remade) session gets after its checkout: the copies from the
//! main worktree, then the `setup` commands with the session's variables.

use std::path::Path;

use super::Executor;
use crate::apply::reporter::Warning;
use crate::apply::setup::SetupError;
use crate::plan::{Change, Variables};
use crate::store::metadata::{SetupProgress, SetupState};

/// SPEC §10: entries `copy` could not copy into a new session; the rest were copied, and the
/// session was made.
#[derive(Debug)]
pub struct CopyFailed {
    /// How many entries failed.
    pub count: usize,
    /// The first that failed, and why.
    pub path: String,
    pub why: String,
}

impl std::fmt::Display for CopyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "could not copy {} {} into the session ({}: {}); the rest was copied and the session was created",
            self.count,
            crate::plan::plural(self.count, "path"),
            crate::escape::escape(&self.path),
            self.why
        )
    }
}

impl std::error::Error for CopyFailed {}

/// How many entries left alone for one reason a copy names; the others are counted.
const SKIPPED_NAMED: usize = 3;

impl Executor<'_> {
    /// SPEC §10: copy the planned entries into a new worktree; what could not be copied, as
    /// a failure to report once the session is made.
    pub(super) fn copy_for(&self, change: &Change, prepare: &crate::plan::Prepare) -> Option<CopyFailed> {
        self.copy_items(change, prepare.from.as_deref()?, &prepare.copy)
    }

    /// Copy `items` from the main worktree `from` into the session (never overwriting); what
    /// could not be copied, as a failure to report.
    pub(super) fn copy_items(
        &self,
        change: &Change,
        from: &Path,
        items: &[crate::apply::copy::CopyItem],
    ) -> Option<CopyFailed> {
        if items.is_empty() {
            return None;
        }
        failpoint_copying(from, &change.path, items);
        let tracks = crate::store::tracked::SessionTracks::read(&change.path);
        let copied = crate::apply::copy::copy_into(from, &change.path, items, self.interrupt, Some(&tracks));
        // One warning per reason: the first few entries by name, the rest counted.
        let mut by_why: Vec<(&str, Vec<&str>)> = Vec::new();
        for (path, why) in &copied.skipped {
            match by_why.iter_mut().find(|(w, _)| *w == why.as_str()) {
                Some((_, paths)) => paths.push(path),
                None => by_why.push((why, vec![path])),
            }
        }
        for (why, paths) in by_why {
            let named = paths.len().min(SKIPPED_NAMED);
            for (i, path) in paths[..named].iter().enumerate() {
                self.reporter.warn(&Warning::CopySkipped {
                    session: change.session.clone(),
                    path: (*path).to_owned(),
                    why: why.to_owned(),
                    others: if i + 1 == named { paths.len() - named } else { 0 },
                });
            }
        }
        let (path, why) = copied.failed.first()?;
        Some(CopyFailed {
            count: copied.failed.len(),
            path: path.clone(),
            why: why.clone(),
        })
    }

    /// SPEC §10, §11.3: the (trusted) setup `commands` not yet run (`done` did), recorded
    /// one by one in the session's metadata (`setup::run_recorded`).
    pub(super) fn finish_setup(
        &self,
        change: &Change,
        commands: &[String],
        done: &[String],
        variables: &Variables,
        copied: bool,
    ) -> Result<(), SetupError> {
        let ports = match crate::store::metadata::read(&change.path, &change.session) {
            crate::store::metadata::MetadataFile::Valid(m) => m.ports(),
            _ => Default::default(),
        };
        let vars = variables.with_ports(&ports);
        let progress = SetupProgress {
            state: SetupState::Incomplete,
            copied,
            done: done.to_vec(),
        };
        let around = |run: &mut dyn FnMut() -> Result<(), SetupError>| {
            let mut result = Ok(());
            self.reporter.around(&mut || result = run());
            result
        };
        crate::apply::setup::run_recorded(&change.session, &change.path, &vars, commands, progress, &around)
    }

    pub(super) fn record_progress(&self, change: &Change, progress: &SetupProgress) -> Result<(), SetupError> {
        crate::apply::setup::record_progress(&change.path, &change.session, progress)
    }
}

/// Debug builds only: `FLOWLOOM_FAILPOINT=copy:part-way` copies the first of `items` and
/// aborts, as a `kill -9` in the middle of a copy would.
pub(super) fn failpoint_copying(from: &Path, to: &Path, items: &[crate::apply::copy::CopyItem]) {
    #[cfg(debug_assertions)]
    if std::env::var("FLOWLOOM_FAILPOINT").is_ok_and(|v| v == "copy:part-way") {
        let never = std::sync::atomic::AtomicBool::new(false);
        crate::apply::copy::copy_into(from, to, items.get(..1).unwrap_or_default(), &never, None);
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = (from, to, items);
}
