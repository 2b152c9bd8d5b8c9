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

impl Style {
    const ALL: [Style; 7] = [
        Style::Create,
        Style::Update,
        Style::Remove,
        Style::Blocked,
        Style::Dim,
        Style::Bold,
        Style::Warn,
    ];

    fn marker(self) -> char {
        let index = Style::ALL.iter().position(|s| *s == self).unwrap_or(0);
        char::from_u32(STYLE_BASE + index as u32).unwrap_or(START)
    }

    fn from_marker(c: char) -> Option<Style> {
        let index = (c as u32).checked_sub(STYLE_BASE)?;
        Style::ALL.get(index as usize).copied()
    }
}

// ---- Escaping (SPEC §8: no text from the manifest or the repository reaches the terminal
// unescaped) ----
//
// Colors are marked by `paint` with two private-use characters, each followed by a nonce
// drawn at random once per process: a marker in the manifest or the repository cannot
// know the nonce, so it is escaped like any control character instead of coloring.

// The color markers and the escaping itself live in the leaf `crate::escape`, which apply's
// error texts use too.
use crate::escape::{PAINT_END as END, PAINT_START as START, push_escaped};
pub use crate::escape::{escape, is_unsafe};

const STYLE_BASE: u32 = 0xF8F2;
const NONCE_BASE: u32 = 0xF700;

/// 16 private-use characters, one per hex digit of a random number, fixed for the process.
fn nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the operating system's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let mut n = hasher.finish();
        (0..16)
            .map(|_| {
                let digit = (n & 0xf) as u32;
                n >>= 4;
                char::from_u32(NONCE_BASE + digit).unwrap_or('\u{F700}')
            })
            .collect()
    })
}

