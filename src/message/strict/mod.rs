//! A strict RFC 2045/2046 reading of the structures popcrypt vouches for.
//!
//! mail-parser is lenient, and mail clients are lenient in other ways. Where
//! a verdict depends on which bytes are "the signed part" or "the
//! ciphertext", popcrypt must read the structure exactly as every
//! RFC-conforming client does, or refuse to judge it. This module does that
//! over the raw bytes:
//!
//! - a header block's lines end at CRLF or LF; a lone CR inside a header
//!   block (which many parsers treat as a line end) is ambiguous;
//! - exactly one Content-Type field and at most one
//!   Content-Transfer-Encoding field;
//! - parameters are literal: no parameter twice, no RFC 2047 encoded word in
//!   a boundary, no RFC 2231 continuation or charset form of a parameter we
//!   read, no comments;
//! - delimiters are whole lines (`--boundary` plus optional transport
//!   padding), and the string `--boundary` appears nowhere else in the body.
//!
//! Anything else is [`Ambiguous`], which callers turn into `bad (ambiguous
//! MIME structure: ...)` or `failed (...)`, never `good`, and never decrypt
//! into.

mod content_type;
pub use content_type::parse_content_type;

use crate::text::{self, LoneCr};

use std::fmt;

/// Why a structure cannot be read one way only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous(pub String);

impl fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ambiguous MIME structure: {}", self.0)
    }
}

fn amb<T>(why: impl Into<String>) -> Result<T, Ambiguous> {
    Err(Ambiguous(why.into()))
}

/// Most Content-Type/CTE-bearing header lines a message held for a
/// transform may have. Each level of MIME nesting needs one, so this bounds
/// the nesting depth every recursive parser downstream can see.
pub const MAX_ENTITY_HEADERS: usize = 512;

/// A parsed Content-Type value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lower-cased.
    pub mime_type: String,
    /// Parameters in order: lower-cased name, value (quotes removed).
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Content-Transfer-Encoding of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cte {
    /// 7bit, 8bit, binary, or none given.
    Identity,
    Base64,
    QuotedPrintable,
}

/// One MIME entity read strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity<'a> {
    /// Headers and body, exactly as on the wire.
    pub raw: &'a [u8],
    /// Offset just past the last header line.
    pub header_end: usize,
    /// Offset of the body.
    pub body_start: usize,
    /// The Content-Type, if the entity has one.
    pub content_type: Option<ContentType>,
    pub cte: Cte,
}

impl<'a> Entity<'a> {
    /// The header block (without the blank line).
    pub fn head(&self) -> &'a [u8] {
        &self.raw[..self.header_end]
    }

    /// The body, transfer encoding not removed.
    pub fn body(&self) -> &'a [u8] {
        &self.raw[self.body_start..]
    }

    /// `type/subtype`; text/plain when absent (RFC 2045 §5.2).
    pub fn mime_type(&self) -> &str {
        self.content_type
            .as_ref()
            .map_or("text/plain", |c| c.mime_type.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.content_type.as_ref().and_then(|c| c.param(name))
    }

    /// The body with its transfer encoding removed.
    pub fn decoded_body(&self) -> Option<Vec<u8>> {
        let body = self.body();
        match self.cte {
            Cte::Identity => Some(body.to_vec()),
            Cte::Base64 => mail_parser::decoders::base64::base64_decode(body),
            Cte::QuotedPrintable => {
                mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
            }
        }
    }
}

/// Header lines of an entity: `(start, content_end, next)` per line, up to
/// (not including) the blank line. Lines end at CRLF or LF. Returns the
/// lines, the header end and the body start.
type Lines = (Vec<(usize, usize)>, usize, usize);

fn header_lines(raw: &[u8]) -> Result<Lines, Ambiguous> {
    let mut lines = Vec::new();
    let mut pos = 0;
    for line in text::lines(raw, LoneCr::Content) {
        if line.text.is_empty() {
            return Ok((lines, pos, pos + line.len()));
        }
        if line.text.contains(&b'\r') {
            return amb("a header line holds a lone CR");
        }
        if line.text.contains(&0) {
            return amb("a header line holds a NUL byte");
        }
        lines.push((pos, pos + line.text.len()));
        pos += line.len();
    }
    Ok((lines, raw.len(), raw.len()))
}

