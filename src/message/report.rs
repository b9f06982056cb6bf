//! The two status headers every RETR/TOP answer starts with, and removal of
//! forged copies that arrived in the mail.

/// Name of the encryption status header.
pub const ENCRYPTION: &str = "X-Popcrypt-Encryption";
/// Name of the signature status header.
pub const SIGNATURE: &str = "X-Popcrypt-Signature";

use super::verdict::{Encryption, Signature};

/// What popcrypt did with one message: typed; `Display` of each field is
/// the header value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// `X-Popcrypt-Encryption`.
    pub encryption: Encryption,
    /// `X-Popcrypt-Signature`.
    pub signature: Signature,
}

impl Report {
    /// The first two tokens of each header value, without reasons or
    /// parameters: what the logs record (never addresses or message text).
    pub fn summary(&self) -> (String, String) {
        (self.encryption.summary(), self.signature.summary())
    }

    /// The two header lines, CRLF-terminated. Values are kept to one line.
    pub fn header_lines(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        let values = [self.encryption.to_string(), self.signature.to_string()];
        for (name, value) in [(ENCRYPTION, &values[0]), (SIGNATURE, &values[1])] {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend(
                value
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// Whether a header line starts a field named `X-Popcrypt-*`.
fn is_status_field(line: &[u8]) -> bool {
    crate::text::field_name_starts_with(line, "x-popcrypt-")
}

/// Remove every `X-Popcrypt-*` field (with its folded continuation lines)
/// from a header block. Other bytes are kept exactly.
pub fn strip_status_headers(header_block: &[u8]) -> Vec<u8> {
    // Line ends first made CRLF (a lone CR ends a line, as for clients), so
    // a field hidden behind a lone CR is a field here too.
    let block = super::mime::normalize_header_block(header_block);
    let mut out = Vec::with_capacity(block.len());
    for (i, f) in super::mime::fields(&block).into_iter().enumerate() {
        // A continuation line before any field would fold onto the status
        // headers popcrypt puts first: dropped with the forged fields.
        let leading_continuation = i == 0 && matches!(f.raw.first(), Some(b' ' | b'\t'));
        // The name as the field reads unfolded and trimmed, as lenient
        // readers take it (`\x0bX-Popcrypt-Signature: …` is one), or, for a
        // field without a colon (no name), its raw line.
        let status =
            f.name.starts_with("x-popcrypt-") || (f.name.is_empty() && is_status_field(f.raw));
        if leading_continuation || status {
            continue;
        }
        out.extend_from_slice(f.raw);
    }
    out
}

/// Status headers first, then the header block without forged copies.
pub fn annotate_header_block(header_block: &[u8], report: &Report) -> Vec<u8> {
    let mut out = report.header_lines();
    out.extend_from_slice(&strip_status_headers(header_block));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_headers_are_removed_with_continuations() {
        let block = b"From: a@b\r\nX-Popcrypt-Signature: openpgp; good;\r\n signer=evil\r\nx-POPCRYPT-encryption: none\r\nSubject: hi\r\n\tthere\r\n";
        assert_eq!(
            strip_status_headers(block),
            b"From: a@b\r\nSubject: hi\r\n\tthere\r\n"
        );
        let out = annotate_header_block(block, &Report::default());
        assert_eq!(
            out,
            b"X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\nFrom: a@b\r\nSubject: hi\r\n\tthere\r\n"
        );
    }

    #[test]
    fn a_field_name_behind_whitespace_is_still_a_status_field() {
        // Found by tests/proptest_codec.rs: a vertical tab (and other
        // whitespace a lenient reader trims) before the name.
        for lead in ["\u{b}", "\u{c}", "\u{2028}"] {
            let block =
                format!("{lead}x-popcrypt-signature: openpgp; good; signer=alice\r\nA: b\r\n");
            assert_eq!(
                strip_status_headers(block.as_bytes()),
                b"A: b\r\n",
                "{lead:?}"
            );
        }
        // A colon-less line with the prefix is dropped with its folds.
        assert_eq!(
            strip_status_headers(b"X-Popcrypt-Signature\r\n : good\r\nA: b\r\n"),
            b"A: b\r\n"
        );
    }

    #[test]
    fn a_leading_continuation_cannot_fold_onto_the_status_headers() {
        let block = b" ; good; signer=alice\r\nFrom: a@b\r\n";
        assert_eq!(strip_status_headers(block), b"From: a@b\r\n");
        let out = annotate_header_block(block, &Report::default());
        assert!(out.ends_with(b"X-Popcrypt-Signature: none\r\nFrom: a@b\r\n"));
    }

    #[test]
    fn summaries_leave_out_the_details() {
        use crate::message::verdict::{Failure, Mismatch, Scheme, Verdict};
        let r = Report {
            encryption: Encryption::Failed {
                scheme: Some(Scheme::Smime),
                reason: Failure::Library("not a recipient; x".into()),
            },
            signature: Signature::of(Verdict::FromMismatch {
                scheme: Scheme::OpenPgp,
                signer: "X".into(),
                mismatch: Mismatch::Addresses {
                    signer_emails: vec!["x@y".into()],
                    from: "a@b".into(),
                },
            }),
        };
        assert_eq!(
            r.summary(),
            (
                "smime; failed".to_string(),
                "openpgp; from-mismatch".to_string()
            )
        );
        assert_eq!(
            Report::default().summary(),
            ("none".to_string(), "none".to_string())
        );
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        use crate::message::verdict::{Failure, Scheme};
        let r = Report {
            encryption: Encryption::Failed {
                scheme: Some(Scheme::OpenPgp),
                reason: Failure::Library("a\r\nX-Evil: 1".into()),
            },
            ..Report::default()
        };
        let lines = r.header_lines();
        assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 2);
    }
}
