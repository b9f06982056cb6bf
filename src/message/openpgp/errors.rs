//! sequoia's errors told apart by their types: [`find`] walks an error's
//! chain (through `std::io::Error` wrappers too) for a typed cause, and
//! [`decrypt_failure`] turns what stopped a decryption into a
//! [`DecryptError`]. Text is compared only where the library hands over
//! nothing but text; each such place says so.

use std::error::Error as StdError;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::{key, Packet, Signature};
use openpgp::policy::{HashAlgoSecurity, Policy, StandardPolicy};
use openpgp::types::{AEADAlgorithm, SymmetricAlgorithm};

use super::DecryptError;

/// Raised from the decryption helper when a session key was decrypted
/// with one of our keys but the encrypted data did not take it.
#[derive(Debug, thiserror::Error)]
#[error("the ciphertext is corrupt or was tampered with")]
pub(super) struct SessionKeyRejected;

/// The first error of type `T` in the chain of `e`: `e` itself, its
/// sources, and the error an `std::io::Error` wraps (whose `source()`
/// skips it).
pub(super) fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(t) = find::<T>(inner) {
                return Some(t);
            }
        }
        next = e.source();
    }
    None
}

/// The sequoia error in the chain of `e`, if any.
pub(super) fn sequoia_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a openpgp::Error> {
    find::<openpgp::Error>(e)
}

