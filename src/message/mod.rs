//! One message in, one message out; no sockets.
//!
//! [`Transformer`] is the message policy the relay engine consults: it
//! classifies a message from its header block (pass through while streaming,
//! or hold whole and transform) and performs the transform: decrypt and
//! verify OpenPGP, then annotate with the two status headers.
//!
//! Security rules (see DESIGN.md): decrypt only when the encrypted entity is
//! the whole message; a signature counts only when it covers the whole
//! message; a good signature whose signer does not match From is
//! `from-mismatch`; anything that fails is delivered as the original bytes.

mod assemble;
pub mod defuse;
mod hook;
mod judge;
mod layers;
pub mod mime;
pub mod openpgp;
mod pgp_mime;
mod policy;
pub mod report;
pub mod smime;
mod smime_mime;
pub mod strict;
pub mod verdict;

use std::sync::Arc;

use crate::config::SignaturePolicy;
use crate::keys::Keyring;
pub use assemble::annotate_message;
pub use report::Report;
use verdict::{BadReason, Encryption, Failure, NotProcessed, Scheme, Signature, Verdict};

pub use mime::header_end;

/// Header fields that RFC 9788 protected headers may replace.
const PROTECTABLE: &[&str] = &[
    "subject",
    "from",
    "to",
    "cc",
    "reply-to",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "followup-to",
    "mail-followup-to",
    "keywords",
];

