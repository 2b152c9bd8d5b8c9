//! SPEC §8: no text from the manifest or the repository reaches the terminal unescaped. A
//! leaf, so that every stage that puts such a value into a message (apply's errors, the
//! renderer) escapes it the same way.

/// The first of the two private-use characters with which `render` marks colors (each
/// followed by a nonce); a marker that reaches the terminal any other way is escaped.
pub const PAINT_START: char = '\u{F8F0}';
/// The second color marker ([`PAINT_START`]).
pub const PAINT_END: char = '\u{F8F1}';

/// Whether `c` must not reach a terminal as it is: C0 controls but newline and tab, DEL, C1
/// controls, the bidirectional overrides and isolates (which reorder what is shown), the
/// bidirectional marks and the invisible characters that make two different names look
/// alike (zero-width space, word joiner and the invisible operators, byte order mark), and
/// the color markers. The zero-width joiner and non-joiner are left as they are: scripts
/// and emoji need them, and they join what is shown rather than hide it.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{61c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
        | PAINT_START | PAINT_END)
}

/// `c` as `\u001b`: readable, and in a JSON string the same character again, so that JSON
/// output stays valid and means what it meant.
pub fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    let _ = write!(out, "\\u{:04x}", c as u32);
}

/// One value from the manifest or the repository as it may be shown: every unsafe
/// character (see [`is_unsafe`]) escaped as `\u001b`, and newlines and tabs too, so that a
/// value stays on its line and cannot add lines of its own (SPEC §8, §11.4).
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe(c) || matches!(c, '\n' | '\t' | '\u{2028}' | '\u{2029}');
    if !text.chars().any(unsafe_here) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_here(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}
