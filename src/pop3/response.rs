//! Server responses: status lines, SASL continuations and the multi-line
//! framing (dot-stuffing, RFC 1939 §3).

use crate::text::{self, LoneCr};

/// What kind of first line the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
    /// `+ ` SASL continuation (RFC 5034).
    Continue,
}

/// Classify a status line (terminator removed). `None`: not a status line.
pub fn status(line: &[u8]) -> Option<Status> {
    if line.starts_with(b"+OK") && (line.len() == 3 || line[3] == b' ') {
        Some(Status::Ok)
    } else if line.starts_with(b"-ERR") && (line.len() == 4 || line[4] == b' ') {
        Some(Status::Err)
    } else if line == b"+" || line.starts_with(b"+ ") {
        Some(Status::Continue)
    } else {
        None
    }
}

/// The text after the status keyword, if any.
pub fn status_text(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => &line[i + 1..],
        None => b"",
    }
}

/// One line of a multi-line response, as received.
#[derive(Debug, PartialEq, Eq)]
pub enum DataLine<'a> {
    /// Content with the stuffed dot removed.
    Content(&'a [u8]),
    /// The terminating ".".
    End,
}

/// Undo dot-stuffing for one received line of a multi-line response.
pub fn unstuff(line: &[u8]) -> DataLine<'_> {
    if line == b"." {
        DataLine::End
    } else if let Some(rest) = line.strip_prefix(b".") {
        DataLine::Content(rest)
    } else {
        DataLine::Content(line)
    }
}

/// Append one content line, dot-stuffed and CRLF-terminated.
pub fn stuff_line(out: &mut Vec<u8>, content: &[u8]) {
    if content.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
}

/// The terminator of a multi-line response.
pub const TERMINATOR: &[u8] = b".\r\n";

/// The lines of a message: LF or CRLF ends a line, a lone CR stays content
/// ([`LoneCr::Content`]), and a final line without a line break counts as
/// a line, losing a trailing CR (a CRLF cut before its LF).
fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    text::lines(message, LoneCr::Content).map(|l| {
        if l.end.is_empty() {
            l.text.strip_suffix(b"\r").unwrap_or(l.text)
        } else {
            l.text
        }
    })
}

/// Append a message's lines dot-stuffed and CRLF-terminated, without the
/// terminator.
pub fn stuff_message(out: &mut Vec<u8>, message: &[u8]) {
    out.reserve(message.len() + message.len() / 32 + 16);
    for line in lines(message) {
        stuff_line(out, line);
    }
}

/// The message as the relay hands it to the transform: every line
/// CRLF-terminated, not dot-stuffed.
pub fn crlf_lines(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    for line in lines(message) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The octets [`stuff_message`] delivers for `message`, before dot-stuffing
/// (every line CRLF-terminated): what a client counts as the message size.
pub fn wire_len(message: &[u8]) -> usize {
    lines(message).map(|l| l.len() + 2).sum()
}

/// Write a status line with CRLF.
pub fn status_line(ok: bool, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 7);
    v.extend_from_slice(if ok { b"+OK" } else { b"-ERR" });
    if !text.is_empty() {
        v.push(b' ');
        v.extend_from_slice(text.as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status(b"+OK"), Some(Status::Ok));
        assert_eq!(status(b"+OK 2 320"), Some(Status::Ok));
        assert_eq!(status(b"-ERR [IN-USE] locked"), Some(Status::Err));
        assert_eq!(status(b"+ "), Some(Status::Continue));
        assert_eq!(status(b"+ VXNlcm5hbWU6"), Some(Status::Continue));
        assert_eq!(status(b"+"), Some(Status::Continue));
        assert_eq!(status(b"+OKAY"), None);
        assert_eq!(status(b"garbage"), None);
        assert_eq!(status(b""), None);
        assert_eq!(status_text(b"-ERR [AUTH] bad"), b"[AUTH] bad");
    }

    #[test]
    fn dot_stuffing_round_trip() {
        assert_eq!(unstuff(b"."), DataLine::End);
        assert_eq!(unstuff(b".."), DataLine::Content(b"."));
        assert_eq!(unstuff(b"..foo"), DataLine::Content(b".foo"));
        assert_eq!(unstuff(b"foo"), DataLine::Content(b"foo"));
        let mut out = Vec::new();
        stuff_message(&mut out, b"a\r\n.\r\n..x\nlast");
        assert_eq!(out, b"a\r\n..\r\n...x\r\nlast\r\n");
        let mut out = Vec::new();
        stuff_message(&mut out, b"");
        assert!(out.is_empty());
        assert_eq!(wire_len(b"a\r\nb\nlast"), 12);
        assert_eq!(wire_len(b""), 0);
        assert_eq!(crlf_lines(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\rd\r\n");
        // A last line without LF loses a trailing CR; other CRs stay.
        assert_eq!(crlf_lines(b"a\r\r\nb\r"), b"a\r\r\nb\r\n");
        assert_eq!(wire_len(b"a\r\r\nb\r"), 7);
        assert_eq!(crlf_lines(b"\r"), b"\r\n");
        assert_eq!(status_line(false, "x"), b"-ERR x\r\n");
    }
}
