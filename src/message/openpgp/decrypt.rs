//! Decryption: the PKESK attempts within [`MAX_KEY_OPERATIONS`], the cap on
//! the plaintext, and why a message could not be decrypted.

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::*;
use openpgp::parse::{PacketParser, Parse};
use openpgp::types::SymmetricAlgorithm;

use super::errors::{self, SessionKeyRejected, WatchedPolicy};
use super::helper::{Counts, Helper};
use super::{Outcome, MAX_KEY_OPERATIONS, MAX_SIGNATURES};
use crate::keys::PgpKeys;

/// Raised from [`DecryptionHelper::decrypt`] when the private-key budget
/// is spent before a session key was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "gave up after {MAX_KEY_OPERATIONS} private-key operations; too many recipients could \
     be ours"
)]
struct KeyBudgetExhausted;

/// Raised from [`DecryptionHelper::decrypt`] when no PKESK could be
/// decrypted with our keys.
#[derive(Debug, thiserror::Error)]
#[error("no matching secret key")]
struct NoMatchingKey;

/// Why decryption produced nothing. Every variant is a verdict on the
/// message (what its sender made, or what happened to it on the way).
///
/// There is no internal-error variant: sequoia reports the failures of its
/// crypto backend during decryption in ways that cannot be told from a
/// verdict on the message. A PKESK that does not decrypt is `None` (on
/// purpose: no decryption oracle), and an AEAD tag OpenSSL rejects is the
/// same `ossl::Error` as any other OpenSSL failure (see `Other`), so
/// calling either internal would excuse forged mail.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// No PKESK names one of our keys (or none decrypts with them): the
    /// message is for someone else. Names the recipients.
    #[error("no secret key for {0}")]
    NoSecretKey(String),
    /// The ciphertext, its MDC or its compressed content was tampered
    /// with, or our session key does not decrypt it.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// The plaintext (decompression included) is larger than the cap.
    #[error("decrypted content exceeds {0} octets")]
    TooLarge(usize),
    /// More than [`MAX_SIGNATURES`] signature packets: the parse stopped.
    #[error(
        "too many signatures: more than {MAX_SIGNATURES} signature packets in the message; \
         not decrypted"
    )]
    TooManySignatures,
    /// [`MAX_KEY_OPERATIONS`] private-key operations spent without a
    /// session key (too many anonymous recipients).
    #[error("no session key found for {0}: {KeyBudgetExhausted}")]
    KeyBudget(String),
    /// Anything else sequoia refused: a malformed message, a packet type
    /// or algorithm the policy does not accept (`unsupported or insecure
    /// encryption format (...)`), an AEAD chunk that does not decrypt
    /// (OpenSSL's text), ...
    #[error("{0}")]
    Other(String),
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        self.out.recipients = pkesks.iter().map(recipient_name).collect();
        // A sender can list any number of recipients. A PKESK that names a
        // key of someone else is skipped by comparing its key ID (no cost);
        // only private-key operations count against the budget. PKESKs
        // naming one of our keys go first, anonymous ones (which could be
        // for any of our keys of the same algorithm) after them.
        for anonymous in [false, true] {
            for pkesk in pkesks {
                let rcpt = pkesk.recipient();
                if rcpt.is_none() != anonymous {
                    continue;
                }
                for sk in &self.keys.secrets {
                    if sk.key.pk_algo() != pkesk.pk_algo() {
                        continue;
                    }
                    if let Some(r) = &rcpt {
                        if !r.aliases(sk.key.key_handle()) {
                            continue;
                        }
                    }
                    if self.out.key_operations >= MAX_KEY_OPERATIONS {
                        return Err(KeyBudgetExhausted.into());
                    }
                    self.out.key_operations += 1;
                    let Ok(mut pair) = sk.key.clone().into_keypair() else {
                        continue;
                    };
                    if let Some((algo, session_key)) = pkesk.decrypt(&mut pair, sym_algo) {
                        if decrypt(algo, &session_key) {
                            return Ok(Some(sk.cert.clone()));
                        }
                        self.out.session_key_rejected = true;
                    }
                }
            }
        }
        if self.out.session_key_rejected {
            return Err(SessionKeyRejected.into());
        }
        Err(NoMatchingKey.into())
    }
}