/// How many panics [`Transformer::transform`] caught in this process (each
/// cost its message nothing but is a bug): tests read it.
static CAUGHT_PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of panics inside the message transform caught so far in this
/// process. Zero unless a library or popcrypt itself has a bug.
pub fn caught_panics() -> u64 {
    CAUGHT_PANICS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Message policy and key material for one proxy.
#[derive(Debug, Default)]
pub struct Transformer {
    keys: Arc<Keyring>,
    /// Largest plaintext produced (decompression included).
    max_plaintext: usize,
    policy: SignaturePolicy,
}

/// What processing decided for one message.
pub(crate) struct Processed {
    report: Report,
    replacement: Option<Replacement>,
}

/// A new header part and body replacing the message's MIME content.
pub(crate) struct Replacement {
    /// Protected header fields that replace the outer fields of the same name.
    protected: Vec<u8>,
    /// The entity's own MIME header fields (Content-*).
    mime_headers: Vec<u8>,
    body: Vec<u8>,
}

impl Transformer {
    /// A transformer without keys: it only annotates.
    pub fn new() -> Transformer {
        Transformer::with_keys(Keyring::default(), crate::limits::MAX_MESSAGE_SIZE)
    }

    /// A transformer with key material.
    pub fn with_keys(keys: Keyring, max_plaintext: usize) -> Transformer {
        Transformer {
            keys: Arc::new(keys),
            max_plaintext,
            policy: SignaturePolicy::Annotate,
        }
    }

    /// What to do with messages whose signature is not good.
    pub fn with_signature_policy(mut self, policy: SignaturePolicy) -> Transformer {
        self.policy = policy;
        self
    }

    /// Transform one whole message (CRLF lines, not dot-stuffed).
    ///
    /// Never fails: a message that cannot be processed comes back as the
    /// original bytes with a report that says why.
    pub fn transform(&self, raw: &[u8]) -> (Vec<u8>, Report) {
        // Header lines end at CRLF, LF or a lone CR, for every step below
        // and for the client: one reading of the header block.
        let normalized = mime::normalize_header_block(raw);
        let raw = &normalized[..];
        // Each nesting level needs a Content-Type line: bound them before
        // any recursive parser sees the bytes.
        let processed = if strict::content_type_lines(raw) > strict::MAX_ENTITY_HEADERS {
            Self::none(Report {
                encryption: Encryption::NotProcessed(NotProcessed::TooManyContentTypes(
                    strict::MAX_ENTITY_HEADERS,
                )),
                ..Report::default()
            })
        } else {
            self.process_caught(raw)
        };
        let out = match &processed.replacement {
            None => annotate_message(raw, &processed.report),
            Some(r) => assemble::assemble(raw, &processed.report, r),
        };
        let out = policy::apply(self.policy, out, &processed.report);
        (out, processed.report)
    }

    fn process_caught(&self, raw: &[u8]) -> Processed {
        // The crypto libraries parse attacker-controlled bytes; a panic in
        // one of them (seen: sequoia 2.4.2 on some truncated ciphertexts)
        // must not cost the message.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(raw))) {
            Ok(p) => p,
            Err(_) => {
                CAUGHT_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    "internal error while processing a message; delivering it unchanged"
                );
                Self::none(Report {
                    encryption: Encryption::Failed {
                        scheme: None,
                        reason: Failure::Panicked,
                    },
                    ..Report::default()
                })
            }
        }
    }

    pub(crate) fn none(report: Report) -> Processed {
        Processed {
            report,
            replacement: None,
        }
    }

    fn process(&self, raw: &[u8]) -> Processed {
        let pgp = &self.keys.openpgp;
        let has_pgp = !pgp.certs.is_empty() || !pgp.secrets.is_empty();
        let has_smime = !self.keys.smime.is_empty();
        let head = &raw[..header_end(raw)];
        let top = match strict::top_entity(raw) {
            Ok(top) => top,
            Err(e) => return Self::none(ambiguous_report(head, &e)),
        };
        let Some(msg) = mime::parse_structure(raw) else {
            return Self::none(Report::default());
        };
        let root = &msg.parts[0];
        let ctype = top.mime_type().to_string();
        let protocol = top.param("protocol").unwrap_or("").to_ascii_lowercase();
        let from = mime::sender(head);
        let date = msg.date().map(|d| d.to_timestamp());
        if has_smime && smime_mime::is_pkcs7_mime(root) {
            return self.smime_mime(root, head, date);
        }
        if has_smime
            && ctype == "multipart/signed"
            && matches!(
                protocol.as_str(),
                "application/pkcs7-signature" | "application/x-pkcs7-signature"
            )
        {
            return self.smime_signed(&top, head, &from, date);
        }
        if !has_pgp {
            return Self::none(Report::default());
        }
        match (ctype.as_str(), protocol.as_str()) {
            ("multipart/encrypted", "application/pgp-encrypted") => {
                self.pgp_mime_encrypted(&top, head, date)
            }
            ("multipart/signed", "application/pgp-signature") => {
                let verdict = self.pgp_mime_signed(&top, &from, date);
                Self::none(Report {
                    signature: Signature::of(verdict),
                    ..Report::default()
                })
            }
            ("text/plain", _) => self.inline(raw, root, &from, date),
            _ => Self::none(Report::default()),
        }
    }

    pub(crate) fn cap_for(&self, input_len: usize) -> usize {
        // Decompression bombs: plaintext is bounded by the configured
        // maximum and by a generous multiple of the ciphertext.
        self.max_plaintext
            .min(input_len.saturating_mul(200).saturating_add(1 << 20))
    }
}

/// The report for a message whose own header block reads more than one way:
/// whatever any of its Content-Type fields claims, nothing is decrypted and
/// no signature is good.
fn ambiguous_report(head: &[u8], e: &strict::Ambiguous) -> Report {
    let types: Vec<String> = mime::fields(head)
        .into_iter()
        .filter(|f| f.name == "content-type")
        .map(|f| String::from_utf8_lossy(f.raw).to_ascii_lowercase())
        .collect();
    let any = |needle: &str| types.iter().any(|t| t.contains(needle));
    let scheme = if any("pkcs7") {
        Scheme::Smime
    } else {
        Scheme::OpenPgp
    };
    if any("multipart/encrypted") || any("pkcs7-mime") || any(".p7m") {
        Report {
            encryption: Encryption::Failed {
                scheme: Some(scheme),
                reason: Failure::Ambiguous(e.to_string()),
            },
            ..Report::default()
        }
    } else if any("multipart/signed") || any("pkcs7-signature") {
        Report {
            signature: Signature::of(Verdict::Bad {
                scheme,
                reason: BadReason::Ambiguous(e.to_string()),
            }),
            ..Report::default()
        }
    } else {
        Report::default()
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
