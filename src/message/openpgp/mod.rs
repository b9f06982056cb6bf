//! OpenPGP with sequoia-openpgp (streaming Decryptor and DetachedVerifier,
//! StandardPolicy). No plaintext leaves this module before the whole
//! message, integrity protection included, has been processed. Cleartext
//! signatures are parsed here, strictly, and verified as detached
//! signatures over the text as parsed.
//!
//! - `decrypt`: the decryption helper, PKESK attempts, the caps on key
//!   operations and plaintext size.
//! - `verify`: detached and cleartext signature verification.
//! - `cleartext`: the strict Cleartext Signature Framework parser.
//! - `helper`: what sequoia calls back while it parses (signature counts,
//!   certificate look-up, the verdict on each signature).
//! - `errors`: sequoia's errors told apart by their types.

mod cleartext;
mod decrypt;
mod errors;
mod helper;
mod verify;

use sequoia_openpgp::types::HashAlgorithm;

use crate::text::LoneCr;

pub use cleartext::{parse_cleartext, Cleartext, CleartextError};
pub use decrypt::{decrypt, DecryptError, Decrypted};
pub use verify::{verify_cleartext, verify_detached, verify_detached_counted, ClearVerified};

/// The result of checking one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigVerdict {
    /// Valid signature by a known, valid key.
    Good {
        /// Primary key fingerprint of the signer's certificate.
        signer: String,
        /// Normalised email addresses of the signer's valid User IDs.
        emails: Vec<String>,
        /// The signature's creation time (seconds since the Unix epoch).
        created: Option<i64>,
    },
    /// No certificate for the issuer.
    UnknownSigner { issuers: Vec<String> },
    /// The signature does not verify (tampered) or cannot be parsed.
    Bad { reason: String },
    /// Rejected by policy: weak hash, expired or revoked key, unbound key.
    Rejected { reason: String },
}

/// At most this many signature packets (and as many one-pass signature
/// packets) are examined in one message: a detached signature, a cleartext
/// signature, or an (encrypted or signed-only) OpenPGP message. One more
/// stops sequoia's parse and the message is reported as having too many
/// signatures. Every signature costs a hash context over
/// the signed data (and sequoia's detached verifier matches every signature
/// against every hash context, quadratic in their number), so the number
/// must be bounded before sequoia sees them all.
pub const MAX_SIGNATURES: usize = 16;

/// At most this many private-key operations (PKESK decryption attempts)
/// per message. A PKESK naming a key that is not ours costs nothing and is
/// not counted; an anonymous (wildcard) one costs one attempt per secret
/// key of the same algorithm.
pub const MAX_KEY_OPERATIONS: usize = 32;

/// What decryption saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub recipients: Vec<String>,
    pub was_encrypted: bool,
    pub compressed: bool,
    pub sigs: Vec<SigVerdict>,
    pub session_key_rejected: bool,
    /// Signature packets sequoia parsed (the parse stops at
    /// `MAX_SIGNATURES + 1`).
    pub signature_packets: usize,
    /// Hash algorithms of the parsed signature packets, in order.
    pub signature_hashes: Vec<HashAlgorithm>,
    /// Private-key operations spent (at most [`MAX_KEY_OPERATIONS`]).
    pub key_operations: usize,
}

/// LF or lone CR line ends to CRLF (RFC 3156 canonical form): a thin
/// wrapper over [`crate::text::to_crlf`] with [`LoneCr::Ends`].
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    crate::text::to_crlf(data, LoneCr::Ends).into_owned()
}

/// Compare each good signature's creation time with the message's Date
/// header, as the S/MIME side does with signingTime: a good signature made
/// more than [`super::smime::DATE_TOLERANCE_SECS`] away from the date the
/// message claims is `Rejected` (an old signed message replayed under a fresh
/// Date: the outer Date is not signed). Without a Date the verdicts are
/// unchanged.
pub fn check_message_date(verdicts: Vec<SigVerdict>, date: Option<i64>) -> Vec<SigVerdict> {
    let Some(date) = date else {
        return verdicts;
    };
    verdicts
        .into_iter()
        .map(|v| match v {
            SigVerdict::Good {
                created: Some(t), ..
            } => match super::smime::redated(t, date) {
                Some(reason) => SigVerdict::Rejected { reason },
                None => v,
            },
            v => v,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_canonical_form() {
        for (input, want) in [
            (&b"a\nb"[..], &b"a\r\nb"[..]),
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"a\r\r\nb\n\n", b"a\r\n\r\nb\r\n\r\n"),
            (b"\n\r", b"\r\n\r\n"),
            (b"a\r\nb", b"a\r\nb"),
            (b"", b""),
        ] {
            assert_eq!(to_crlf(input), want, "{input:?}");
        }
    }
}
