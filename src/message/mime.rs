//! Slicing raw bytes by MIME structure. mail-parser finds the structure and
//! the offsets; everything that is not changed is copied byte for byte.

use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// One header field: lower-cased name and its raw bytes (continuation
/// lines and line end included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: String,
    pub raw: &'a [u8],
}

/// Split a header block into fields. Lines before the first field name
/// (malformed) are kept as a nameless field so nothing is lost.
pub fn fields(block: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    let mut start = 0;
    let mut name = String::new();
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i + 1);
        let line = &block[pos..end];
        let continuation = pos > 0 && (line[0] == b' ' || line[0] == b'\t');
        if !continuation {
            if pos > start {
                out.push(Field {
                    name: std::mem::take(&mut name),
                    raw: &block[start..pos],
                });
            }
            start = pos;
            name = line
                .iter()
                .position(|&b| b == b':')
                .map(|i| {
                    String::from_utf8_lossy(&line[..i])
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
        }
        pos = end;
    }
    if pos > start {
        out.push(Field {
            name,
            raw: &block[start..pos],
        });
    }
    out
}

/// Offset just past the header block's last line (before the blank line).
pub fn header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return pos;
        }
        pos = end;
    }
    raw.len()
}

/// Whether an entity starts with a header field (`name:` with RFC 5322
/// field-name characters). A decrypted entity that does not is all body.
pub fn starts_with_header(raw: &[u8]) -> bool {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..line_end];
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(i) => line[..i].iter().all(|&b| (33..=126).contains(&b)),
    }
}

/// Header block end and body start of a MIME entity, treating an entity
/// that does not start with a header field as having no headers.
pub fn entity_split(raw: &[u8]) -> (usize, usize) {
    if !starts_with_header(raw) {
        let skip = if raw.starts_with(b"\r\n") {
            2
        } else if raw.starts_with(b"\n") {
            1
        } else {
            0
        };
        return (0, skip);
    }
    (header_end(raw), body_start(raw))
}

/// Offset of the body (after the blank line), or the end.
pub fn body_start(raw: &[u8]) -> usize {
    let h = header_end(raw);
    if raw[h..].starts_with(b"\r\n") {
        h + 2
    } else if raw[h..].starts_with(b"\n") {
        h + 1
    } else {
        h
    }
}

/// Parse a message (or a MIME entity).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// Parse an entity for its structure: the body is read only when the root
/// is a multipart or a CMS/binary part. A large text body is not decoded
/// (mail-parser converts text to UTF-8, which costs time and proves
/// nothing here): its part offsets then cover the header block only.
/// `None` for an entity without headers.
pub fn parse_structure(raw: &[u8]) -> Option<Message<'_>> {
    let (head_end, body) = entity_split(raw);
    if head_end == 0 {
        return None;
    }
    let head = parse(&raw[..body])?;
    let t = mime_type(&head.parts[0]);
    if t.starts_with("multipart/") || t.starts_with("application/") {
        parse(raw)
    } else {
        Some(head)
    }
}

/// "type/subtype" lower-cased; text/plain when absent.
pub fn mime_type(p: &MessagePart<'_>) -> String {
    match p.content_type() {
        Some(ct) => format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase(),
        None => "text/plain".into(),
    }
}

/// A Content-Type parameter (name lower-case).
pub fn param<'a>(p: &'a MessagePart<'_>, name: &str) -> Option<&'a str> {
    p.content_type().and_then(|ct| ct.attribute(name))
}

/// The media type named in a header block (text/plain when absent).
pub fn block_mime_type(header_block: &[u8]) -> String {
    let mut entity = header_block.to_vec();
    entity.extend_from_slice(b"\r\n");
    match parse(&entity) {
        Some(m) => mime_type(&m.parts[0]),
        None => "text/plain".into(),
    }
}