/// Whether `e` says the ciphertext or its integrity protection was
/// tampered with.
fn is_integrity_failure(e: &(dyn StdError + 'static)) -> bool {
    if matches!(sequoia_error(e), Some(openpgp::Error::ManipulatedMessage))
        || find::<SessionKeyRejected>(e).is_some()
    {
        return true;
    }
    let Some(io) = find::<io::Error>(e) else {
        return false;
    };
    let Some(inner) = io.get_ref() else {
        return false;
    };
    match io.kind() {
        // flate2 reports a corrupt deflate (or zlib) stream inside the
        // encrypted data as an io::Error of this kind carrying only a
        // text: no type to match on.
        io::ErrorKind::InvalidInput => inner.to_string() == "corrupt deflate stream",
        // sequoia's readers hand their own errors (the MDC or AEAD check
        // included) over as io::Error wrapping an anyhow::Error, which
        // erases the type: only the text of sequoia's ManipulatedMessage
        // is left to compare.
        _ => {
            let manipulated = openpgp::Error::ManipulatedMessage.to_string();
            let mut next = Some(inner as &(dyn StdError + 'static));
            while let Some(e) = next {
                if e.to_string() == manipulated {
                    return true;
                }
                next = e.source();
            }
            false
        }
    }
}

/// Why decryption stopped at `e`, reported with `text` (the error as the
/// header shows it). `packet_rejected`: the policy refused a packet type
/// (see [`WatchedPolicy`]).
pub(super) fn decrypt_failure(
    e: &(dyn StdError + 'static),
    text: String,
    packet_rejected: bool,
) -> DecryptError {
    if is_integrity_failure(e) {
        return DecryptError::Integrity(text);
    }
    let policy_violation = matches!(sequoia_error(e), Some(openpgp::Error::PolicyViolation(..)));
    if packet_rejected && policy_violation {
        return DecryptError::Other(format!(
            "unsupported or insecure encryption format ({text})"
        ));
    }
    DecryptError::Other(text)
}

/// The standard policy, noting whether it refused a packet type (SED, an
/// old AEAD packet, ...). sequoia reports that refusal as a
/// `PolicyViolation` like every other (an algorithm, a hash), told apart
/// only by a context text; this tells it apart by where it happened.
#[derive(Debug)]
pub(super) struct WatchedPolicy {
    inner: StandardPolicy<'static>,
    packet_rejected: AtomicBool,
}

impl WatchedPolicy {
    pub(super) fn new() -> Self {
        WatchedPolicy {
            inner: StandardPolicy::new(),
            packet_rejected: AtomicBool::new(false),
        }
    }

    /// Whether [`Policy::packet`] refused a packet.
    pub(super) fn packet_rejected(&self) -> bool {
        self.packet_rejected.load(Ordering::Relaxed)
    }
}

impl Policy for WatchedPolicy {
    fn signature(&self, sig: &Signature, sec: HashAlgoSecurity) -> openpgp::Result<()> {
        self.inner.signature(sig, sec)
    }

    fn key(&self, ka: &ValidErasedKeyAmalgamation<key::PublicParts>) -> openpgp::Result<()> {
        self.inner.key(ka)
    }

    fn symmetric_algorithm(&self, algo: SymmetricAlgorithm) -> openpgp::Result<()> {
        self.inner.symmetric_algorithm(algo)
    }

    fn aead_algorithm(&self, algo: AEADAlgorithm) -> openpgp::Result<()> {
        self.inner.aead_algorithm(algo)
    }

    fn packet(&self, packet: &Packet) -> openpgp::Result<()> {
        let r = self.inner.packet(packet);
        if r.is_err() {
            self.packet_rejected.store(true, Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use openpgp::serialize::stream::{
        ArbitraryWriter, Compressor, Encryptor, LiteralWriter, Message, Recipient,
    };
    use openpgp::types::{CompressionAlgorithm, Features};

    use super::*;
    use crate::keys::PgpKeys;

    /// How errors were classified by their text before they were told
    /// apart by type: the typed classification must agree with it on every
    /// failure below (the header values of today's mail stay the same).
    fn by_text(text: &str) -> DecryptError {
        let lower = text.to_ascii_lowercase();
        if [
            "manipulated",
            "corrupt",
            "tampered",
            "mdc",
            "authentication",
        ]
        .iter()
        .any(|w| lower.contains(w))
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

    /// The text the old classification saw for a reported error.
    fn seen_text(e: &DecryptError) -> Option<String> {
        match e {
            DecryptError::Integrity(t) => Some(t.clone()),
            DecryptError::Other(t) => Some(
                t.strip_prefix("unsupported or insecure encryption format (")
                    .and_then(|t| t.strip_suffix(')'))
                    .unwrap_or(t)
                    .to_string(),
            ),
            _ => None,
        }
    }

    fn encrypt(cert: &Cert, v1: bool, body: &dyn Fn(Message<'_>) -> Message<'_>) -> Vec<u8> {
        let p = StandardPolicy::new();
        let features = if v1 {
            Features::empty().set_seipdv1()
        } else {
            Features::sequoia()
        };
        let rcpts: Vec<Recipient> = cert
            .keys()
            .with_policy(&p, None)
            .for_transport_encryption()
            .map(|ka| Recipient::new(features.clone(), Some(ka.key().key_handle()), ka.key()))
            .collect();
        let mut sink = Vec::new();
        let m = Message::new(&mut sink);
        let m = Encryptor::for_recipients(m, rcpts).build().unwrap();
        body(m).finalize().unwrap();
        sink
    }

    fn literal(
        comp: Option<CompressionAlgorithm>,
        data: &[u8],
    ) -> impl Fn(Message<'_>) -> Message<'_> + '_ {
        move |m| {
            let m = match comp {
                Some(a) => Compressor::new(m).algo(a).build().unwrap(),
                None => m,
            };
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(data).unwrap();
            w
        }
    }

    /// A compressed data packet holding `data` as its compressed stream.
    fn raw_compressed(algo: u8, data: &[u8]) -> impl Fn(Message<'_>) -> Message<'_> + '_ {
        move |m| {
            let mut w = ArbitraryWriter::new(m, openpgp::packet::Tag::CompressedData).unwrap();
            w.write_all(&[algo]).unwrap();
            w.write_all(data).unwrap();
            w
        }
    }

    #[test]
    fn typed_classification_agrees_with_the_old_text_match() {
        let (cert, _) = CertBuilder::general_purpose(Some("a@x.org"))
            .generate()
            .unwrap();
        let mut keys = PgpKeys::default();
        let mut tsk = Vec::new();
        openpgp::serialize::Serialize::serialize(&cert.as_tsk(), &mut tsk).unwrap();
        keys.add_bytes(Path::new("test"), &tsk, None).unwrap();
        let text: Vec<u8> = (0..3000u32)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let comps = [
            None,
            Some(CompressionAlgorithm::Zip),
            Some(CompressionAlgorithm::Zlib),
            Some(CompressionAlgorithm::BZip2),
        ];
        let mut messages = Vec::new();
        for v1 in [true, false] {
            for comp in comps {
                messages.push(encrypt(&cert, v1, &literal(comp, &text)));
            }
            for algo in [1, 2, 3] {
                messages.push(encrypt(&cert, v1, &raw_compressed(algo, &text)));
            }
        }
        // Plaintext just over the decryptor's buffer (the cap, at least 64
        // KiB): the end of the message, MDC included, is checked while
        // the plaintext is read, where sequoia's errors come wrapped.
        let big = vec![b'x'; 64 * 1024 + 3];
        messages.push(encrypt(&cert, true, &literal(None, &big)));
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for m in &messages {
            let mut variants = vec![m[..m.len() - 7].to_vec()];
            for at in (m.len() / 3..m.len())
                .step_by(m.len() / 9)
                .chain([m.len() - 5])
            {
                let mut t = m.clone();
                t[at] ^= 0x41;
                variants.push(t);
            }
            for v in variants {
                let Err(e) = super::super::decrypt(&keys, &v, 64 * 1024) else {
                    continue;
                };
                if let Some(text) = seen_text(&e) {
                    assert_eq!(e.to_string(), by_text(&text).to_string());
                }
                let kind = format!("{e:?}");
                *seen
                    .entry(kind[..kind.find('(').unwrap_or(kind.len())].into())
                    .or_default() += 1;
            }
        }
        // Both classes occur, so the comparison above compared something.
        assert!(seen.get("Integrity").is_some_and(|&n| n > 3), "{seen:?}");
        assert!(seen.get("Other").is_some_and(|&n| n > 3), "{seen:?}");
    }

    #[test]
    fn packet_policy_and_wrapped_errors() {
        let io = |kind, text: &str| io::Error::new(kind, text.to_string());
        let e = io(io::ErrorKind::InvalidInput, "corrupt deflate stream");
        assert!(is_integrity_failure(&e));
        let e = io(io::ErrorKind::InvalidInput, "bzip2: invalid data");
        assert!(!is_integrity_failure(&e));
        let wrapped = io::Error::other(openpgp::anyhow::Error::from(
            openpgp::Error::ManipulatedMessage,
        ));
        assert!(is_integrity_failure(&wrapped));
        let typed = openpgp::anyhow::Error::from(openpgp::Error::ManipulatedMessage)
            .context("while reading");
        assert!(is_integrity_failure(typed.as_ref()));
        let policy =
            openpgp::anyhow::Error::from(openpgp::Error::PolicyViolation("SED".into(), None));
        let text = policy.to_string();
        assert_eq!(
            decrypt_failure(policy.as_ref(), text.clone(), true).to_string(),
            format!("unsupported or insecure encryption format ({text})")
        );
        assert_eq!(
            decrypt_failure(policy.as_ref(), text.clone(), false).to_string(),
            text
        );
    }
}
