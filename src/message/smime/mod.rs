//! S/MIME (CMS, RFC 5652 / RFC 8551) on CMS bytes: decrypt EnvelopedData and
//! AuthEnvelopedData, verify SignedData (opaque and detached). No MIME
//! parsing and no file I/O here: the caller hands over the DER (or BER) of
//! the `application/pkcs7-*` part, and the key material loaded by
//! [`crate::keys::smime`].
//!
//! All cryptography is OpenSSL's (the `openssl` crate). The RustCrypto `cms`
//! crate only *reads* structures for clear messages and for the checks
//! OpenSSL's high-level CMS calls do not make: recipient identifiers, signer
//! identifiers, signingTime, content types, algorithm identifiers, whether
//! eContent is present. Both parsers see the same bytes: the blob is parsed
//! by OpenSSL (which accepts the BER that streaming S/MIME tools write) and
//! re-encoded by OpenSSL as DER before the `cms` crate reads it.
//!
//! Security rules:
//! - decryption uses `CMS_decrypt` with the recipient certificate
//!   (`decrypt(pkey, cert)`), never `decrypt_without_cert_check`, so OpenSSL's
//!   Bleichenbacher/MMA countermeasure applies;
//! - a signature is `Good` only when the signature verifies, the signer
//!   certificate chains (using certificates carried in the message as
//!   untrusted intermediates) to a certificate in the trust store (the trust
//!   directory, optionally the system store), and the certificate is valid at
//!   the signing time (signingTime attribute, else now; a signingTime in the
//!   future is rejected);
//! - one verdict per SignerInfo (a single `Bad` when there is none, or more
//!   than [`MAX_SIGNER_INFOS`]); no SignerInfo is `Bad`; a multi-signer
//!   message never yields a lone `Good` and a failure that OpenSSL cannot
//!   attribute to one signer marks every signer;
//! - detached signatures must not carry eContent, opaque ones must; the
//!   signed content type must be id-data (eContent confusion);
//! - MD5 and SHA-1 signatures are rejected by policy;
//! - bounded work for whatever a sender writes: at most
//!   [`MAX_SIGNER_INFOS`] SignerInfos are examined (more is `Bad`), the
//!   complete OpenSSL verification runs once per message (not once per
//!   signer), and at most [`MAX_KEY_ATTEMPTS`] of our identities named as
//!   recipients are tried with their private key (RecipientInfos naming
//!   nobody of ours cost no private-key operation).
//!
//! The rooms: `cms.rs` reads the structures, `certs.rs` matches
//! identifiers with certificates, `decrypt.rs` and `verify.rs` do the work;
//! this file holds the public API and the verdict types.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use ::cms::cert::x509::der::asn1::OctetString;
use ::cms::content_info::ContentInfo;

mod certs;
mod cms;
mod decrypt;
mod verify;

pub use self::cms::content_type;
pub use self::decrypt::decrypt;
pub use crate::keys::smime::{SmimeKeyError, SmimeKeys};

use self::cms::{content_type_name, oid_is, parse, ParseFail, SignedLite, OID_SIGNED_DATA};

/// The most SignerInfos examined in one SignedData. Real mail has one (two
/// when a message is signed with an RSA and an EC certificate); a signature
/// with more is `bad (too many signers: N)` before any of them is checked.
pub const MAX_SIGNER_INFOS: usize = 8;

/// The most of our identities tried with their private key on one
/// EnvelopedData (each try costs at most one private-key operation: OpenSSL
/// uses the key only on a RecipientInfo that names the certificate).
pub const MAX_KEY_ATTEMPTS: usize = 8;

thread_local! {
    static CMS_VERIFY_CALLS: Cell<u64> = const { Cell::new(0) };
    static PRIVATE_KEY_TRIES: Cell<u64> = const { Cell::new(0) };
}

fn count(c: &'static std::thread::LocalKey<Cell<u64>>) {
    c.with(|c| c.set(c.get().saturating_add(1)));
}

/// How many OpenSSL `CMS_verify` calls (over all SignerInfos at once) this
/// thread has made so far. For tests: the work done for one message is the
/// difference before and after it (a good detached signature costs two:
/// the signature check and the one complete confirmation).
pub fn cms_verify_calls() -> u64 {
    CMS_VERIFY_CALLS.with(Cell::get)
}

/// How many OpenSSL `CMS_decrypt` calls with one of our private keys this
/// thread has made so far (see [`cms_verify_calls`]).
pub fn private_key_tries() -> u64 {
    PRIVATE_KEY_TRIES.with(Cell::get)
}