/// Children of a multipart part.
pub fn children<'a>(msg: &'a Message<'a>, p: &MessagePart<'_>) -> Vec<&'a MessagePart<'a>> {
    match &p.body {
        PartType::Multipart(ids) => ids
            .iter()
            .filter_map(|&i| msg.parts.get(i as usize))
            .collect(),
        _ => Vec::new(),
    }
}

/// Bytes of a part exactly as on the wire, headers included, without the
/// line end that belongs to the next boundary (the RFC 3156 signed span).
pub fn part_span<'a>(raw: &'a [u8], p: &MessagePart<'_>) -> Option<&'a [u8]> {
    raw.get(p.offset_header as usize..p.offset_end as usize)
}

/// A body with only its Content-Transfer-Encoding removed (no charset
/// conversion: signed and encrypted text keeps its bytes).
pub fn transfer_decode(body: &[u8], encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        _ => Some(body.to_vec()),
    }
}

/// All addresses in every From field (lower-cased).
pub fn from_addresses(msg: &Message<'_>) -> Vec<String> {
    msg.header_values(mail_parser::HeaderName::From)
        .filter_map(|v| v.as_address())
        .flat_map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(|s| s.trim().to_ascii_lowercase()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a byte string holds only whitespace.
pub fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|c| c.is_ascii_whitespace())
}

/// Find a line starting with `begin` and the end of the line starting with
/// `end` after it: the armored block's span. A lone CR ends a line too
/// (some clients show it as a line break).
pub fn armor_span(text: &[u8], begin: &[u8], end: &[u8]) -> Option<(usize, usize)> {
    let start = find_line_start(text, begin, 0)?;
    let end_line = find_line_start(text, end, start + begin.len())?;
    let stop = match text[end_line..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
    {
        None => text.len(),
        Some(i) if text[end_line + i..].starts_with(b"\r\n") => end_line + i + 2,
        Some(i) => end_line + i + 1,
    };
    Some((start, stop))
}

fn find_line_start(text: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + needle.len() <= text.len() {
        let at_line_start = i == 0 || text[i - 1] == b'\n' || text[i - 1] == b'\r';
        if at_line_start && text[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_every_byte() {
        let block = b"From: a\r\nSubject: x\r\n y\r\nTo: b\r\n";
        let f = fields(block);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].name, "subject");
        assert_eq!(f[1].raw, b"Subject: x\r\n y\r\n");
        assert_eq!(
            f.iter().flat_map(|f| f.raw.to_vec()).collect::<Vec<_>>(),
            block
        );
    }

    #[test]
    fn entities_without_headers() {
        assert_eq!(entity_split(b"just text\r\nmore\r\n\r\nend\r\n"), (0, 0));
        assert_eq!(entity_split(b"\r\nbody\r\n"), (0, 2));
        assert_eq!(
            entity_split(b"Content-Type: text/plain\r\n\r\nbody\r\n"),
            (26, 28)
        );
        assert_eq!(entity_split(b"note: this is prose\r\n"), (21, 21));
        assert!(!starts_with_header(b"two words: x"));
    }

    #[test]
    fn armor_spans() {
        let t = b"hi\n-----BEGIN PGP MESSAGE-----\nabc\n-----END PGP MESSAGE-----\nbye\n";
        let (s, e) = armor_span(
            t,
            b"-----BEGIN PGP MESSAGE-----",
            b"-----END PGP MESSAGE-----",
        )
        .unwrap();
        assert_eq!(&t[..s], b"hi\n");
        assert_eq!(&t[e..], b"bye\n");
        assert!(armor_span(
            b"x -----BEGIN PGP MESSAGE-----",
            b"-----BEGIN PGP MESSAGE-----",
            b"-----END"
        )
        .is_none());
        assert_eq!(
            block_mime_type(b"Content-Type: Multipart/Signed; protocol=x\r\n"),
            "multipart/signed"
        );
        assert_eq!(block_mime_type(b"Subject: x\r\n"), "text/plain");
    }
}
