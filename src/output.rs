//! The one door for output: every command prints through a `Printer`, which decides color,
//! quiet and verbose, and where each kind of text goes. What the user asked for (a plan,
//! JSON, a path) goes to stdout; progress, warnings and questions to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use crate::cli::ColorChoice;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Create,
    Update,
    Remove,
    Blocked,
    Dim,
    Bold,
    Warn,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Create => "32",
            Style::Update => "33",
            Style::Remove => "31",
            Style::Blocked => "1;35",
            Style::Dim => "2",
            Style::Bold => "1",
            Style::Warn => "1;33",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Printer {
    pub fn new(choice: ColorChoice, quiet: bool, verbose: bool) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
            }
        };
        Printer { color, quiet, verbose }
    }

    /// A printer that never colors (JSON output).
    pub fn plain(self) -> Self {
        Printer { color: false, ..self }
    }

    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_owned()
        }
    }

    /// What the user asked for; printed even with `--quiet`.
    pub fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`flowloom plan | head`) is not an error worth a panic.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// Progress and summaries of what was done; not with `--quiet`.
    pub fn status(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Detail only with `--verbose`.
    pub fn detail(&self, text: &str) {
        if self.verbose {
            eprintln!("{text}");
        }
    }

    pub fn warn(&self, text: &str) {
        eprintln!("{} {text}", self.paint(Style::Warn, "warning:"));
    }

    /// Ask a yes/no question on the terminal; anything but `y`/`yes` is no.
    pub fn confirm(&self, question: &str) -> bool {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}