fn recipient_name(p: &PKESK) -> String {
    match p.recipient() {
        Some(r) => r.to_hex(),
        None => "anonymous recipient".into(),
    }
}

fn read_capped<R: Read>(r: R, cap: usize) -> Result<Vec<u8>, DecryptError> {
    let mut buf = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| errors::decrypt_failure(&e, e.to_string(), false))?;
    if buf.len() > cap {
        return Err(DecryptError::TooLarge(cap));
    }
    Ok(buf)
}

/// Decrypted (or, for a signed-only "PGP MESSAGE", unwrapped) content.
#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: Vec<u8>,
    pub outcome: Outcome,
}

/// Decrypt an OpenPGP message (armored or binary), verifying signatures
/// inside it. `cap` bounds the plaintext (decompression included).
pub fn decrypt(keys: &PgpKeys, msg: &[u8], cap: usize) -> Result<Decrypted, DecryptError> {
    let policy = WatchedPolicy::new();
    // Recipients are needed for the error message even when with_policy
    // fails and drops the helper: collect them up front.
    let recipients = || recipient_list(&pkesk_recipients(msg));
    let counts = Counts::default();
    let builder =
        DecryptorBuilder::from_bytes(msg).map_err(|e| DecryptError::Other(e.to_string()))?;
    let mut d = match builder.buffer_size(cap.max(64 * 1024)).with_policy(
        &policy,
        None,
        Helper::new(keys, &counts),
    ) {
        Ok(d) => d,
        Err(e) => {
            if counts.too_many() {
                return Err(DecryptError::TooManySignatures);
            }
            if e.downcast_ref::<KeyBudgetExhausted>().is_some() {
                return Err(DecryptError::KeyBudget(recipients()));
            }
            if e.downcast_ref::<NoMatchingKey>().is_some() {
                let r = recipients();
                return Err(DecryptError::NoSecretKey(if r.is_empty() {
                    "any recipient (no public-key encrypted session key)".into()
                } else {
                    r
                }));
            }
            let text = format!("{e:#}");
            return Err(errors::decrypt_failure(
                e.as_ref(),
                text,
                policy.packet_rejected(),
            ));
        }
    };
    let plaintext = match read_capped(&mut d, cap) {
        Ok(p) => p,
        Err(_) if counts.too_many() => return Err(DecryptError::TooManySignatures),
        Err(e) => return Err(e),
    };
    if !d.message_processed() {
        return Err(DecryptError::Integrity(
            "message not completely processed".into(),
        ));
    }
    let mut outcome = d.into_helper().out;
    outcome.signature_packets = counts.signatures.get();
    Ok(Decrypted { plaintext, outcome })
}

/// At most this many recipients are named in an error message.
const MAX_NAMED_RECIPIENTS: usize = 8;

fn recipient_list(all: &[String]) -> String {
    if all.len() <= MAX_NAMED_RECIPIENTS {
        return all.join(", ");
    }
    format!(
        "{} and {} more",
        all[..MAX_NAMED_RECIPIENTS].join(", "),
        all.len() - MAX_NAMED_RECIPIENTS
    )
}

fn pkesk_recipients(msg: &[u8]) -> Vec<String> {
    use openpgp::parse::PacketParserResult;
    let mut out = Vec::new();
    let Ok(mut ppr) = PacketParser::from_bytes(msg) else {
        return out;
    };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            openpgp::Packet::PKESK(p) => out.push(recipient_name(p)),
            openpgp::Packet::SKESK(_) => {}
            _ => break,
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(_) => break,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_lists() {
        assert_eq!(recipient_list(&["a".into(), "b".into()]), "a, b");
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(recipient_list(&many), "0, 1, 2, 3, 4, 5, 6, 7 and 32 more");
    }
}
