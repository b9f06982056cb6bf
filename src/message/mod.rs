//! One message in, one message out; no sockets.
//!
//! [`Transformer`] is the message policy the relay engine consults: it
//! classifies a message from its header block (pass through while streaming,
//! or hold whole and transform) and performs the transform.

pub mod report;

use crate::pop3::session::{Disposition, MessageHook};
pub use report::Report;

/// Message policy and key material for one proxy.
#[derive(Debug, Default)]
pub struct Transformer {}

impl Transformer {
    /// A transformer that only annotates (no keys).
    pub fn new() -> Transformer {
        Transformer {}
    }

    /// Transform one whole message (CRLF lines, not dot-stuffed).
    ///
    /// Never fails: a message that cannot be processed comes back as the
    /// original bytes with a report that says why.
    pub fn transform(&self, raw: &[u8]) -> (Vec<u8>, Report) {
        let report = Report::default();
        (annotate_message(raw, &report), report)
    }
}

/// Prefix the status headers to a whole message and remove forged ones.
pub fn annotate_message(raw: &[u8], report: &Report) -> Vec<u8> {
    let split = header_end(raw);
    let mut out = report::annotate_header_block(&raw[..split], report);
    out.extend_from_slice(&raw[split..]);
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

impl MessageHook for Transformer {
    fn classify(&self, _header_block: &[u8]) -> Disposition {
        Disposition::Stream
    }

    fn stream_headers(&self, header_block: &[u8], note: Option<&str>) -> Vec<u8> {
        let mut report = Report::default();
        if let Some(note) = note {
            report.encryption = format!("none; not-processed ({note})");
        }
        report::annotate_header_block(header_block, &report)
    }

    fn size_overhead(&self) -> u64 {
        Report::default().header_lines().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_transform_adds_status_headers_only() {
        let t = Transformer::new();
        let raw = b"Subject: x\r\nX-Popcrypt-Signature: forged\r\n\r\nbody\r\n.dot\r\n";
        let (out, report) = t.transform(raw);
        assert_eq!(report, Report::default());
        assert_eq!(
            out,
            b"X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\nSubject: x\r\n\r\nbody\r\n.dot\r\n"
        );
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 6);
        assert_eq!(header_end(b"A: b\r\n"), 6);
    }
}
