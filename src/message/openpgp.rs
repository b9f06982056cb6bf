//! OpenPGP with sequoia-openpgp (streaming Decryptor / Verifier /
//! DetachedVerifier, StandardPolicy). No plaintext leaves this module before
//! the whole message, integrity protection included, has been processed.

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::SymmetricAlgorithm;
use openpgp::KeyHandle;

use crate::keys::PgpKeys;

/// The result of checking one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigVerdict {
    /// Valid signature by a known, valid key.
    Good {
        /// Primary key fingerprint of the signer's certificate.
        signer: String,
        /// Normalised email addresses of the signer's valid User IDs.
        emails: Vec<String>,
    },
    /// No certificate for the issuer.
    UnknownSigner { issuers: Vec<String> },
    /// The signature does not verify (tampered) or cannot be parsed.
    Bad { reason: String },
    /// Rejected by policy: weak hash, expired or revoked key, unbound key.
    Rejected { reason: String },
}

/// What decryption saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub recipients: Vec<String>,
    pub was_encrypted: bool,
    pub compressed: bool,
    pub sigs: Vec<SigVerdict>,
    pub session_key_rejected: bool,
}

/// Why decryption produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error("no secret key for {0}")]
    NoSecretKey(String),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("decrypted content exceeds {0} octets")]
    TooLarge(usize),
    #[error("{0}")]
    Other(String),
}

struct Helper<'a> {
    keys: &'a PgpKeys,
    out: Outcome,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .keys
            .certs
            .iter()
            .filter(|c| {
                c.keys()
                    .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
            })
            .cloned()
            .collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Compression { .. } => self.out.compressed = true,
                MessageLayer::Encryption { .. } => self.out.was_encrypted = true,
                MessageLayer::SignatureGroup { results } => {
                    self.out.sigs.extend(results.into_iter().map(classify));
                }
            }
        }
        Ok(())
    }
}

fn classify(r: VerificationResult<'_>) -> SigVerdict {
    match r {
        Ok(GoodChecksum { ka, .. }) => {
            // Only User IDs validly bound and not revoked (under the policy,
            // now) may vouch for a From address.
            let cert = ka.valid_cert();
            let emails = cert
                .userids()
                .revoked(false)
                .filter_map(|u| u.userid().email_normalized().ok().flatten())
                .collect();
            SigVerdict::Good {
                signer: cert.fingerprint().to_hex(),
                emails,
            }
        }
        Err(VerificationError::MissingKey { sig }) => SigVerdict::UnknownSigner {
            issuers: sig.get_issuers().iter().map(|h| h.to_hex()).collect(),
        },
        Err(VerificationError::UnknownSignature { sig }) => SigVerdict::Bad {
            reason: format!("unparsable signature: {}", sig.error()),
        },
        Err(VerificationError::MalformedSignature { error, .. }) => SigVerdict::Bad {
            reason: format!("malformed signature: {error}"),
        },
        Err(VerificationError::UnboundKey { cert, error, .. }) => SigVerdict::Rejected {
            reason: format!(
                "signing key not validly bound to {}: {error}",
                cert.fingerprint()
            ),
        },
        Err(VerificationError::BadKey { ka, error, .. }) => SigVerdict::Rejected {
            reason: format!("signing key {} not valid: {error}", ka.key().fingerprint()),
        },
        Err(VerificationError::BadSignature { error, .. }) => {
            match error.downcast_ref::<openpgp::Error>() {
                Some(openpgp::Error::PolicyViolation(what, _)) => SigVerdict::Rejected {
                    reason: format!("{what} signatures are not accepted"),
                },
                _ => SigVerdict::Bad {
                    reason: format!("signature does not verify: {error}"),
                },
            }
        }
        Err(e) => SigVerdict::Bad {
            reason: e.to_string(),
        },
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        // A sender can list any number of (anonymous) recipients: bound the
        // private-key operations one message may cost.
        const MAX_PKESKS: usize = 32;
        for pkesk in pkesks.iter().take(MAX_PKESKS) {
            let rcpt = pkesk.recipient();
            self.out.recipients.push(match &rcpt {
                Some(r) => r.to_hex(),
                None => "anonymous recipient".into(),
            });
            for sk in &self.keys.secrets {
                let matches = match &rcpt {
                    Some(r) => r.aliases(sk.key.key_handle()),
                    None => true,
                };
                if !matches {
                    continue;
                }
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
        if self.out.session_key_rejected {
            return Err(anyhow_error(
                "the ciphertext is corrupt or was tampered with",
            ));
        }
        Err(anyhow_error("no matching secret key"))
    }
}

fn anyhow_error(msg: &str) -> openpgp::anyhow::Error {
    openpgp::anyhow::anyhow!(msg.to_string())
}

fn read_capped<R: Read>(r: R, cap: usize) -> Result<Vec<u8>, DecryptError> {
    let mut buf = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| classify_error(&e.to_string()))?;
    if buf.len() > cap {
        return Err(DecryptError::TooLarge(cap));
    }
    Ok(buf)
}

fn classify_error(text: &str) -> DecryptError {
    let lower = text.to_ascii_lowercase();
    if lower.contains("manipulated")
        || lower.contains("corrupt")
        || lower.contains("tampered")
        || lower.contains("mdc")
        || lower.contains("authentication")
    {
        DecryptError::Integrity(text.to_string())
    } else if lower.contains("policy rejected packet type") {
        DecryptError::Other(format!(
            "unsupported or insecure encryption format ({text})"
        ))
    } else {
        DecryptError::Other(text.to_string())
    }
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
    let policy = StandardPolicy::new();
    let helper = Helper {
        keys,
        out: Outcome::default(),
    };
    // Recipients are needed for the error message even when with_policy
    // fails and drops the helper: collect them up front.
    let recipients = pkesk_recipients(msg);
    let builder =
        DecryptorBuilder::from_bytes(msg).map_err(|e| DecryptError::Other(e.to_string()))?;
    let mut d = match builder
        .buffer_size(cap.max(64 * 1024))
        .with_policy(&policy, None, helper)
    {
        Ok(d) => d,
        Err(e) => {
            let text = e.to_string();
            if text.contains("no matching secret key") {
                return Err(DecryptError::NoSecretKey(if recipients.is_empty() {
                    "any recipient (no public-key encrypted session key)".into()
                } else {
                    recipients.join(", ")
                }));
            }
            return Err(classify_error(&format!("{e:#}")));
        }
    };
    let plaintext = read_capped(&mut d, cap)?;
    if !d.message_processed() {
        return Err(DecryptError::Integrity(
            "message not completely processed".into(),
        ));
    }
    Ok(Decrypted {
        plaintext,
        outcome: d.into_helper().out,
    })
}

fn pkesk_recipients(msg: &[u8]) -> Vec<String> {
    use openpgp::parse::{PacketParser, PacketParserResult};
    let mut out = Vec::new();
    let Ok(mut ppr) = PacketParser::from_bytes(msg) else {
        return out;
    };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            openpgp::Packet::PKESK(p) => out.push(match p.recipient() {
                Some(r) => r.to_hex(),
                None => "anonymous recipient".into(),
            }),
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

/// Verify a Cleartext Signature Framework block; returns the signed text.
pub fn verify_cleartext(
    keys: &PgpKeys,
    block: &[u8],
    cap: usize,
) -> Result<(Vec<u8>, Vec<SigVerdict>), DecryptError> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        keys,
        out: Outcome::default(),
    };
    let mut v = VerifierBuilder::from_bytes(block)
        .map_err(|e| DecryptError::Other(e.to_string()))?
        .buffer_size(cap.max(64 * 1024))
        .with_policy(&policy, None, helper)
        .map_err(|e| classify_error(&format!("{e:#}")))?;
    let text = read_capped(&mut v, cap)?;
    if !v.message_processed() {
        return Err(DecryptError::Other(
            "signed message not completely processed".into(),
        ));
    }
    Ok((text, v.into_helper().out.sigs))
}