/// The fields of a header block: lower-cased name and unfolded value.
/// `lenient`: lines that are not fields (seen at the top of real mail) are
/// skipped instead of refused.
fn header_fields(
    raw: &[u8],
    lines: &[(usize, usize)],
    lenient: bool,
) -> Result<Vec<(String, String)>, Ambiguous> {
    // Unfold first: a field is a line and the continuation lines after it,
    // and its name is read from the unfolded text, as clients read it.
    let mut unfolded: Vec<Vec<u8>> = Vec::new();
    for &(s, e) in lines {
        let line = &raw[s..e];
        if line[0] == b' ' || line[0] == b'\t' {
            match unfolded.last_mut() {
                Some(f) => f.extend_from_slice(line),
                None => return amb("the header block starts with a continuation line"),
            }
        } else {
            unfolded.push(line.to_vec());
        }
    }
    let mut out = Vec::new();
    for line in unfolded {
        let colon = line.iter().position(|&b| b == b':');
        let name = &line[..colon.unwrap_or(0)];
        // RFC 822 allowed white space before the colon; clients still do.
        let name = name.trim_ascii_end();
        let valid = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
        let Some(colon) = colon.filter(|_| valid) else {
            if lenient {
                continue;
            }
            return amb("a header line is not a field");
        };
        out.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(&line[colon + 1..]).into_owned(),
        ));
    }
    Ok(out)
}

/// Read an entity's header block strictly.
pub fn entity(raw: &[u8]) -> Result<Entity<'_>, Ambiguous> {
    entity_with(raw, false)
}

/// Read a message's (or decrypted entity's) own header block: as strict
/// about lone CRs, Content-Type and Content-Transfer-Encoding as
/// [`entity`], but lines that are not fields are skipped.
pub fn top_entity(raw: &[u8]) -> Result<Entity<'_>, Ambiguous> {
    entity_with(raw, true)
}

/// The Content-Type (if any) and transfer encoding of a header block given
/// alone (fields with their line ends, no blank line), read as
/// [`top_entity`] reads a header block.
pub fn head(block: &[u8]) -> Result<(Option<ContentType>, Cte), Ambiguous> {
    let e = entity_with(block, true)?;
    if e.header_end < block.len() {
        return amb("an empty line inside a header block");
    }
    Ok((e.content_type, e.cte))
}

fn entity_with(raw: &[u8], lenient: bool) -> Result<Entity<'_>, Ambiguous> {
    let (lines, header_end, body_start) = header_lines(raw)?;
    let fields = header_fields(raw, &lines, lenient)?;
    let mut ctype = None;
    let mut cte = None;
    for (name, value) in &fields {
        match name.as_str() {
            "content-type" => {
                if ctype.is_some() {
                    return amb("two Content-Type fields");
                }
                ctype = Some(parse_content_type(value)?);
            }
            "content-transfer-encoding" => {
                if cte.is_some() {
                    return amb("two Content-Transfer-Encoding fields");
                }
                cte = Some(parse_cte(value)?);
            }
            _ => {}
        }
    }
    Ok(Entity {
        raw,
        header_end,
        body_start,
        content_type: ctype,
        cte: cte.unwrap_or(Cte::Identity),
    })
}

fn parse_cte(value: &str) -> Result<Cte, Ambiguous> {
    match value.trim().to_ascii_lowercase().as_str() {
        "7bit" | "8bit" | "binary" => Ok(Cte::Identity),
        "base64" => Ok(Cte::Base64),
        "quoted-printable" => Ok(Cte::QuotedPrintable),
        other => amb(format!(
            "unknown Content-Transfer-Encoding {:?}",
            other.chars().take(40).collect::<String>()
        )),
    }
}

/// The boundary of a multipart entity, literal and valid (RFC 2046 §5.1.1).
pub fn boundary(ct: &ContentType) -> Result<&str, Ambiguous> {
    if ct.params.iter().any(|(n, _)| n.starts_with("boundary*")) {
        return amb("the boundary is given in RFC 2231 form");
    }
    let Some(b) = ct.param("boundary") else {
        return amb("a multipart without boundary");
    };
    if b.contains("=?") {
        return amb("the boundary is an encoded word");
    }
    let ok_char = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    if b.is_empty() || b.len() > 70 || b.ends_with(' ') || !b.bytes().all(ok_char) {
        return amb("the boundary is not a valid RFC 2046 boundary");
    }
    Ok(b)
}