/// A decrypted EnvelopedData / AuthEnvelopedData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The decrypted content (normally a MIME entity).
    pub content: Vec<u8>,
    /// AuthEnvelopedData (AEAD, integrity protected). False for
    /// EnvelopedData, whose CBC content has no integrity protection.
    pub auth_enveloped: bool,
    /// Content-encryption algorithm, e.g. `aes-256-gcm`, `aes-128-cbc`,
    /// `des-ede3-cbc`, or the dotted OID when unknown.
    pub algorithm: String,
    /// 3DES, RC2 or DES.
    pub legacy_algorithm: bool,
}

/// Why decryption produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    #[error("not encrypted to any of our S/MIME certificates; recipients: {}", if .recipients.is_empty() { "none".to_string() } else { .recipients.join("; ") })]
    NotRecipient { recipients: Vec<String> },
    #[error("corrupt or tampered S/MIME data: {0}")]
    Corrupt(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("decrypted content exceeds {0} octets")]
    TooLarge(usize),
    #[error("{0}")]
    Other(String),
    /// OpenSSL itself failed (allocation failure, an unexpected library
    /// error): says nothing about the message. Holds OpenSSL's reasons.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of checking one SignerInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigVerdict {
    /// The signature verifies, the certificate chains to a trust anchor and
    /// was valid at the signing time. The caller still compares `emails`
    /// with From.
    Good {
        /// rfc822Name SANs and subject emailAddress, lowercased.
        emails: Vec<String>,
        /// The signer certificate's subject.
        subject: String,
        /// The signingTime attribute (seconds since the Unix epoch), if
        /// any; see [`check_message_date`].
        signing_time: Option<i64>,
    },
    /// The signature does not verify (tampered), or the structure is unsafe
    /// or unreadable.
    Bad { reason: String },
    /// The signature verifies, but the certificate does not chain to a trust
    /// anchor (or is not in the message at all).
    UnknownSigner {
        /// `subject=…, issuer=…` of the signer certificate, or the signer
        /// identifier when the certificate is missing.
        who: String,
    },
    /// Refused by policy: certificate expired or not yet valid at the
    /// signing time, signing time in the future, weak or unsupported
    /// algorithm, wrong key usage.
    Rejected { reason: String },
    /// No verdict on the signature: OpenSSL itself failed while checking it
    /// (allocation failure, trust store setup, an unexpected library
    /// error). `reason` starts with `internal error: `.
    Internal { reason: String },
}

/// How far a signature's signingTime may lie from the message's Date header.
pub const DATE_TOLERANCE_SECS: i64 = 3600;

/// Compare each good signature's signingTime with the message's Date header
/// (seconds since the Unix epoch; the caller parses the header): a good
/// signature made more than [`DATE_TOLERANCE_SECS`] away from the date the
/// message claims becomes `Rejected` (a re-dated or replayed message, as in
/// Thunderbird's `alice.future` test). Without a signingTime or a Date the
/// verdicts are unchanged.
pub fn check_message_date(verdicts: Vec<SigVerdict>, date: Option<i64>) -> Vec<SigVerdict> {
    let Some(date) = date else {
        return verdicts;
    };
    verdicts
        .into_iter()
        .map(|v| match v {
            SigVerdict::Good {
                signing_time: Some(t),
                ..
            } => match redated(t, date) {
                Some(reason) => SigVerdict::Rejected { reason },
                None => v,
            },
            v => v,
        })
        .collect()
}

/// Why a signature made at `made` does not belong to a message dated
/// `date` (more than [`DATE_TOLERANCE_SECS`] apart), if it does not. Shared
/// with the OpenPGP side.
pub(crate) fn redated(made: i64, date: i64) -> Option<String> {
    ((made - date).abs() > DATE_TOLERANCE_SECS).then(|| {
        format!(
            "the signature was made at {} but the message is dated {}",
            format_time(made),
            format_time(date)
        )
    })
}

fn bad(reason: impl Into<String>) -> SigVerdict {
    SigVerdict::Bad {
        reason: reason.into(),
    }
}

/// An [`SigVerdict::Internal`] with `detail` after `internal error: `.
fn internal(detail: impl std::fmt::Display) -> SigVerdict {
    SigVerdict::Internal {
        reason: format!("internal error: {detail}"),
    }
}

/// The verdict for a signature blob that does not parse.
fn unparsed(e: ParseFail) -> SigVerdict {
    match e {
        ParseFail::Malformed(m) => bad(format!("unreadable signature: {m}")),
        ParseFail::Internal(r) => internal(r),
    }
}

