//! The manifest's text as miette reads it for diagnostics (SPEC §8: no input size causes a
//! panic or quadratic time).
//!
//! miette's own `SourceCode` for strings scans from the start of the file for every label,
//! so a manifest with thousands of problems took time quadratic in its size; and its
//! graphical renderer pads with `{:width$}`, which panics past column 65,535. This one finds
//! lines through an index built once and shared by every problem of the file, and shows a
//! label on a very long line through a window of that line around it.

use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// Lines longer than this are shown as a window around the label, without context lines.
const LONG_LINE: usize = 512;
/// Bytes shown on each side of a label in such a window.
const WINDOW_MARGIN: usize = 40;
/// Labels are cut to this many bytes (the start of a long value is enough to find it).
pub const MAX_LABEL: usize = 128;

#[derive(Debug, Clone)]
pub struct ManifestSource {
    name: Arc<str>,
    text: Arc<str>,
    /// Byte offset where each line starts (lines end at `\n`).
    line_starts: Arc<[usize]>,
}

impl ManifestSource {
    pub fn new(name: &str, text: Arc<str>) -> Self {
        let line_starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        ManifestSource {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The 0-based line that holds byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset).saturating_sub(1)
    }

    fn line_start(&self, line: usize) -> usize {
        self.line_starts.get(line).copied().unwrap_or(self.text.len())
    }

    /// Where `line` ends, without its line break.
    fn line_end(&self, line: usize) -> usize {
        let next = self.line_start(line + 1);
        let bytes = self.text.as_bytes();
        let mut end = next;
        if end > self.line_start(line) && bytes.get(end - 1) == Some(&b'\n') {
            end -= 1;
        }
        if end > self.line_start(line) && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        end
    }

    fn is_long(&self, line: usize) -> bool {
        self.line_end(line) - self.line_start(line) > LONG_LINE
    }

    /// A span cut to at most [`MAX_LABEL`] bytes, ending on a character boundary.
    pub fn clamp(&self, start: usize, len: usize) -> (usize, usize) {
        let start = floor_boundary(&self.text, start.min(self.text.len()));
        let end = ceil_boundary(&self.text, (start + len.min(MAX_LABEL)).min(self.text.len()));
        (start, end - start)
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

impl SourceCode for ManifestSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let start = span.offset();
        let end = start.checked_add(span.len()).ok_or(MietteError::OutOfBounds)?;
        if end > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first = self.line_of(start);
        let last = self.line_of(end.saturating_sub(1).max(start));
        let name = self.name.to_string();
        if (first..=last).any(|l| self.is_long(l)) {
            // A window of the line: the label and a little around it, no context lines. A
            // span that would need a wide window (two labels merged) is refused, and miette
            // shows its labels apart.
            if end - start > 2 * MAX_LABEL {
                return Err(MietteError::OutOfBounds);
            }
            let from = floor_boundary(
                &self.text,
                start.saturating_sub(WINDOW_MARGIN).max(self.line_start(first)),
            );
            let to = ceil_boundary(&self.text, (end + WINDOW_MARGIN).min(self.line_end(last)).max(end));
            let (from, to, column) = if before == 0 && after == 0 {
                (start, end, start - self.line_start(first))
            } else {
                (from, to, from - self.line_start(first))
            };
            return Ok(Box::new(MietteSpanContents::new_named(
                name,
                &self.text.as_bytes()[from..to],
                (from, to - from).into(),
                first,
                column,
                last - first + 1,
            )));
        }
        // Short lines: miette's own reading, started a few lines up instead of at the top
        // of the file, and with no long line among the context lines.
        let mut above = 0;
        while above < before && first > above && !self.is_long(first - above - 1) {
            above += 1;
        }
        let mut below = 0;
        while below < after && last + below + 1 < self.line_starts.len() && !self.is_long(last + below + 1) {
            below += 1;
        }
        let mut base_line = if before == 0 { first } else { first - above };
        // miette reads an empty span at a line's start from the line break before it.
        if start == end && start > 0 && start == self.line_start(base_line) {
            base_line -= 1;
        }
        let base = self.line_start(base_line);
        // Up to two lines more than asked: miette reads one further when a span ends at a
        // line break.
        let stop = if below == after {
            self.line_start(last + after + 3).min(self.text.len())
        } else {
            self.line_start(last + below + 1)
        };
        let slice = &self.text.as_bytes()[base..stop];
        let inner = SourceSpan::new((start - base).into(), end - start);
        let contents = <[u8] as SourceCode>::read_span(slice, &inner, before, after)?;
        let data = contents.data();
        let offset = contents.span().offset() + base;
        let line_base = base_line;
        Ok(Box::new(MietteSpanContents::new_named(
            name,
            data,
            (offset, data.len()).into(),
            contents.line() + line_base,
            contents.column(),
            contents.line_count() + line_base,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers as miette's own reading on ordinary files.
    #[test]
    fn short_lines_read_as_miette_reads_them() {
        let text = "a = 1\n[sessions.x]\npurpose = \"p\"\r\nbranch = \"b\"\n\n[defaults]\nroot = \"r\"\n";
        let source = ManifestSource::new("f", text.into());
        for start in 0..text.len() {
            for len in 0..(text.len() - start).min(20) {
                for (before, after) in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 0)] {
                    let span = SourceSpan::new(start.into(), len);
                    let ours = source.read_span(&span, before, after);
                    let theirs = text.read_span(&span, before, after);
                    match (ours, theirs) {
                        (Ok(o), Ok(t)) => {
                            assert_eq!(o.data(), t.data(), "{start} {len} {before} {after}");
                            assert_eq!(o.span(), t.span(), "{start} {len}");
                            assert_eq!(o.line(), t.line(), "{start} {len} {before} {after}");
                            assert_eq!(o.column(), t.column(), "{start} {len} {before} {after}");
                        }
                        (Err(_), Err(_)) => {}
                        (o, t) => panic!("{start} {len}: {:?} vs {:?}", o.is_ok(), t.is_ok()),
                    }
                }
            }
        }
    }

    #[test]
    fn long_lines_are_windowed() {
        let text = format!("[sessions.a]\npurpose = \"{}\" x\nb = 1\n", "é".repeat(50_000));
        let source = ManifestSource::new("f", text.as_str().into());
        let at = text.find("\" x").expect("marker") + 2;
        let c = source.read_span(&SourceSpan::new(at.into(), 1), 1, 1).expect("read");
        assert!(c.data().len() < 200);
        assert_eq!(c.line(), 1);
        let header = source.read_span(&SourceSpan::new(at.into(), 1), 0, 0).expect("read");
        assert_eq!(header.column(), at - text.find("purpose").expect("key"));
        assert!(std::str::from_utf8(c.data()).is_ok());
    }
}