/// The body parts of a multipart entity, each the exact bytes between two
/// delimiter lines without the line end that belongs to the next delimiter
/// (the span RFC 1847/3156 signatures cover). Every occurrence of
/// `--boundary` in the body must be a whole delimiter line.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, Ambiguous> {
    Ok(part_ranges(body, boundary)?
        .into_iter()
        .map(|(s, e)| &body[s..e])
        .collect())
}

/// [`parts`] as byte ranges of `body`.
pub fn part_ranges(body: &[u8], boundary: &str) -> Result<Vec<(usize, usize)>, Ambiguous> {
    let dash: Vec<u8> = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    // Start of the current part's content, once the first delimiter is seen.
    let mut open: Option<usize> = None;
    let mut closed = false;
    let mut from = 0;
    while let Some(i) = find(&body[from..], &dash).map(|i| from + i) {
        if closed {
            return amb("the boundary appears after the close delimiter");
        }
        let at_line_start = i == 0 || body[i - 1] == b'\n';
        if !at_line_start {
            return amb("the boundary appears inside a line");
        }
        let mut j = i + dash.len();
        let close = body[j..].starts_with(b"--");
        if close {
            j += 2;
        }
        while j < body.len() && matches!(body[j], b' ' | b'\t') {
            j += 1;
        }
        let line_end = if body[j..].starts_with(b"\r\n") {
            j + 2
        } else if body[j..].starts_with(b"\n") {
            j + 1
        } else if j == body.len() && close {
            j
        } else {
            return amb("a delimiter line carries other text");
        };
        if let Some(start) = open {
            // The line end before the delimiter belongs to it.
            let mut end = i;
            if end > start && body[end - 1] == b'\n' {
                end -= 1;
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push((start, end.max(start)));
        }
        if close {
            if open.is_none() {
                return amb("a close delimiter before any part");
            }
            closed = true;
        }
        open = Some(line_end);
        from = line_end;
    }
    if !closed {
        return amb("the multipart has no close delimiter");
    }
    Ok(parts)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A multipart entity and its parts, read strictly.
pub fn multipart(raw: &[u8]) -> Result<(Entity<'_>, Vec<Entity<'_>>), Ambiguous> {
    let e = entity(raw)?;
    let kids = split(&e)?;
    Ok((e, kids))
}

/// The parts of a multipart entity, each read strictly.
pub fn split<'a>(e: &Entity<'a>) -> Result<Vec<Entity<'a>>, Ambiguous> {
    let Some(ct) = &e.content_type else {
        return amb("a multipart without Content-Type");
    };
    if !ct.mime_type.starts_with("multipart/") {
        return amb("not a multipart");
    }
    if e.cte != Cte::Identity {
        return amb("a multipart with a transfer encoding");
    }
    let b = boundary(ct)?;
    parts(e.body(), b)?.into_iter().map(entity).collect()
}

