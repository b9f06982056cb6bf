//! Line ends, once: the one line iterator and the one CRLF normaliser that
//! every other module builds on.
//!
//! Two readings of a lone CR (a CR not followed by LF) exist in mail, and
//! both are needed: as a line end (what many MIME parsers and clients do,
//! so header blocks and OpenPGP canonical text are read that way) and as
//! content (POP3 and CMS: only LF ends a line).

use std::borrow::Cow;

/// What a CR that is not followed by LF is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoneCr {
    /// It ends a line, as LF and CRLF do.
    Ends,
    /// It is part of the line's text; only LF (or CRLF) ends a line.
    Content,
}

/// One line: its text and the line end that followed it (`b"\r\n"`,
/// `b"\n"`, `b"\r"`, or empty for a last line without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line without its line end.
    pub text: &'a [u8],
    /// The line end as it was in the data.
    pub end: &'a [u8],
}

impl Line<'_> {
    /// The number of octets the line took in the data.
    pub fn len(&self) -> usize {
        self.text.len() + self.end.len()
    }

    /// Whether the line is empty text with no line end (never yielded).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lines of `data`; a last line without a line end is a line, an empty
/// input has none.
pub fn lines(data: &[u8], lone_cr: LoneCr) -> Lines<'_> {
    Lines {
        rest: data,
        lone_cr,
    }
}

/// Iterator returned by [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    lone_cr: LoneCr,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let stop = match self.lone_cr {
            LoneCr::Ends => rest.iter().position(|&b| b == b'\n' || b == b'\r'),
            LoneCr::Content => rest.iter().position(|&b| b == b'\n'),
        };
        let (text, end) = match stop {
            None => (rest, &rest[rest.len()..]),
            Some(i) if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') => {
                (&rest[..i], &rest[i..i + 2])
            }
            Some(i) if rest[i] == b'\r' => (&rest[..i], &rest[i..i + 1]),
            // LF: a CR right before it belongs to the line end.
            Some(i) if i > 0 && rest[i - 1] == b'\r' => (&rest[..i - 1], &rest[i - 1..i + 1]),
            Some(i) => (&rest[..i], &rest[i..i + 1]),
        };
        self.rest = &rest[text.len() + end.len()..];
        Some(Line { text, end })
    }
}

/// `data` with every line end made CRLF; a last line without a line end
/// stays without one. Borrowed when nothing changes.
pub fn to_crlf(data: &[u8], lone_cr: LoneCr) -> Cow<'_, [u8]> {
    if lines(data, lone_cr).all(|l| l.end.is_empty() || l.end == b"\r\n") {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 2);
    for l in lines(data, lone_cr) {
        out.extend_from_slice(l.text);
        if !l.end.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    Cow::Owned(out)
}

/// Whether the header line `line` starts a field whose name begins with
/// `prefix` (ASCII, any case), after the leading whitespace a lenient
/// reader trims (Unicode White_Space, as `str::trim` does: a vertical tab,
/// a form feed, U+2028, …). Used wherever forged `X-Popcrypt-*` fields
/// are refused, so that every place reads a name the same way.
pub fn field_name_starts_with(line: &[u8], prefix: &str) -> bool {
    let text = String::from_utf8_lossy(line);
    text.trim_start()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(data: &[u8], m: LoneCr) -> Vec<(&[u8], &[u8])> {
        lines(data, m).map(|l| (l.text, l.end)).collect()
    }

    #[test]
    fn both_readings_of_a_lone_cr() {
        let data = b"a\r\nb\nc\rd\r\r\ne";
        assert_eq!(
            texts(data, LoneCr::Ends),
            vec![
                (&b"a"[..], &b"\r\n"[..]),
                (b"b", b"\n"),
                (b"c", b"\r"),
                (b"d", b"\r"),
                (b"", b"\r\n"),
                (b"e", b""),
            ]
        );
        assert_eq!(
            texts(data, LoneCr::Content),
            vec![
                (&b"a"[..], &b"\r\n"[..]),
                (b"b", b"\n"),
                (b"c\rd\r", b"\r\n"),
                (b"e", b""),
            ]
        );
        assert!(texts(b"", LoneCr::Ends).is_empty());
    }

    #[test]
    fn lines_cover_the_data_exactly() {
        for data in [&b"x\r"[..], b"\n\n", b"\r\r\n\r", b"abc", b"\r\n"] {
            for m in [LoneCr::Ends, LoneCr::Content] {
                let joined: Vec<u8> = lines(data, m)
                    .flat_map(|l| [l.text, l.end].concat())
                    .collect();
                assert_eq!(joined, data);
            }
        }
    }

    #[test]
    fn field_names_behind_whitespace() {
        for line in [
            &b"X-Popcrypt-Signature: x"[..],
            b"\x0bx-popcrypt-signature: x",
            b"\x0c X-POPCRYPT-x",
            "\u{2028}x-popcrypt-a: b".as_bytes(),
        ] {
            assert!(field_name_starts_with(line, "x-popcrypt-"), "{line:?}");
        }
        for line in [
            &b"X-Popcrypt"[..],
            b"Subject: x-popcrypt-",
            b"\xffx-popcrypt-",
        ] {
            assert!(!field_name_starts_with(line, "x-popcrypt-"), "{line:?}");
        }
    }

    #[test]
    fn crlf_normalisation() {
        assert_eq!(
            &*to_crlf(b"a\nb\rc\r\nd", LoneCr::Ends),
            b"a\r\nb\r\nc\r\nd"
        );
        assert_eq!(
            &*to_crlf(b"a\nb\rc\r\nd\r", LoneCr::Content),
            b"a\r\nb\rc\r\nd\r"
        );
        assert!(matches!(to_crlf(b"a\r\nb", LoneCr::Ends), Cow::Borrowed(_)));
        assert!(matches!(
            to_crlf(b"a\rb", LoneCr::Content),
            Cow::Borrowed(_)
        ));
    }
}
