//! Re-encoding defused parts: CRLF lines, base64, quoted-printable.

use crate::text::{self, LoneCr};

/// Every line end CRLF.
pub(super) fn crlf(b: &[u8]) -> Vec<u8> {
    text::to_crlf(b, LoneCr::Ends).into_owned()
}

/// Base64 in 76-character CRLF lines.
pub(super) fn base64_lines(b: &[u8]) -> Vec<u8> {
    let enc = openssl::base64::encode_block(b);
    let mut out = Vec::with_capacity(enc.len() + enc.len() / 38 + 2);
    for chunk in enc.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045 §6.7) of CRLF text: line ends kept as hard
/// breaks, soft breaks before 76 characters.
pub(super) fn qp_encode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if last && line.is_empty() {
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (i, &c) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal =
                (c == b' ' || c == b'\t') && !at_end || ((33..=126).contains(&c) && c != b'=');
            let piece: Vec<u8> = if literal {
                vec![c]
            } else {
                format!("={c:02X}").into_bytes()
            };
            if col + piece.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            out.extend_from_slice(&piece);
            col += piece.len();
        }
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}