/// How many header lines in `raw` name a Content-Type (at any depth, at a
/// line start, any case). Linear, and run before any recursive parser.
pub fn content_type_lines(raw: &[u8]) -> usize {
    const NAME: &[u8] = b"content-type";
    let mut n = 0;
    let mut at_start = true;
    for (i, &c) in raw.iter().enumerate() {
        if at_start
            && (c == b'c' || c == b'C')
            && raw.len() - i >= NAME.len()
            && raw[i..i + NAME.len()].eq_ignore_ascii_case(NAME)
        {
            n += 1;
        }
        at_start = c == b'\n' || c == b'\r';
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(boundary: &str, body: &str) -> String {
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pgp-signature\";\r\n \
             micalg=pgp-sha256; boundary=\"{boundary}\"\r\n\r\n{body}"
        )
    }

    #[test]
    fn a_well_formed_multipart_splits_into_exact_spans() {
        let raw = signed(
            "SIG",
            "preamble\r\n--SIG\r\nContent-Type: text/plain\r\n\r\nhello\r\n--SIG\r\n\
             Content-Type: application/pgp-signature\r\n\r\nsig\r\n--SIG--\r\nepilogue\r\n",
        );
        let (e, kids) = multipart(raw.as_bytes()).unwrap();
        assert_eq!(e.mime_type(), "multipart/signed");
        assert_eq!(e.param("protocol"), Some("application/pgp-signature"));
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].raw, b"Content-Type: text/plain\r\n\r\nhello");
        assert_eq!(kids[0].body(), b"hello");
        assert_eq!(kids[1].mime_type(), "application/pgp-signature");
        assert_eq!(kids[1].body(), b"sig");
    }

    #[test]
    fn lf_only_and_transport_padding_are_fine() {
        let raw = "Content-Type: multipart/mixed; boundary=b\n\n--b \n\nx\n--b--\t\n";
        let (_, kids) = multipart(raw.as_bytes()).unwrap();
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].raw, b"\nx");
        assert_eq!(kids[0].body(), b"x");
    }

    #[test]
    fn delimiters_must_be_whole_lines() {
        for body in [
            "--SIG\r\n\r\na\r\n--SIGContent-Type: text/plain\r\n\r\nb\r\n--SIG--\r\n",
            "--SIG\r\n\r\na\r\n--SIG--x\r\n",
            "--SIG\r\n\r\na --SIG\r\n--SIG--\r\n",
            "--SIG\r\n\r\na\r\n--SIG--\r\n--SIG\r\n",
            "--SIG\r\n\r\na\r\n--SIGX\r\n--SIG--\r\n",
            "--SIG\r\n\r\na\r\n",
            "x--SIG\r\n\r\na\r\n--SIG--\r\n",
            "--SIG\r\n\r\na\r--SIG\r\n\r\nb\r\n--SIG--\r\n",
        ] {
            let raw = signed("SIG", body);
            assert!(multipart(raw.as_bytes()).is_err(), "{body:?}");
        }
    }

    #[test]
    fn header_ambiguities() {
        for raw in [
            "Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx",
            "Content-Type: text/plain\rContent-Type: text/html\r\n\r\nx",
            "Subject: a\rFrom: eve@x\r\n\r\nx",
            "Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 7bit\r\n\r\nx",
            "Content-Type: text/plain; charset=a; charset=b\r\n\r\nx",
            "Content-Type: text/plain (comment)\r\n\r\nx",
            " folded\r\nContent-Type: text/plain\r\n\r\nx",
            "Content-Transfer-Encoding: x-uuencode\r\n\r\nx",
            "Content-Type: text/plain\r\nContent-Type\r\n : text/html\r\n\r\nx",
            "Content-Type: text/plain\r\nContent-Type \t: text/html\r\n\r\nx",
            "not a field\r\n\r\nx",
        ] {
            assert!(entity(raw.as_bytes()).is_err(), "{raw:?}");
        }
        let e = entity(b"Content-Type: Text/HTML;\r\n charset=\"utf-8\";\r\n\r\nx").unwrap();
        assert_eq!(e.mime_type(), "text/html");
        assert_eq!(e.param("charset"), Some("utf-8"));
        assert_eq!(
            entity(b"Subject: x\r\n\r\n").unwrap().mime_type(),
            "text/plain"
        );
    }

    #[test]
    fn boundaries_are_literal() {
        let ct = |v: &str| parse_content_type(v).unwrap();
        assert!(boundary(&ct("multipart/signed; boundary=\"=?utf-8?q?SIG?=\"")).is_err());
        assert!(boundary(&ct("multipart/signed; boundary*=utf-8''SIG")).is_err());
        assert!(parse_content_type("multipart/signed; boundary*0=S; boundary*1=IG").is_err());
        assert!(parse_content_type("multipart/signed; boundary=a; boundary=b").is_err());
        assert!(parse_content_type("multipart/signed; boundary=a; BOUNDARY=b").is_err());
        assert!(boundary(&ct("multipart/signed")).is_err());
        assert_eq!(
            boundary(&ct("multipart/signed; boundary=\"a b\"")),
            Ok("a b")
        );
    }

    #[test]
    fn every_chunking_of_a_delimiter_is_found_once() {
        // The splitter is total: any byte string gives Ok or Err, no panic.
        let base = signed("b", "--b\r\n\r\nx\r\n--b--\r\n");
        for cut in 0..base.len() {
            let _ = multipart(&base.as_bytes()[..cut]);
        }
    }

    #[test]
    fn content_type_lines_are_counted_at_line_starts() {
        assert_eq!(
            content_type_lines(
                b"Content-Type: a/b\r\nX: content-type\r\ncontent-TYPE: c\rContent-Type: d"
            ),
            3
        );
    }
}
