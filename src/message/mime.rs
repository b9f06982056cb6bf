//! Slicing raw bytes by MIME structure. mail-parser finds the structure and
//! the offsets; everything that is not changed is copied byte for byte.

use crate::text::{self, LoneCr};

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
    for line in text::lines(block, LoneCr::Content) {
        let continuation = pos > 0 && matches!(block[pos], b' ' | b'\t');
        if !continuation && pos > start {
            out.push(field(&block[start..pos]));
            start = pos;
        }
        pos += line.len();
    }
    if pos > start {
        out.push(field(&block[start..pos]));
    }
    out
}

/// One field's name, read from the field unfolded, as a client reads it:
/// `X-Popcrypt-Signature` on a line of its own followed by the
/// continuation ` : ...` is a field of that name.
fn field(raw: &[u8]) -> Field<'_> {
    let unfolded: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let name = unfolded
        .iter()
        .position(|&b| b == b':')
        .map(|i| {
            String::from_utf8_lossy(&unfolded[..i])
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    Field { name, raw }
}

/// Offset just past the header block's last line (before the blank line).
pub fn header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    for line in text::lines(raw, LoneCr::Content) {
        if line.text.is_empty() {
            return pos;
        }
        pos += line.len();
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

/// The message with its header block's line ends made CRLF. A header line
/// ends at CRLF, LF or a lone CR (many parsers end a line at a lone CR, and
/// a field hidden behind one must not survive as part of another field), and
/// the header block ends at the first empty line by that reading. The body
/// is not changed.
pub fn normalize_header_block(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut pos = 0;
    let mut clean = true;
    // The blank line: where it starts and where the body starts.
    let mut blank = None;
    for line in text::lines(raw, LoneCr::Ends) {
        clean &= line.end == b"\r\n";
        if line.text.is_empty() {
            blank = Some((pos, pos + line.len()));
            break;
        }
        pos += line.len();
    }
    if clean {
        return std::borrow::Cow::Borrowed(raw);
    }
    let end = blank.map_or(raw.len(), |(start, _)| start);
    let mut out = Vec::with_capacity(raw.len() + 64);
    for line in text::lines(&raw[..end], LoneCr::Ends) {
        out.extend_from_slice(line.text);
        out.extend_from_slice(b"\r\n");
    }
    if let Some((_, next)) = blank {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&raw[next..]);
    }
    std::borrow::Cow::Owned(out)
}

/// Who a message is from, as far as a signature may vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// Exactly one mailbox (lower-cased), and nothing else in From or
    /// Sender that a client could show as the sender.
    One(String),
    /// Anything else: `shown` is what the report names as From, `why`
    /// says what is unclear.
    Unclear {
        shown: String,
        why: String,
        /// The one From address, when there is exactly one.
        address: Option<String>,
    },
}

/// The sender named by a header block (CRLF lines): exactly one From field
/// with exactly one mailbox; no other address in its display name, comments
/// or quoted parts (decoded encoded words included); no control
/// characters; no encoded word in the address; no Sender naming someone
/// else.
pub fn sender(head: &[u8]) -> Sender {
    let mut entity = head.to_vec();
    entity.extend_from_slice(b"\r\n");
    let parsed = parse(&entity);
    let addrs = parsed.as_ref().map(from_addresses).unwrap_or_default();
    let group = parsed.as_ref().is_some_and(|m| {
        m.header_values(mail_parser::HeaderName::From)
            .any(|v| matches!(v.as_address(), Some(mail_parser::Address::Group(_))))
    });
    let from_fields: Vec<Field<'_>> = fields(head)
        .into_iter()
        .filter(|f| f.name == "from")
        .collect();
    if addrs.len() != 1 || from_fields.len() != 1 {
        return Sender::Unclear {
            shown: if addrs.is_empty() {
                "none".into()
            } else {
                addrs.join(",")
            },
            why: "exactly one From address required".into(),
            address: None,
        };
    }
    let addr = addrs[0].clone();
    if group {
        return Sender::Unclear {
            shown: addr.clone(),
            why: "group syntax in From".into(),
            address: Some(addr),
        };
    }
    let unclear = |why: &str| Sender::Unclear {
        shown: addr.clone(),
        why: why.into(),
        address: Some(addr.clone()),
    };
    let value = field_value(from_fields[0].raw);
    if value
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t' && b != b'\r' && b != b'\n') || b == 0x7f)
    {
        return unclear("a control character in From");
    }
    if addr.contains("=?") || addr.contains('"') || addr.matches('@').count() != 1 {
        return unclear("the From address is not a plain addr-spec");
    }
    let text = decode_encoded_words(&value);
    if text.contains("\0") || text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return unclear("a control character in From");
    }
    if !only_this_address(&text, &addr) {
        return unclear("the display name or a comment names another address");
    }
    for f in fields(head).into_iter().filter(|f| f.name == "sender") {
        let value = decode_encoded_words(&field_value(f.raw));
        if !only_this_address(&value, &addr) || !value.contains('@') {
            return unclear("a Sender field names another address");
        }
    }
    Sender::One(addr)
}

/// A field's value: the bytes after the colon, unfolded.
fn field_value(raw: &[u8]) -> Vec<u8> {
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .map_or(raw.len(), |i| i + 1);
    raw[colon..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// Whether every address-like word in `text` is `addr` (ASCII case
/// ignored). Look-alike at signs count as at signs.
fn only_this_address(text: &str, addr: &str) -> bool {
    let text = text.replace(['\u{FF20}', '\u{FE6B}'], "@");
    text.split(|c: char| c.is_whitespace() || "<>()[]\",;:\\".contains(c))
        .filter(|w| w.contains('@'))
        .all(|w| w.eq_ignore_ascii_case(addr))
}

/// RFC 2047 encoded words decoded in place (charset read as UTF-8, lossy:
/// enough to see addresses; unknown words are kept as they are).
fn decode_encoded_words(value: &[u8]) -> String {
    let s = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(s.len());
    let mut rest: &str = &s;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        let decoded = (|| {
            let (_charset, after) = word.split_once('?')?;
            let (enc, after) = after.split_once('?')?;
            let (text, _) = after.split_once("?=")?;
            let bytes = match enc {
                "b" | "B" => mail_parser::decoders::base64::base64_decode(text.as_bytes())?,
                "q" | "Q" => {
                    let t = text.replace('_', " ");
                    mail_parser::decoders::quoted_printable::quoted_printable_decode(t.as_bytes())?
                }
                _ => return None,
            };
            let consumed = 2 + _charset.len() + 1 + enc.len() + 1 + text.len() + 2;
            Some((
                String::from_utf8_lossy(&bytes).into_owned(),
                start + consumed,
            ))
        })();
        match decoded {
            Some((text, consumed)) => {
                out.push_str(&text);
                rest = &rest[consumed.min(rest.len())..];
            }
            None => {
                out.push_str("=?");
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out
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
    fn a_field_name_is_read_from_the_unfolded_field() {
        let block = b"X-Popcrypt-Signature\r\n : smime; good\r\nSubject: x\r\n";
        let f = fields(block);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "x-popcrypt-signature");
        assert_eq!(f[1].name, "subject");
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
