//! What sequoia calls back while it parses a message or a detached
//! signature: [`Helper`] counts signature packets (and stops the parse
//! beyond [`MAX_SIGNATURES`]), finds certificates for issuers, records the
//! message structure and turns each signature result into a
//! [`SigVerdict`]. Its decryption side is in `decrypt.rs`.

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::Tag;
use openpgp::parse::stream::*;
use openpgp::parse::PacketParser;
use openpgp::KeyHandle;

use super::{Outcome, SigVerdict, MAX_SIGNATURES};
use crate::keys::PgpKeys;

/// Raised from [`VerificationHelper::inspect`] when a message holds more
/// than [`MAX_SIGNATURES`] signatures (or one-pass signatures): it stops
/// sequoia's parse at once.
#[derive(Debug, thiserror::Error)]
#[error(
    "too many signatures: more than {MAX_SIGNATURES} signature packets in one message; \
     at most {MAX_SIGNATURES} are examined"
)]
pub(super) struct TooManySignatures;

/// Packets seen by [`Helper::inspect`], kept outside the helper (sequoia
/// drops the helper when its parse fails).
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) signatures: std::cell::Cell<usize>,
    one_pass: std::cell::Cell<usize>,
}

impl Counts {
    pub(super) fn too_many(&self) -> bool {
        self.signatures.get() > MAX_SIGNATURES || self.one_pass.get() > MAX_SIGNATURES
    }
}

pub(super) struct Helper<'a> {
    pub(super) keys: &'a PgpKeys,
    counts: &'a Counts,
    pub(super) out: Outcome,
}

impl<'a> Helper<'a> {
    pub(super) fn new(keys: &'a PgpKeys, counts: &'a Counts) -> Self {
        Helper {
            keys,
            counts,
            out: Outcome::default(),
        }
    }
}

impl VerificationHelper for Helper<'_> {
    /// Called by sequoia for every packet before it is processed: counts
    /// signatures and stops the parse beyond [`MAX_SIGNATURES`].
    fn inspect(&mut self, pp: &PacketParser<'_>) -> openpgp::Result<()> {
        let counter = match pp.packet.tag() {
            Tag::Signature => &self.counts.signatures,
            Tag::OnePassSig => &self.counts.one_pass,
            _ => return Ok(()),
        };
        counter.set(counter.get() + 1);
        if counter.get() > MAX_SIGNATURES {
            return Err(TooManySignatures.into());
        }
        if let openpgp::Packet::Signature(sig) = &pp.packet {
            self.out.signature_hashes.push(sig.hash_algo());
        }
        Ok(())
    }

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
        Ok(GoodChecksum { ka, sig }) => {
            // Only User IDs validly bound and not revoked (under the policy,
            // now) may vouch for a From address.
            let cert = ka.valid_cert();
            let emails = cert
                .userids()
                .revoked(false)
                .filter_map(|u| u.userid().email_normalized().ok().flatten())
                .collect();
            let created = sig
                .signature_creation_time()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            SigVerdict::Good {
                signer: cert.fingerprint().to_hex(),
                emails,
                created,
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
        Err(VerificationError::BadSignature { error, .. }) => bad_signature(&error),
        Err(e) => SigVerdict::Bad {
            reason: e.to_string(),
        },
    }
}

/// A signature with a known, valid key that was not accepted: `Rejected`
/// when the policy refused it (a weak hash), `Bad` otherwise (it does not
/// verify, it expired, it is not for us, ...).
///
/// No OpenPGP failure is reported as internal: sequoia's OpenSSL backend
/// (the `ossl` crate) returns the same untyped `ossl::Error` ("OpenSSL
/// returned a 0 c_int as an error") for a backend failure and for input
/// OpenSSL refuses (a forged AEAD tag, a point not on the curve). Calling
/// it internal would let forged mail escape quarantine, so it fails
/// closed: `bad`.
pub(super) fn bad_signature(error: &openpgp::anyhow::Error) -> SigVerdict {
    if let Some(openpgp::Error::PolicyViolation(what, _)) = error.downcast_ref::<openpgp::Error>() {
        return SigVerdict::Rejected {
            reason: format!("{what} signatures are not accepted"),
        };
    }
    SigVerdict::Bad {
        reason: format!("signature does not verify: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::anyhow;

    /// Stands for an error of the crypto backend (OpenSSL's `ossl::Error`
    /// is not one of sequoia's types either).
    #[derive(Debug, thiserror::Error)]
    #[error("OpenSSL returned a NULL ptr as an error")]
    struct BackendFailed;

    #[test]
    fn an_untyped_backend_error_fails_closed() {
        let v = bad_signature(&anyhow::Error::from(openpgp::Error::ManipulatedMessage));
        assert_eq!(
            v,
            SigVerdict::Bad {
                reason: "signature does not verify: Message has been manipulated".into()
            }
        );
        let v = bad_signature(&anyhow::Error::from(openpgp::Error::PolicyViolation(
            "SHA1".into(),
            None,
        )));
        assert_eq!(
            v,
            SigVerdict::Rejected {
                reason: "SHA1 signatures are not accepted".into()
            }
        );
        let expired = anyhow::Error::from(openpgp::Error::Expired(std::time::UNIX_EPOCH))
            .context("signature not alive");
        assert!(matches!(bad_signature(&expired), SigVerdict::Bad { .. }));
        let io = anyhow::Error::from(std::io::Error::other("x"));
        assert!(matches!(bad_signature(&io), SigVerdict::Bad { .. }));
        // A backend failure is indistinguishable from refused input:
        // bad, never an excuse (fails closed).
        let v = bad_signature(&anyhow::Error::from(BackendFailed).context("verifying"));
        assert!(matches!(v, SigVerdict::Bad { .. }), "{v:?}");
    }
}
