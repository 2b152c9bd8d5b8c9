//! `working-tree-encoding` in UTF-16 and UTF-32, written as git writes it (git converts with
//! iconv; gix's encoder, `encoding_rs`, writes UTF-16 as UTF-8 and knows no UTF-32). Shared
//! by the plan, which refuses only the encodings this does not write, and the checkout.
//!
//! What git writes with glibc's iconv: `UTF-16LE`/`UTF-16BE` and `UTF-32LE`/`UTF-32BE`
//! without a byte order mark; plain `UTF-16` and `UTF-32` little-endian after the mark
//! (`FF FE`, `FF FE 00 00`); `UTF-16LE-BOM`, a name git handles itself, little-endian after
//! the mark (git knows no `UTF-16BE-BOM` or `UTF-32LE-BOM`). Names are matched as iconv matches them, ignoring case, with or
//! without the dash.

/// A UTF-16 or UTF-32 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide {
    /// Bytes per code unit: 2 or 4.
    unit: usize,
    big_endian: bool,
    byte_order_mark: bool,
}

/// The form `name` (a `working-tree-encoding` value) names, if it is one of these.
pub fn by_name(name: &[u8]) -> Option<Wide> {
    let upper = name.to_ascii_uppercase();
    let (unit, rest) = match upper.as_slice() {
        [b'U', b'T', b'F', b'-', b'1', b'6', rest @ ..] | [b'U', b'T', b'F', b'1', b'6', rest @ ..] => (2, rest),
        [b'U', b'T', b'F', b'-', b'3', b'2', rest @ ..] | [b'U', b'T', b'F', b'3', b'2', rest @ ..] => (4, rest),
        _ => return None,
    };
    let (big_endian, byte_order_mark) = match rest {
        b"" => (false, true),
        b"LE" => (false, false),
        b"BE" => (true, false),
        // git's own name (iconv has none): little-endian after the mark; UTF-16 only.
        b"LE-BOM" if unit == 2 => (false, true),
        _ => return None,
    };
    Some(Wide {
        unit,
        big_endian,
        byte_order_mark,
    })
}

/// Whether `name` looks like a UTF-16/UTF-32/UCS-2/UCS-4 encoding, which gix cannot write.
pub fn is_wide_name(name: &[u8]) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        &b"UTF-16"[..],
        b"UTF-32",
        b"UCS-2",
        b"UCS-4",
        b"UTF16",
        b"UTF32",
        b"UCS2",
        b"UCS4",
    ]
    .iter()
    .any(|p| upper.starts_with(p))
}

impl Wide {
    /// `text` in this form; an empty text stays empty (iconv writes the mark before the
    /// first character only).
    pub fn encode(self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * self.unit + 4);
        let mut push = |unit: u32| {
            let bytes = unit.to_be_bytes();
            let unit_bytes = &bytes[4 - self.unit..];
            if self.big_endian {
                out.extend_from_slice(unit_bytes);
            } else {
                out.extend(unit_bytes.iter().rev());
            }
        };
        if self.byte_order_mark && !text.is_empty() {
            push(0xFEFF);
        }
        for c in text.chars() {
            if self.unit == 4 {
                push(u32::from(c));
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push(u32::from(*unit));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bytes_are_gits() {
        let text = "h\u{e9}\u{1F600}\n";
        let utf16 = by_name(b"utf-16").expect("known");
        assert_eq!(
            utf16.encode(text),
            [0xFF, 0xFE, b'h', 0, 0xE9, 0, 0x3D, 0xD8, 0x00, 0xDE, b'\n', 0]
        );
        assert_eq!(by_name(b"UTF16BE").expect("known").encode("h"), [0, b'h']);
        assert_eq!(by_name(b"UTF-16LE").expect("known").encode("h"), [b'h', 0]);
        assert_eq!(
            by_name(b"UTF-32").expect("known").encode("h"),
            [0xFF, 0xFE, 0, 0, b'h', 0, 0, 0]
        );
        assert_eq!(by_name(b"UTF-32BE").expect("known").encode("h"), [0, 0, 0, b'h']);
        assert_eq!(utf16.encode(""), Vec::<u8>::new());
        assert_eq!(by_name(b"UCS-2"), None);
        assert_eq!(by_name(b"UTF-16XE"), None);
        assert_eq!(
            by_name(b"utf16le-bom").expect("known").encode("h"),
            [0xFF, 0xFE, b'h', 0]
        );
        assert_eq!(by_name(b"UTF-16BE-BOM"), None);
        assert_eq!(by_name(b"UTF-32LE-BOM"), None);
        assert!(is_wide_name(b"ucs-2") && !is_wide_name(b"ISO-8859-1"));
    }
}