/// `text` as it may reach the terminal: everything unsafe escaped, and `paint`'s markers
/// turned into SGR codes (`color`) or dropped.
pub fn terminal(text: &str, color: bool) -> String {
    let nonce = nonce();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == START
            && let Some(after) = rest.strip_prefix(nonce)
            && let Some(style) = after.chars().next().and_then(Style::from_marker)
        {
            rest = &after[style.marker().len_utf8()..];
            if color {
                out.push_str("\x1b[");
                out.push_str(style.code());
                out.push('m');
            }
        } else if c == END
            && let Some(after) = rest.strip_prefix(nonce)
        {
            rest = after;
            if color {
                out.push_str("\x1b[0m");
            }
        } else if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `TERM` says the terminal understands no escape codes (`dumb`, as Emacs's shell
/// and some CI consoles set it).
pub fn dumb_terminal(term: Option<&std::ffi::OsStr>) -> bool {
    term.is_some_and(|t| t == "dumb")
}

/// Whether to color: `always` and `never` as said; `auto` only on a terminal that is not
/// dumb, and not when `NO_COLOR` is set (to anything but the empty string).
fn wants_color(
    choice: ColorChoice,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
    is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color.is_none_or(|v| v.is_empty()) && !dumb_terminal(term) && is_terminal,
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
        let color = wants_color(
            choice,
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
            std::io::stdout().is_terminal(),
        );
        Printer { color, quiet, verbose }
    }

    /// A printer that never colors (JSON output).
    pub fn plain(self) -> Self {
        Printer { color: false, ..self }
    }

    /// `text` in `style`. The color is not written as escape codes here but as markers that
    /// only the output functions turn into codes, after escaping everything else: text from
    /// the manifest or the repository can then never bring its own codes (see [`terminal`]).
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color && !text.is_empty() {
            let nonce = nonce();
            format!("{START}{nonce}{}{text}{END}{nonce}", style.marker())
        } else {
            text.to_owned()
        }
    }

    /// `text` as it may reach the terminal: escaped, and painted when this printer colors.
    fn render(&self, text: &str) -> String {
        terminal(text, self.color)
    }

    /// What the user asked for; printed even with `--quiet`.
    pub fn out(&self, text: &str) {
        let text = self.render(text);
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`flowloom plan | head`) is not an error worth a panic.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// Progress and summaries of what was done; not with `--quiet`.
    pub fn status(&self, text: &str) {
        if !self.quiet {
            eprintln!("{}", self.render(text));
        }
    }

    /// Detail only with `--verbose`.
    pub fn detail(&self, text: &str) {
        if self.verbose {
            eprintln!("{}", self.render(text));
        }
    }

    /// Something the user may want to act on that is not an error; not with `--quiet`,
    /// which prints only errors and what was asked for.
    pub fn warn(&self, text: &str) {
        if self.quiet {
            return;
        }
        eprintln!(
            "{}",
            self.render(&format!("{} {text}", self.paint(Style::Warn, "warning:")))
        );
    }

    /// Ask a yes/no question on the terminal; anything but `y`/`yes` is no.
    pub fn confirm(&self, question: &str) -> bool {
        eprint!("{} [y/N] ", self.render(question));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_colors_kept() {
        let p = Printer {
            color: true,
            quiet: false,
            verbose: false,
        };
        let hostile = "a\x1b[2K\x1b[1A\rb\u{202e}c\u{85}\x7f\td\n";
        let text = format!("{} {hostile}", p.paint(Style::Create, "+"));
        let shown = terminal(&text, true);
        assert_eq!(
            shown,
            "\x1b[32m+\x1b[0m a\\u001b[2K\\u001b[1A\\u000db\\u202ec\\u0085\\u007f\td\n"
        );
        assert_eq!(
            terminal(&text, false),
            shown.replace("\x1b[32m", "").replace("\x1b[0m", "")
        );
    }

    #[test]
    fn markers_from_outside_cannot_color() {
        let p = Printer {
            color: true,
            quiet: false,
            verbose: false,
        };
        // A marker copied from another run has another nonce; a bare one has none.
        let forged = format!("{START}{}{}x{END}", "\u{F700}".repeat(16), Style::Remove.marker());
        let shown = terminal(&forged, true);
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(shown.contains("\\uf8f0") && shown.contains("\\uf8f1"), "{shown:?}");
        // Painted text with a marker inside stays one color, its marker escaped.
        let shown = terminal(&p.paint(Style::Bold, &format!("a{END}b")), true);
        assert_eq!(shown, "\x1b[1ma\\uf8f1b\x1b[0m");
    }

    #[test]
    fn auto_colors_only_a_terminal_that_is_not_dumb() {
        use std::ffi::OsStr;
        let xterm = Some(OsStr::new("xterm-256color"));
        let dumb = Some(OsStr::new("dumb"));
        assert!(wants_color(ColorChoice::Auto, None, xterm, true));
        assert!(wants_color(ColorChoice::Auto, None, None, true));
        assert!(!wants_color(ColorChoice::Auto, None, dumb, true), "TERM=dumb");
        assert!(!wants_color(ColorChoice::Auto, None, xterm, false), "a pipe");
        assert!(!wants_color(ColorChoice::Auto, Some(OsStr::new("1")), xterm, true));
        assert!(wants_color(ColorChoice::Auto, Some(OsStr::new("")), xterm, true));
        assert!(wants_color(ColorChoice::Always, None, dumb, false));
        assert!(!wants_color(ColorChoice::Never, None, xterm, true));
        // With no color, nothing but the text reaches the terminal.
        let p = Printer {
            color: wants_color(ColorChoice::Auto, None, dumb, true),
            quiet: false,
            verbose: false,
        };
        assert_eq!(terminal(&p.paint(Style::Create, "+ a"), p.color), "+ a");
    }

    #[test]
    fn escaped_json_stays_valid_and_equal() {
        let value = serde_json::json!({"purpose": "a\u{1b}[2K\u{202e}\u{85}\u{7f}\rz"});
        let text = serde_json::to_string(&value).expect("json");
        let shown = terminal(&text, false);
        assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(back, value);
    }
}
