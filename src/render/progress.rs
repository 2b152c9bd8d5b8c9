//! Progress of a long apply: one bar on a terminal (sessions done, files checked out), and
//! nothing at all on a pipe, with `--quiet` or `--json`.
//!
//! gix reports checkout progress through prodash's `NestedProgress`, counting into an atomic
//! that its parallel checkout threads share; `Files` hands gix such counters and the bar sums
//! them when it redraws, so counting costs the checkout nothing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gix::progress::{Id, MessageLevel, Step, StepShared, UNKNOWN, Unit};

type Counters = Arc<Mutex<Vec<StepShared>>>;

pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    counters: Counters,
}

fn total(counters: &Counters) -> usize {
    counters
        .lock()
        .map(|c| c.iter().map(|s| s.load(Ordering::Relaxed)).sum())
        .unwrap_or(0)
}

impl Bar {
    /// A bar over `sessions` steps, shown only when `enabled` (stderr is a terminal and
    /// output is for people) and the terminal is not dumb: a bar redraws with escape codes.
    pub fn new(enabled: bool, sessions: usize) -> Bar {
        let enabled = enabled && !crate::render::output::dumb_terminal(std::env::var_os("TERM").as_deref());
        let counters = Counters::default();
        let bar = enabled.then(|| {
            let read = counters.clone();
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(sessions as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} sessions, {files} files  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .with_key(
                    "files",
                    move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", total(&read));
                    },
                )
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Bar { bar, counters }
    }

    /// The progress handed to gix for one session's checkout.
    pub fn files(&self, session: &str) -> Files {
        if let Some(bar) = &self.bar {
            // indicatif writes the message as it is: escape what came from the manifest.
            bar.set_message(crate::render::output::escape(session).into_owned());
        }
        Files {
            counters: self.bar.as_ref().map(|_| self.counters.clone()),
            own: StepShared::default(),
        }
    }

    /// Runs `f` with the bar cleared from the screen (output of `setup` commands).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub fn session_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(String::new());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One gix progress item; the `checkout` child (files) is registered with the bar, the
/// others (`writing`, in bytes) only count for themselves.
#[derive(Clone)]
pub struct Files {
    counters: Option<Counters>,
    own: StepShared,
}

impl gix::progress::Count for Files {
    fn set(&self, step: Step) {
        self.own.store(step, Ordering::Relaxed);
    }

    fn step(&self) -> Step {
        self.own.load(Ordering::Relaxed)
    }

    fn inc_by(&self, step: Step) {
        self.own.fetch_add(step, Ordering::Relaxed);
    }

    fn counter(&self) -> StepShared {
        self.own.clone()
    }
}

impl gix::progress::Progress for Files {
    fn init(&mut self, _max: Option<Step>, _unit: Option<Unit>) {}

    fn set_name(&mut self, _name: String) {}

    fn name(&self) -> Option<String> {
        None
    }

    fn id(&self) -> Id {
        UNKNOWN
    }

    fn message(&self, _level: MessageLevel, _message: String) {}
}

impl gix::progress::NestedProgress for Files {
    type SubProgress = Files;

    fn add_child(&mut self, name: impl Into<String>) -> Files {
        let child = Files {
            counters: None,
            own: StepShared::default(),
        };
        if name.into() == "checkout"
            && let Some(counters) = &self.counters
            && let Ok(mut list) = counters.lock()
        {
            list.push(child.own.clone());
        }
        child
    }

    fn add_child_with_id(&mut self, name: impl Into<String>, _id: Id) -> Files {
        self.add_child(name)
    }
}