/// Verify opaque SignedData (DER or BER) and return the encapsulated
/// content (when present and within `cap`) with one verdict per SignerInfo
/// (one `Bad` for more than [`MAX_SIGNER_INFOS`]). The content is returned whatever the verdicts: the caller shows it with
/// the verdict.
pub fn verify_opaque(
    keys: &SmimeKeys,
    der: &[u8],
    cap: usize,
) -> (Option<Vec<u8>>, Vec<SigVerdict>) {
    let parsed = match parse(der) {
        Ok(p) => p,
        Err(e) => return (None, vec![unparsed(e)]),
    };
    let sd = match signed_data(&parsed.info) {
        Ok(sd) => sd,
        Err(v) => return (None, vec![v]),
    };
    let content = match &sd.encap.econtent {
        None => None,
        Some(any) => match any.decode_as::<OctetString>() {
            Ok(o) => Some(o.into_bytes()),
            Err(_) => None,
        },
    };
    if let Some(c) = &content {
        if c.len() > cap {
            return (
                None,
                vec![bad(format!("signed content exceeds {cap} octets"))],
            );
        }
    }
    let verdicts = verify::verify_signed(keys, parsed, &sd, None);
    (content, verdicts)
}

/// Verify a detached signature (DER/BER of the `application/pkcs7-signature`
/// part) over the exact bytes of the first MIME part. When the bytes do not
/// verify as given and contain bare LF, they are verified once more in
/// canonical CRLF form (RFC 8551 §3.1.1), as OpenSSL's own S/MIME reader does.
pub fn verify_detached(keys: &SmimeKeys, sig_der: &[u8], data: &[u8]) -> Vec<SigVerdict> {
    let parsed = match parse(sig_der) {
        Ok(p) => p,
        Err(e) => return vec![unparsed(e)],
    };
    let sd = match signed_data(&parsed.info) {
        Ok(sd) => sd,
        Err(v) => return vec![v],
    };
    verify::verify_signed(keys, parsed, &sd, Some(data))
}

fn signed_data(info: &ContentInfo) -> Result<SignedLite, SigVerdict> {
    if !oid_is(&info.content_type, OID_SIGNED_DATA) {
        return Err(bad(format!(
            "not a signature: the CMS content type is {}",
            content_type_name(&info.content_type)
        )));
    }
    info.content
        .decode_as::<SignedLite>()
        .map_err(|e| bad(format!("malformed SignedData: {e}")))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn format_time(secs: i64) -> String {
    openssl::asn1::Asn1Time::from_unix(secs as _)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage() {
        assert_eq!(content_type(b"not cms"), None);
        let keys = SmimeKeys::default();
        assert!(matches!(
            decrypt(&keys, b"\x30\x03\x02\x01\x00", 10),
            Err(SmimeError::Corrupt(_))
        ));
        assert!(matches!(
            verify_detached(&keys, b"garbage", b"x").as_slice(),
            [SigVerdict::Bad { .. }]
        ));
    }

    /// A signature made without certificates, by a signer we hold no
    /// certificate of: OpenSSL's "signer certificate not found" (read by
    /// its code) makes it an unknown signer, not a bad signature.
    #[test]
    fn a_signer_certificate_missing_everywhere_is_an_unknown_signer() {
        use openssl::cms::{CMSOptions, CmsContentInfo};
        let pem = include_bytes!("../../../tests/golden/smime/keys-private/alice.pem");
        let root = include_bytes!("../../../tests/golden/smime/keys/trust/demo-root-ca.pem");
        let cert = openssl::x509::X509::from_pem(pem).unwrap();
        let key = openssl::pkey::PKey::private_key_from_pem(pem).unwrap();
        let data = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let flags = CMSOptions::DETACHED | CMSOptions::BINARY | CMSOptions::CMS_NOCERTS;
        let sig = CmsContentInfo::sign(Some(&cert), Some(&key), None, Some(data), flags)
            .unwrap()
            .to_der()
            .unwrap();
        let mut keys = SmimeKeys::default();
        keys.add_trust_pem(root).unwrap();
        match verify_detached(&keys, &sig, data).as_slice() {
            [SigVerdict::UnknownSigner { who }] => {
                assert!(
                    who.starts_with("certificate not in the message: issuer="),
                    "{who}"
                )
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn internal_errors_say_so() {
        let v = internal("malloc failure");
        assert_eq!(
            v,
            SigVerdict::Internal {
                reason: "internal error: malloc failure".into()
            }
        );
        assert_eq!(
            SmimeError::Internal("malloc failure".into()).to_string(),
            "internal error: malloc failure"
        );
    }
}