/// Verify a detached signature over `data`. If it does not verify over the
/// bytes as they are and they hold bare LF line ends, the RFC 3156
/// canonical (CRLF) form is tried too.
pub fn verify_detached(keys: &PgpKeys, sig: &[u8], data: &[u8]) -> Vec<SigVerdict> {
    let first = verify_detached_once(keys, sig, data);
    let all_good = !first.is_empty() && first.iter().all(|v| !matches!(v, SigVerdict::Bad { .. }));
    if all_good || !has_bare_lf(data) {
        return first;
    }
    let second = verify_detached_once(keys, sig, &to_crlf(data));
    if second.iter().any(|v| matches!(v, SigVerdict::Good { .. })) {
        second
    } else {
        first
    }
}

fn verify_detached_once(keys: &PgpKeys, sig: &[u8], data: &[u8]) -> Vec<SigVerdict> {
    let policy = StandardPolicy::new();
    let helper = Helper {
        keys,
        out: Outcome::default(),
    };
    let builder = match DetachedVerifierBuilder::from_bytes(sig) {
        Ok(b) => b,
        Err(e) => {
            return vec![SigVerdict::Bad {
                reason: format!("unreadable signature: {e}"),
            }]
        }
    };
    let mut v = match builder.with_policy(&policy, None, helper) {
        Ok(v) => v,
        Err(e) => {
            return vec![SigVerdict::Bad {
                reason: format!("unreadable signature: {e}"),
            }]
        }
    };
    if let Err(e) = v.verify_bytes(data) {
        return vec![SigVerdict::Bad {
            reason: format!("verification failed: {e}"),
        }];
    }
    let sigs = v.into_helper().out.sigs;
    if sigs.is_empty() {
        return vec![SigVerdict::Bad {
            reason: "no signature in the signature part".into(),
        }];
    }
    sigs
}

fn has_bare_lf(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
}

/// LF or lone CR line ends to CRLF (RFC 3156 canonical form).
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}
