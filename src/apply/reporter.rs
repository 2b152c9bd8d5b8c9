//! How apply tells what it does while it works: through a [`Reporter`] the command layer
//! implements (with the renderer's progress bar and wording), so that apply itself prints
//! nothing and words nothing but its errors.

/// Something apply says while it works that fails no step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// SPEC §10: an entry `copy` left alone in a new session (never overwritten); `others`
    /// more were left alone for the same reason (named once, not a line each: finishing a
    /// large folder finds thousands already there).
    CopySkipped {
        session: String,
        path: String,
        why: String,
        others: usize,
    },
    /// SPEC §11.3: with `--force`, a failed teardown command, after which the removal goes on.
    TeardownFailed {
        session: String,
        command: String,
        status: String,
    },
}

/// The command layer's side of an apply's progress.
pub trait Reporter {
    /// The apply starts; it checks out `checkouts` worktrees.
    fn start(&self, checkouts: usize);
    /// How gix reports the files of one session's checkout.
    fn checkout(&self, session: &str) -> gix::progress::BoxedDynNestedProgress;
    /// One session's checkout is done.
    fn checkout_done(&self);
    /// Runs `f` with whatever the reporter draws cleared: `setup` and `teardown` commands
    /// write to the terminal themselves.
    fn around(&self, f: &mut dyn FnMut());
    fn warn(&self, warning: &Warning);
    /// The apply ends.
    fn finish(&self);
}
