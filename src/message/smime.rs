//! S/MIME (CMS, RFC 5652 / RFC 8551) on CMS bytes: decrypt EnvelopedData and
//! AuthEnvelopedData, verify SignedData (opaque and detached), and load
//! S/MIME key material. No MIME parsing here: the caller hands over the DER
//! (or BER) of the `application/pkcs7-*` part.
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

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use cms::cert::x509::der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use cms::cert::x509::der::{
    self, Decode, DecodeValue, Encode, FixedTag, Header, Reader, SliceReader, Tag, TagNumber,
    Tagged,
};
use cms::cert::x509::time::Time;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo,
};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::provider::Provider;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509NameRef, X509PurposeId, X509Ref, X509StoreContext, X509};

// --- object identifiers --------------------------------------------------------

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
const OID_DIGESTED_DATA: &str = "1.2.840.113549.1.7.5";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_AUTH_DATA: &str = "1.2.840.113549.1.9.16.1.2";
const OID_COMPRESSED_DATA: &str = "1.2.840.113549.1.9.16.1.9";
const OID_AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";

/// Seconds a signingTime may lie in the future (clock skew) before the
/// signature is rejected.
const FUTURE_SKEW_SECS: i64 = 3600;

/// The most SignerInfos examined in one SignedData. Real mail has one (two
/// when a message is signed with an RSA and an EC certificate); a signature
/// with more is `bad (too many signers: N)` before any of them is checked.
pub const MAX_SIGNER_INFOS: usize = 8;

/// The most of our identities tried with their private key on one
/// EnvelopedData (each try costs at most one private-key operation: OpenSSL
/// uses the key only on a RecipientInfo that names the certificate).
pub const MAX_KEY_ATTEMPTS: usize = 8;

/// At most this many recipients are listed in a "not for us" error.
const MAX_LISTED_RECIPIENTS: usize = 8;

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

/// `CmsContentInfo::verify`, counted.
fn cms_verify(
    cms: &mut CmsContentInfo,
    certs: &openssl::stack::StackRef<X509>,
    store: Option<&openssl::x509::store::X509StoreRef>,
    data: Option<&[u8]>,
    flags: CMSOptions,
) -> Result<(), ErrorStack> {
    count(&CMS_VERIFY_CALLS);
    cms.verify(Some(certs), store, data, None, flags)
}

fn oid_is(oid: &ObjectIdentifier, dotted: &str) -> bool {
    oid.to_string() == dotted
}

/// Content-encryption algorithms: (OID, name, legacy, supported by OpenSSL 3.0 CMS).
const CONTENT_CIPHERS: &[(&str, &str, bool, bool)] = &[
    ("2.16.840.1.101.3.4.1.2", "aes-128-cbc", false, true),
    ("2.16.840.1.101.3.4.1.22", "aes-192-cbc", false, true),
    ("2.16.840.1.101.3.4.1.42", "aes-256-cbc", false, true),
    ("2.16.840.1.101.3.4.1.6", "aes-128-gcm", false, true),
    ("2.16.840.1.101.3.4.1.26", "aes-192-gcm", false, true),
    ("2.16.840.1.101.3.4.1.46", "aes-256-gcm", false, true),
    ("2.16.840.1.101.3.4.1.7", "aes-128-ccm", false, false),
    ("2.16.840.1.101.3.4.1.27", "aes-192-ccm", false, false),
    ("2.16.840.1.101.3.4.1.47", "aes-256-ccm", false, false),
    ("1.2.840.113549.3.7", "des-ede3-cbc", true, true),
    ("1.2.840.113549.3.2", "rc2-cbc", true, true),
    ("1.3.14.3.2.7", "des-cbc", true, true),
    (
        "1.2.840.113549.1.9.16.3.18",
        "chacha20-poly1305",
        false,
        false,
    ),
];

/// Digest and signature algorithms refused by policy (collision attacks).
const WEAK_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.113549.2.5", "MD5"),
    ("1.3.14.3.2.26", "SHA-1"),
    ("1.2.840.113549.1.1.4", "MD5 with RSA"),
    ("1.2.840.113549.1.1.5", "SHA-1 with RSA"),
    ("1.2.840.10045.4.1", "ECDSA with SHA-1"),
    ("1.2.840.10040.4.3", "DSA with SHA-1"),
    ("1.3.14.3.2.29", "SHA-1 with RSA"),
];

/// Signature algorithms OpenSSL 3.0's CMS cannot verify.
const UNSUPPORTED_SIGNATURES: &[(&str, &str)] =
    &[("1.3.101.112", "Ed25519"), ("1.3.101.113", "Ed448")];

fn content_type_name(oid: &ObjectIdentifier) -> String {
    let s = oid.to_string();
    match s.as_str() {
        OID_ENVELOPED_DATA => "enveloped-data".into(),
        OID_AUTH_ENVELOPED_DATA => "auth-enveloped-data".into(),
        OID_SIGNED_DATA => "signed-data".into(),
        OID_COMPRESSED_DATA => "compressed-data".into(),
        OID_DATA => "data".into(),
        OID_DIGESTED_DATA => "digested-data".into(),
        OID_ENCRYPTED_DATA => "encrypted-data".into(),
        OID_AUTH_DATA => "authenticated-data".into(),
        _ => s,
    }
}

// --- legacy provider -------------------------------------------------------------

static LEGACY: OnceLock<Option<Provider>> = OnceLock::new();

/// Load OpenSSL 3's `legacy` provider once (RC2/3DES PKCS#12 files, RC2
/// content), keeping the default provider available. Kept alive for the
/// life of the process.
fn legacy_provider() -> bool {
    LEGACY
        .get_or_init(|| match Provider::try_load(None, "legacy", true) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!(error = %e, "OpenSSL legacy provider not available");
                None
            }
        })
        .is_some()
}

// --- keys ------------------------------------------------------------------------

/// One own certificate with its private key.
#[derive(Clone)]
struct Identity {
    cert: X509,
    key: PKey<Private>,
    emails: Vec<String>,
    subject: String,
}

/// S/MIME key material: own identities (certificate + private key, to
/// decrypt), untrusted extra certificates found next to them (chains), and
/// the trust store for signatures.
#[derive(Clone, Default)]
pub struct SmimeKeys {
    identities: Vec<Identity>,
    extra_certs: Vec<X509>,
    anchors: Vec<X509>,
    system_roots: Vec<X509>,
}

impl std::fmt::Debug for SmimeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmimeKeys")
            .field("identities", &self.identities.len())
            .field("extra_certs", &self.extra_certs.len())
            .field("anchors", &self.anchors.len())
            .field("system_roots", &self.system_roots.len())
            .finish()
    }
}

/// A start-up error about S/MIME keys: names the file, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum SmimeKeyError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not readable as a certificate, private key or PKCS#12 file: {reason}", .path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{}: wrong passphrase (or the file is corrupt)", .path.display())]
    WrongPassphrase { path: PathBuf },
    #[error("{}: the file is passphrase-protected, but no passphrase is configured (set keys_passphrase_file or keys_passphrase_env)", .path.display())]
    NoPassphrase { path: PathBuf },
    #[error("{}: {reason}", .path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{}: private key without a matching certificate in the S/MIME directory", .path.display())]
    KeyWithoutCertificate { path: PathBuf },
    #[error("cannot load the system trust store: {0}")]
    SystemRoots(String),
}

fn io_err(path: &Path, e: std::io::Error) -> SmimeKeyError {
    SmimeKeyError::Io {
        path: path.to_owned(),
        source: e,
    }
}

fn parse_err(path: &Path, reason: impl Into<String>) -> SmimeKeyError {
    SmimeKeyError::Parse {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The files of a key directory, sorted; skips dotfiles, notes and
/// passphrase files; subdirectories are ignored.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, SmimeKeyError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            !(name.starts_with('.')
                || name.ends_with(".md")
                || name.ends_with(".txt")
                || name.ends_with(".passphrase")
                || name.starts_with("readme"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// PEM blocks of a file: (label, whole block text).
fn pem_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let s = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut rest: &str = &s;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        out.push((label, rest.as_bytes()[start..stop].to_vec()));
        rest = &rest[stop..];
    }
    out
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

fn is_pkcs12_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx"))
}

fn has_reason(e: &ErrorStack, needle: &str) -> bool {
    e.errors()
        .iter()
        .any(|e| e.reason().is_some_and(|r| r.contains(needle)))
}

fn reasons(e: &ErrorStack) -> String {
    let mut v: Vec<&str> = e.errors().iter().filter_map(|e| e.reason()).collect();
    v.dedup();
    if v.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        v.join("; ")
    }
}

/// Collected while loading the S/MIME directory.
#[derive(Default)]
struct Loose {
    certs: Vec<(PathBuf, X509)>,
    keys: Vec<(PathBuf, PKey<Private>)>,
    identities: Vec<(X509, PKey<Private>)>,
}

impl SmimeKeys {
    /// Load S/MIME material.
    ///
    /// `smime_dir`: own certificates and keys: PEM (certificate and key in
    /// one file, or separate `*.pem`/`*.crt`/`*.key` files paired by public
    /// key; extra certificates are kept as untrusted chain certificates) or
    /// PKCS#12 (`*.p12`/`*.pfx`) decrypted with `passphrase` (which also
    /// unlocks encrypted PEM keys). `trust_dir`: CA certificates (PEM or
    /// DER) trusted for signatures; a certificate there is an anchor even if
    /// it is not self-signed. `use_system_roots`: also trust the system store.
    pub fn load(
        smime_dir: Option<&Path>,
        trust_dir: Option<&Path>,
        passphrase: Option<&str>,
        use_system_roots: bool,
    ) -> Result<SmimeKeys, SmimeKeyError> {
        let mut keys = SmimeKeys::default();
        if let Some(dir) = smime_dir {
            let mut loose = Loose::default();
            for path in files_in(dir)? {
                load_own_file(&path, passphrase, &mut loose)?;
            }
            keys.pair(loose)?;
        }
        if let Some(dir) = trust_dir {
            for path in files_in(dir)? {
                let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
                let certs = if looks_like_pem(&bytes) {
                    X509::stack_from_pem(&bytes).map_err(|e| parse_err(&path, reasons(&e)))?
                } else {
                    vec![X509::from_der(&bytes).map_err(|e| parse_err(&path, reasons(&e)))?]
                };
                if certs.is_empty() {
                    return Err(parse_err(&path, "no certificate found"));
                }
                for c in certs {
                    push_unique(&mut keys.anchors, c);
                }
            }
        }
        if use_system_roots {
            let mut b =
                X509StoreBuilder::new().map_err(|e| SmimeKeyError::SystemRoots(reasons(&e)))?;
            b.set_default_paths()
                .map_err(|e| SmimeKeyError::SystemRoots(reasons(&e)))?;
            let store = b.build();
            for c in store.all_certificates() {
                push_unique(&mut keys.system_roots, c);
            }
        }
        tracing::debug!(
            identities = keys.identities.len(),
            anchors = keys.anchors.len(),
            system_roots = keys.system_roots.len(),
            "S/MIME keys loaded"
        );
        Ok(keys)
    }

    fn pair(&mut self, loose: Loose) -> Result<(), SmimeKeyError> {
        let mut used = vec![false; loose.certs.len()];
        for (cert, key) in loose.identities {
            self.add_identity(cert, key);
        }
        for (path, key) in loose.keys {
            let found = loose
                .certs
                .iter()
                .enumerate()
                .filter(|(_, (_, c))| c.public_key().is_ok_and(|pk| pk.public_eq(&key)))
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            if found.is_empty() {
                return Err(SmimeKeyError::KeyWithoutCertificate { path });
            }
            for i in found {
                used[i] = true;
                self.add_identity(loose.certs[i].1.clone(), key.clone());
            }
        }
        for (i, (_, cert)) in loose.certs.into_iter().enumerate() {
            if !used[i] {
                push_unique(&mut self.extra_certs, cert);
            }
        }
        Ok(())
    }

    /// Add an identity from PEM bytes holding its certificate and
    /// unencrypted private key (used for the embedded demo keys).
    pub fn add_pem_identity(&mut self, pem: &[u8]) -> Result<(), String> {
        let cert = X509::from_pem(pem).map_err(|e| reasons(&e))?;
        let key = PKey::private_key_from_pem(pem).map_err(|e| reasons(&e))?;
        self.add_identity(cert, key);
        Ok(())
    }

    /// Trust the CA certificates in PEM bytes for signatures.
    pub fn add_trust_pem(&mut self, pem: &[u8]) -> Result<(), String> {
        for c in X509::stack_from_pem(pem).map_err(|e| reasons(&e))? {
            push_unique(&mut self.anchors, c);
        }
        Ok(())
    }

    fn add_identity(&mut self, cert: X509, key: PKey<Private>) {
        let der = cert.to_der().unwrap_or_default();
        if self
            .identities
            .iter()
            .any(|i| i.cert.to_der().unwrap_or_default() == der)
        {
            return;
        }
        self.identities.push(Identity {
            emails: cert_emails(&cert),
            subject: name_string(cert.subject_name()),
            cert,
            key,
        });
    }

    /// True when nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.anchors.is_empty() && self.system_roots.is_empty()
    }

    /// Own certificate + key pairs loaded (can decrypt).
    pub fn has_identities(&self) -> bool {
        !self.identities.is_empty()
    }

    /// Trust anchors loaded (can judge signatures).
    pub fn has_trust(&self) -> bool {
        !self.anchors.is_empty() || !self.system_roots.is_empty()
    }

    /// Email addresses of the own identities (deduplicated).
    pub fn identity_emails(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in self.identities.iter().flat_map(|i| i.emails.iter()) {
            if !v.contains(e) {
                v.push(e.clone());
            }
        }
        v
    }

    /// One line for the start-up log, e.g.
    /// `S/MIME: 1 identity (alice@example.com), 3 trust anchors`.
    pub fn summary(&self) -> String {
        let n = self.identities.len();
        let mut who = self.identity_emails();
        if who.is_empty() {
            who = self.identities.iter().map(|i| i.subject.clone()).collect();
        }
        let mut s = format!(
            "S/MIME: {n} identit{}{}, {} trust anchor{}",
            if n == 1 { "y" } else { "ies" },
            if who.is_empty() {
                String::new()
            } else {
                format!(" ({})", who.join(", "))
            },
            self.anchors.len(),
            if self.anchors.len() == 1 { "" } else { "s" },
        );
        if !self.system_roots.is_empty() {
            s.push_str(&format!(
                " + {} system root certificates",
                self.system_roots.len()
            ));
        }
        s
    }

    /// Certificates offered to OpenSSL as candidate signer/chain
    /// certificates besides those in the message (never trusted as such).
    fn candidate_certs(&self) -> Vec<X509> {
        let mut v: Vec<X509> = self.identities.iter().map(|i| i.cert.clone()).collect();
        v.extend(self.extra_certs.iter().cloned());
        v.extend(self.anchors.iter().cloned());
        v
    }

    /// The trust store, verifying as of `time` (seconds since the epoch).
    fn store_at(&self, time: i64) -> Result<X509Store, ErrorStack> {
        let mut b = X509StoreBuilder::new()?;
        for c in self.anchors.iter().chain(self.system_roots.iter()) {
            b.add_cert(c.clone())?;
        }
        let mut p = X509VerifyParam::new()?;
        p.set_time(time as _);
        p.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        p.set_purpose(X509PurposeId::SMIME_SIGN)?;
        b.set_param(&p)?;
        Ok(b.build())
    }
}

fn push_unique(v: &mut Vec<X509>, c: X509) {
    let der = c.to_der().unwrap_or_default();
    if !v.iter().any(|x| x.to_der().unwrap_or_default() == der) {
        v.push(c);
    }
}

fn load_own_file(
    path: &Path,
    passphrase: Option<&str>,
    loose: &mut Loose,
) -> Result<(), SmimeKeyError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    if is_pkcs12_name(path) {
        return load_pkcs12(path, &bytes, passphrase, loose);
    }
    if looks_like_pem(&bytes) {
        let mut any = false;
        for (label, block) in pem_blocks(&bytes) {
            match label.as_str() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                    let c = X509::from_pem(&block).map_err(|e| parse_err(path, reasons(&e)))?;
                    loose.certs.push((path.to_owned(), c));
                    any = true;
                }
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                    let encrypted = label == "ENCRYPTED PRIVATE KEY"
                        || block.windows(9).any(|w| w == b"ENCRYPTED");
                    let key = if encrypted {
                        let Some(pw) = passphrase else {
                            return Err(SmimeKeyError::NoPassphrase {
                                path: path.to_owned(),
                            });
                        };
                        PKey::private_key_from_pem_passphrase(&block, pw.as_bytes()).map_err(
                            |_| SmimeKeyError::WrongPassphrase {
                                path: path.to_owned(),
                            },
                        )?
                    } else {
                        PKey::private_key_from_pem(&block)
                            .map_err(|e| parse_err(path, reasons(&e)))?
                    };
                    loose.keys.push((path.to_owned(), key));
                    any = true;
                }
                _ => {}
            }
        }
        if !any {
            return Err(parse_err(path, "no certificate or private key found"));
        }
        return Ok(());
    }
    if let Ok(c) = X509::from_der(&bytes) {
        loose.certs.push((path.to_owned(), c));
        return Ok(());
    }
    if let Ok(k) = PKey::private_key_from_der(&bytes) {
        loose.keys.push((path.to_owned(), k));
        return Ok(());
    }
    if Pkcs12::from_der(&bytes).is_ok() {
        return load_pkcs12(path, &bytes, passphrase, loose);
    }
    Err(parse_err(
        path,
        "neither PEM nor a DER certificate, private key or PKCS#12 file",
    ))
}

fn load_pkcs12(
    path: &Path,
    bytes: &[u8],
    passphrase: Option<&str>,
    loose: &mut Loose,
) -> Result<(), SmimeKeyError> {
    legacy_provider();
    let p12 = Pkcs12::from_der(bytes).map_err(|e| parse_err(path, reasons(&e)))?;
    let parsed = match p12.parse2(passphrase.unwrap_or("")) {
        Ok(p) => p,
        Err(e) => {
            if has_reason(&e, "mac verify failure") || has_reason(&e, "bad decrypt") {
                return Err(if passphrase.is_none() {
                    SmimeKeyError::NoPassphrase {
                        path: path.to_owned(),
                    }
                } else {
                    SmimeKeyError::WrongPassphrase {
                        path: path.to_owned(),
                    }
                });
            }
            if has_reason(&e, "unsupported") {
                return Err(SmimeKeyError::Unsupported {
                    path: path.to_owned(),
                    reason: format!(
                        "PKCS#12 algorithm not available in this OpenSSL ({}); re-export the file \
                         with AES (openssl pkcs12 -legacy -in old.p12 | openssl pkcs12 -export)",
                        reasons(&e)
                    ),
                });
            }
            return Err(parse_err(path, reasons(&e)));
        }
    };
    match (parsed.cert, parsed.pkey) {
        (Some(cert), Some(key)) => {
            if !cert.public_key().is_ok_and(|pk| pk.public_eq(&key)) {
                return Err(parse_err(
                    path,
                    "the private key does not belong to the certificate",
                ));
            }
            loose.identities.push((cert, key));
        }
        (Some(cert), None) => loose.certs.push((path.to_owned(), cert)),
        (None, Some(key)) => loose.keys.push((path.to_owned(), key)),
        (None, None) => {}
    }
    if let Some(ca) = parsed.ca {
        for c in ca {
            loose.certs.push((path.to_owned(), c));
        }
    }
    Ok(())
}

// --- certificate helpers -----------------------------------------------------------

/// rfc822Name SANs and subject emailAddress, lowercased, deduplicated.
fn cert_emails(cert: &X509Ref) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        if !s.is_empty() && !v.contains(&s) {
            v.push(s);
        }
    };
    if let Some(sans) = cert.subject_alt_names() {
        for n in sans.iter() {
            if let Some(e) = n.email() {
                add(e);
            }
        }
    }
    for e in cert.subject_name().entries_by_nid(Nid::PKCS9_EMAILADDRESS) {
        if let Ok(s) = e.data().to_string() {
            add(&s);
        }
    }
    v
}

/// `CN=…, O=…` in the certificate's order.
fn name_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let nid = e.object().nid();
            let key = nid
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| e.object().to_string());
            let val = e
                .data()
                .to_string()
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Serial number bytes without the sign octet(s).
fn serial_hex(bytes: &[u8]) -> String {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    hex_upper(b)
}

fn x509_name_from(name: &cms::cert::x509::name::Name) -> Option<openssl::x509::X509Name> {
    let der = name.to_der().ok()?;
    openssl::x509::X509Name::from_der(&der).ok()
}

fn issuer_serial_string(ias: &cms::cert::IssuerAndSerialNumber) -> String {
    let issuer = x509_name_from(&ias.issuer)
        .map(|n| name_string(&n))
        .unwrap_or_else(|| ias.issuer.to_string());
    format!(
        "issuer={issuer}, serial={}",
        serial_hex(ias.serial_number.as_bytes())
    )
}

fn cert_matches_issuer_serial(cert: &X509Ref, ias: &cms::cert::IssuerAndSerialNumber) -> bool {
    let Some(name) = x509_name_from(&ias.issuer) else {
        return false;
    };
    let same_issuer = cert
        .issuer_name()
        .try_cmp(&name)
        .is_ok_and(|o| o == std::cmp::Ordering::Equal);
    // Compare the serial numbers as encoded (two's complement content
    // octets): a magnitude comparison would let a certificate with serial
    // -0x5433 (AB CD) stand in for one with 0xABCD (00 AB CD).
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = cms::cert::x509::Certificate::from_der(&der) else {
        return false;
    };
    same_issuer && parsed.tbs_certificate.serial_number.as_bytes() == ias.serial_number.as_bytes()
}

fn cert_matches_ski(cert: &X509Ref, ski: &[u8]) -> bool {
    cert.subject_key_id().is_some_and(|k| k.as_slice() == ski)
}

fn signer_matches(cert: &X509Ref, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => cert_matches_issuer_serial(cert, ias),
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert_matches_ski(cert, ski.0.as_bytes()),
    }
}

fn sid_string(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => issuer_serial_string(ias),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("ski={}", hex_upper(ski.0.as_bytes()))
        }
    }
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

// --- parsing -----------------------------------------------------------------------

/// The blob as OpenSSL sees it, and the same structure as the `cms` crate
/// reads it from OpenSSL's DER re-encoding.
struct Parsed<'a> {
    raw: &'a [u8],
    ossl: CmsContentInfo,
    info: ContentInfo,
}

fn parse(der: &[u8]) -> Result<Parsed<'_>, String> {
    let ossl = CmsContentInfo::from_der(der).map_err(|e| format!("not CMS: {}", reasons(&e)))?;
    let norm = ossl
        .to_der()
        .map_err(|e| format!("cannot re-encode CMS: {}", reasons(&e)))?;
    let info = ContentInfo::from_der(&norm).map_err(|e| format!("malformed CMS: {e}"))?;
    Ok(Parsed {
        raw: der,
        ossl,
        info,
    })
}

/// What a CMS blob is: `enveloped-data`, `auth-enveloped-data`,
/// `signed-data`, `compressed-data`, `data`, …, or the dotted OID.
pub fn content_type(der: &[u8]) -> Option<String> {
    if let Ok(ci) = ContentInfo::from_der(der) {
        return Some(content_type_name(&ci.content_type));
    }
    // BER (indefinite lengths from streaming tools): let OpenSSL re-encode.
    let ossl = CmsContentInfo::from_der(der).ok()?;
    let norm = ossl.to_der().ok()?;
    ContentInfo::from_der(&norm)
        .ok()
        .map(|ci| content_type_name(&ci.content_type))
}

/// Read a SET OF element by element, accepting duplicates and any order
/// (real signers put the same certificate in twice; the `cms` crate's
/// `SetOfVec` refuses that).
fn set_elements<'a, T: Decode<'a>>(set: AnyRef<'a>) -> der::Result<Vec<T>> {
    let mut r = SliceReader::new(set.value())?;
    let mut v = Vec::new();
    while !r.is_finished() {
        v.push(T::decode(&mut r)?);
    }
    Ok(v)
}

fn context_tag(n: TagNumber) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: n,
    }
}

fn expect_set<'a, R: Reader<'a>>(r: &mut R) -> der::Result<AnyRef<'a>> {
    let set = AnyRef::decode(r)?;
    if set.tag() != Tag::Set {
        return Err(der::Error::new(
            der::ErrorKind::TagUnexpected {
                expected: Some(Tag::Set),
                actual: set.tag(),
            },
            r.position(),
        ));
    }
    Ok(set)
}

/// EnvelopedData (RFC 5652) and AuthEnvelopedData (RFC 5083; the `cms`
/// crate 0.2 has no type for it) share their first fields; read as far as
/// the encrypted content info. OpenSSL checks the rest.
struct EnvelopedHead {
    recip_infos: Vec<RecipientInfo>,
    content: EncryptedContentInfo,
}

impl FixedTag for EnvelopedHead {
    const TAG: Tag = Tag::Sequence;
}

impl<'a> DecodeValue<'a> for EnvelopedHead {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let _version = CmsVersion::decode(r)?;
            if r.peek_tag()? == context_tag(TagNumber::N0) {
                let _originator = AnyRef::decode(r)?;
            }
            let recip_infos = set_elements::<RecipientInfo>(expect_set(r)?)?;
            let content = EncryptedContentInfo::decode(r)?;
            // unprotectedAttrs / authAttrs, mac, unauthAttrs: OpenSSL's job.
            let rest = r.remaining_len();
            r.read_slice(rest)?;
            Ok(EnvelopedHead {
                recip_infos,
                content,
            })
        })
    }
}

/// SignedData as far as popcrypt reads it, leniently: certificates are kept
/// as their original DER, SETs may hold duplicates.
struct SignedLite {
    encap: EncapsulatedContentInfo,
    certs: Vec<Vec<u8>>,
    signers: Vec<SignerInfo>,
}

impl FixedTag for SignedLite {
    const TAG: Tag = Tag::Sequence;
}

impl<'a> DecodeValue<'a> for SignedLite {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let _version = CmsVersion::decode(r)?;
            let _digest_algorithms = expect_set(r)?;
            let encap = EncapsulatedContentInfo::decode(r)?;
            let mut certs = Vec::new();
            if r.peek_tag()? == context_tag(TagNumber::N0) {
                let set = AnyRef::decode(r)?;
                for c in set_elements::<AnyRef<'a>>(set)? {
                    // CertificateChoices: only plain certificates (SEQUENCE).
                    if c.tag() == Tag::Sequence {
                        certs.push(c.to_der()?);
                    }
                }
            }
            if r.peek_tag()? == context_tag(TagNumber::N1) {
                let _crls = AnyRef::decode(r)?;
            }
            let signers = set_elements::<SignerInfo>(expect_set(r)?)?;
            Ok(SignedLite {
                encap,
                certs,
                signers,
            })
        })
    }
}

// --- decryption -------------------------------------------------------------------

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
}

fn recipient_strings(infos: &[RecipientInfo]) -> Vec<String> {
    let mut v = Vec::new();
    for ri in infos {
        match ri {
            RecipientInfo::Ktri(k) => v.push(match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(ias) => issuer_serial_string(ias),
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    format!("ski={}", hex_upper(ski.0.as_bytes()))
                }
            }),
            RecipientInfo::Kari(k) => {
                for rek in k.recipient_enc_keys.iter() {
                    v.push(match &rek.rid {
                        KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) => {
                            issuer_serial_string(ias)
                        }
                        KeyAgreeRecipientIdentifier::RKeyId(r) => {
                            format!("ski={}", hex_upper(r.subject_key_identifier.0.as_bytes()))
                        }
                    });
                }
            }
            RecipientInfo::Kekri(k) => v.push(format!(
                "kek={}",
                hex_upper(k.kek_id.kek_identifier.as_bytes())
            )),
            RecipientInfo::Pwri(_) => v.push("password recipient".into()),
            RecipientInfo::Ori(o) => v.push(format!("other recipient type {}", o.ori_type)),
        }
    }
    v
}

/// Decrypt EnvelopedData or AuthEnvelopedData (DER or BER). `cap` bounds the
/// plaintext.
pub fn decrypt(keys: &SmimeKeys, der: &[u8], cap: usize) -> Result<Decrypted, SmimeError> {
    let parsed = parse(der).map_err(SmimeError::Corrupt)?;
    let ctype = parsed.info.content_type.to_string();
    let auth_enveloped = match ctype.as_str() {
        OID_ENVELOPED_DATA => false,
        OID_AUTH_ENVELOPED_DATA => true,
        _ => {
            return Err(SmimeError::Other(format!(
                "not encrypted: the CMS content type is {}",
                content_type_name(&parsed.info.content_type)
            )))
        }
    };
    let head: EnvelopedHead = parsed.info.content.decode_as().map_err(|e| {
        SmimeError::Corrupt(format!(
            "malformed {}: {e}",
            content_type_name(&parsed.info.content_type)
        ))
    })?;
    let (recip_infos, eci) = (head.recip_infos, head.content);
    let alg_oid = eci.content_enc_alg.oid.to_string();
    let known = CONTENT_CIPHERS.iter().find(|(o, ..)| *o == alg_oid);
    let (algorithm, legacy_algorithm) = match known {
        Some((_, name, legacy, _)) => (name.to_string(), *legacy),
        None => (alg_oid.clone(), false),
    };
    if let Some((_, name, _, false)) = known {
        return Err(SmimeError::Unsupported(format!(
            "content encryption {name} is not supported by OpenSSL's CMS"
        )));
    }
    let mut recipients = recipient_strings(&recip_infos);
    if recipients.len() > MAX_LISTED_RECIPIENTS {
        let more = recipients.len() - MAX_LISTED_RECIPIENTS;
        recipients.truncate(MAX_LISTED_RECIPIENTS);
        recipients.push(format!("and {more} more"));
    }
    if let Some(ct) = &eci.encrypted_content {
        // Block-cipher and AEAD plaintext is never longer than the ciphertext.
        if ct.as_bytes().len() > cap.saturating_add(16) {
            return Err(SmimeError::TooLarge(cap));
        }
    } else {
        return Err(SmimeError::Unsupported(
            "detached encrypted content (no encryptedContent)".into(),
        ));
    }
    if legacy_algorithm {
        legacy_provider();
    }
    // Free the copy of the ciphertext before decrypting.
    drop(eci);
    // Our identities named as recipients (read with the `cms` crate): OpenSSL
    // 3.0's CMS_decrypt returns an empty error queue when the key type fits
    // a RecipientInfo type but the certificate matches none, so "not for us"
    // cannot be told from its errors alone. RecipientInfos for other people
    // cost a comparison each, never a private-key operation; at most
    // MAX_KEY_ATTEMPTS named identities are tried with their key.
    let named_flags = named_recipients(&keys.identities, &recip_infos);
    let named: Vec<&Identity> = keys
        .identities
        .iter()
        .zip(&named_flags)
        .filter(|(_, n)| **n)
        .map(|(id, _)| id)
        .collect();
    if named.len() > MAX_KEY_ATTEMPTS {
        tracing::warn!(
            named = named.len(),
            tried = MAX_KEY_ATTEMPTS,
            "more of our S/MIME identities are named as recipients than are tried"
        );
    }
    // When our reading names none of them, OpenSSL's own certificate
    // comparison (which may accept an encoding the `cms` crate refuses) gets
    // one try per identity: it uses the key only on a RecipientInfo that
    // names the certificate, so these tries cost no key operation otherwise.
    let tries: Vec<(&Identity, bool)> = if named.is_empty() {
        keys.identities.iter().map(|id| (id, false)).collect()
    } else {
        named.iter().map(|id| (*id, true)).collect()
    };
    let mut first_error: Option<(String, ErrorStack)> = None;
    for (id, named) in tries.into_iter().take(MAX_KEY_ATTEMPTS) {
        count(&PRIVATE_KEY_TRIES);
        match parsed.ossl.decrypt(&id.key, &id.cert) {
            Ok(content) => {
                if content.len() > cap {
                    return Err(SmimeError::TooLarge(cap));
                }
                return Ok(Decrypted {
                    content,
                    auth_enveloped,
                    algorithm,
                    legacy_algorithm,
                });
            }
            Err(e) => {
                if named && first_error.is_none() {
                    first_error = Some((id.subject.clone(), e));
                }
            }
        }
    }
    match first_error {
        None => Err(SmimeError::NotRecipient { recipients }),
        Some((subject, e)) => Err(classify_decrypt_error(
            &e,
            &algorithm,
            auth_enveloped,
            &subject,
        )),
    }
}

/// How one of our certificates is named in a RecipientInfo, read once.
struct OwnName<'a> {
    cert: &'a X509Ref,
    /// The serial number's content octets as encoded (see
    /// [`cert_matches_issuer_serial`]); None when the `cms` crate cannot read
    /// the certificate.
    serial: Option<Vec<u8>>,
}

fn own_name(cert: &X509Ref) -> OwnName<'_> {
    let serial = cert
        .to_der()
        .ok()
        .and_then(|der| cms::cert::x509::Certificate::from_der(&der).ok())
        .map(|c| c.tbs_certificate.serial_number.as_bytes().to_vec());
    OwnName { cert, serial }
}

/// One recipient identifier, with its issuer parsed by OpenSSL once.
enum Rid {
    IssuerSerial(Option<openssl::x509::X509Name>, Vec<u8>),
    Ski(Vec<u8>),
}

impl Rid {
    fn names(&self, own: &OwnName<'_>) -> bool {
        match self {
            Rid::IssuerSerial(Some(issuer), serial) => {
                own.serial.as_deref() == Some(serial.as_slice())
                    && own
                        .cert
                        .issuer_name()
                        .try_cmp(issuer)
                        .is_ok_and(|o| o == std::cmp::Ordering::Equal)
            }
            Rid::IssuerSerial(None, _) => false,
            Rid::Ski(ski) => cert_matches_ski(own.cert, ski),
        }
    }
}

fn rids(ri: &RecipientInfo) -> Vec<Rid> {
    let ias = |ias: &cms::cert::IssuerAndSerialNumber| {
        Rid::IssuerSerial(
            x509_name_from(&ias.issuer),
            ias.serial_number.as_bytes().to_vec(),
        )
    };
    match ri {
        RecipientInfo::Ktri(k) => vec![match &k.rid {
            RecipientIdentifier::IssuerAndSerialNumber(i) => ias(i),
            RecipientIdentifier::SubjectKeyIdentifier(ski) => Rid::Ski(ski.0.as_bytes().to_vec()),
        }],
        RecipientInfo::Kari(k) => k
            .recipient_enc_keys
            .iter()
            .map(|rek| match &rek.rid {
                KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(i) => ias(i),
                KeyAgreeRecipientIdentifier::RKeyId(r) => {
                    Rid::Ski(r.subject_key_identifier.0.as_bytes().to_vec())
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// For each identity, whether some RecipientInfo names its certificate. One
/// pass over the RecipientInfos; each identifier is read once.
fn named_recipients(identities: &[Identity], infos: &[RecipientInfo]) -> Vec<bool> {
    let own: Vec<OwnName<'_>> = identities.iter().map(|id| own_name(&id.cert)).collect();
    let mut named = vec![false; own.len()];
    for ri in infos {
        if named.iter().all(|n| *n) {
            break;
        }
        for rid in rids(ri) {
            for (o, n) in own.iter().zip(named.iter_mut()) {
                if !*n && rid.names(o) {
                    *n = true;
                }
            }
        }
    }
    named
}

fn classify_decrypt_error(
    e: &ErrorStack,
    algorithm: &str,
    auth: bool,
    subject: &str,
) -> SmimeError {
    let r = reasons(e);
    let lower = r.to_ascii_lowercase();
    if lower.contains("no matching recipient") {
        // The certificate is named, but OpenSSL has no RecipientInfo type
        // for its key type (e.g. X25519 key agreement in OpenSSL 3.0).
        return SmimeError::Unsupported(format!(
            "the key type of {subject} is not supported for this recipient by OpenSSL's CMS"
        ));
    }
    if lower.contains("unsupported")
        || lower.contains("not supported")
        || lower.contains("unknown cipher")
        || lower.contains("unknown digest")
        || lower.contains("unknown algorithm")
    {
        return SmimeError::Unsupported(format!("{algorithm}: {r}"));
    }
    if auth {
        SmimeError::Corrupt(format!(
            "authentication failed ({algorithm}): the message was modified or is not for this key ({r})"
        ))
    } else {
        SmimeError::Corrupt(format!(
            "decryption failed ({algorithm}): corrupt data or not encrypted for this key ({r})"
        ))
    }
}

// --- signatures ---------------------------------------------------------------------

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
        Err(e) => return (None, vec![bad(format!("unreadable signature: {e}"))]),
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
    let verdicts = verify_signed(keys, parsed, &sd, None);
    (content, verdicts)
}

/// Verify a detached signature (DER/BER of the `application/pkcs7-signature`
/// part) over the exact bytes of the first MIME part. When the bytes do not
/// verify as given and contain bare LF, they are verified once more in
/// canonical CRLF form (RFC 8551 §3.1.1), as OpenSSL's own S/MIME reader does.
pub fn verify_detached(keys: &SmimeKeys, sig_der: &[u8], data: &[u8]) -> Vec<SigVerdict> {
    let parsed = match parse(sig_der) {
        Ok(p) => p,
        Err(e) => return vec![bad(format!("unreadable signature: {e}"))],
    };
    let sd = match signed_data(&parsed.info) {
        Ok(sd) => sd,
        Err(v) => return vec![v],
    };
    verify_signed(keys, parsed, &sd, Some(data))
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

/// Replace bare LF by CRLF.
fn canonical_crlf(data: &[u8]) -> Option<Vec<u8>> {
    let bare = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !bare {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Some(out)
}

struct SignerFacts {
    /// The signer identifier matches more than one certificate.
    ambiguous: bool,
    cert: Option<X509>,
    time: Option<i64>,
    policy: Option<String>,
    unsupported: Option<String>,
}

fn signing_time(si: &SignerInfo) -> Option<i64> {
    let attrs = si.signed_attrs.as_ref()?;
    let attr = attrs.iter().find(|a| oid_is(&a.oid, OID_SIGNING_TIME))?;
    let v = attr.values.iter().next()?;
    let t = Time::from_der(&v.to_der().ok()?).ok()?;
    Some(t.to_unix_duration().as_secs() as i64)
}

fn algorithm_policy(si: &SignerInfo) -> (Option<String>, Option<String>) {
    let d = si.digest_alg.oid.to_string();
    let s = si.signature_algorithm.oid.to_string();
    let weak = WEAK_ALGORITHMS
        .iter()
        .find(|(o, _)| *o == d || *o == s)
        .map(|(_, n)| format!("weak signature algorithm {n}"));
    let unsupported = UNSUPPORTED_SIGNATURES
        .iter()
        .find(|(o, _)| *o == s)
        .map(|(_, n)| format!("unsupported signature algorithm {n} (OpenSSL 3.0 CMS)"));
    (weak, unsupported)
}

fn verify_signed(
    keys: &SmimeKeys,
    parsed: Parsed<'_>,
    sd: &SignedLite,
    detached: Option<&[u8]>,
) -> Vec<SigVerdict> {
    let signers: Vec<&SignerInfo> = sd.signers.iter().collect();
    let n = signers.len();
    if n == 0 {
        return vec![bad("no signer (the signature holds no SignerInfo)")];
    }
    if n > MAX_SIGNER_INFOS {
        // Nothing is checked: the cost of a signature must not grow with
        // what the sender writes.
        return vec![bad(format!("too many signers: {n}"))];
    }
    let all = |v: SigVerdict| vec![v; n];
    let eci = &sd.encap;
    if !oid_is(&eci.econtent_type, OID_DATA) {
        return all(bad(format!(
            "the signed content type is {}, not data",
            content_type_name(&eci.econtent_type)
        )));
    }
    match (detached.is_some(), eci.econtent.is_some()) {
        (true, true) => {
            return all(bad(
                "a detached signature that also carries signed content (eContent): \
                 the signature does not cover the displayed part",
            ))
        }
        (false, false) => return all(bad("opaque signature without signed content")),
        _ => {}
    }

    // Certificates: ours (candidates) first, then those in the message, as
    // CMS_verify searches them.
    let candidates = keys.candidate_certs();
    let embedded: Vec<X509> = sd
        .certs
        .iter()
        .filter_map(|d| X509::from_der(d).ok())
        .collect();
    let facts: Vec<SignerFacts> = signers
        .iter()
        .map(|si| {
            // Every distinct certificate the identifier matches: OpenSSL
            // may pick another one than we would, so more than one means
            // the signer is ambiguous.
            let mut matching: Vec<X509> = Vec::new();
            for c in candidates.iter().chain(embedded.iter()) {
                if signer_matches(c, &si.sid) {
                    push_unique(&mut matching, c.clone());
                }
            }
            let ambiguous = matching.len() > 1;
            let cert = matching.into_iter().next();
            let (policy, unsupported) = algorithm_policy(si);
            SignerFacts {
                ambiguous,
                cert,
                time: signing_time(si),
                policy,
                unsupported,
            }
        })
        .collect();

    let mut certs_stack = match Stack::new() {
        Ok(s) => s,
        Err(e) => return all(bad(format!("OpenSSL: {}", reasons(&e)))),
    };
    for c in &candidates {
        if certs_stack.push(c.clone()).is_err() {
            return all(bad("OpenSSL: cannot build a certificate stack"));
        }
    }
    let mut ossl = parsed.ossl;

    // 1. The signature mathematics, for all signers at once.
    let flags = CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY;
    let mut data_used: Option<Vec<u8>> = detached.map(|d| d.to_vec());
    let mut math = cms_verify(&mut ossl, &certs_stack, None, data_used.as_deref(), flags);
    if math.is_err() {
        if let Some(canon) = detached.and_then(canonical_crlf) {
            if let Ok(mut again) = CmsContentInfo::from_der(parsed.raw) {
                if cms_verify(&mut again, &certs_stack, None, Some(&canon), flags).is_ok() {
                    math = Ok(());
                    data_used = Some(canon);
                }
            }
        }
    }
    if let Err(e) = math {
        if has_reason(&e, "signer certificate not found") {
            return facts
                .iter()
                .zip(&signers)
                .map(|(f, si)| match &f.cert {
                    None => SigVerdict::UnknownSigner {
                        who: format!("certificate not in the message: {}", sid_string(&si.sid)),
                    },
                    Some(_) => bad(
                        "not verifiable: another signer's certificate is missing from the message",
                    ),
                })
                .collect();
        }
        let r = reasons(&e);
        return facts
            .iter()
            .map(|f| {
                if let Some(u) = &f.unsupported {
                    SigVerdict::Rejected { reason: u.clone() }
                } else if n == 1 {
                    bad(format!("the signature does not verify: {r}"))
                } else {
                    bad(format!(
                        "one of the {n} signatures does not verify and OpenSSL cannot tell which: {r}"
                    ))
                }
            })
            .collect();
    }

    // 2. Per signer: policy, signing time, certificate chain.
    let now = now_secs();
    let mut verdicts: Vec<SigVerdict> = Vec::with_capacity(n);
    let mut untrusted = match Stack::new() {
        Ok(s) => s,
        Err(e) => return all(bad(format!("OpenSSL: {}", reasons(&e)))),
    };
    // Intermediates come from the message only (as in CMS_verify); nothing
    // outside the trust store is trusted.
    for c in &embedded {
        let _ = untrusted.push(c.clone());
    }
    for (f, si) in facts.iter().zip(&signers) {
        let Some(cert) = &f.cert else {
            verdicts.push(SigVerdict::UnknownSigner {
                who: format!("certificate not in the message: {}", sid_string(&si.sid)),
            });
            continue;
        };
        if f.ambiguous {
            verdicts.push(bad(
                "the signer identifier matches several certificates: the signer is ambiguous",
            ));
            continue;
        }
        if let Some(p) = &f.policy {
            verdicts.push(SigVerdict::Rejected { reason: p.clone() });
            continue;
        }
        if let Some(t) = f.time {
            if t > now + FUTURE_SKEW_SECS {
                verdicts.push(SigVerdict::Rejected {
                    reason: format!("signing time {} is in the future", format_time(t)),
                });
                continue;
            }
        }
        let at = f.time.unwrap_or(now);
        verdicts.push(chain_verdict(keys, cert, &untrusted, at, f.time));
    }

    // 3. The good signers are confirmed with OpenSSL's complete CMS_verify
    // (chain, purpose, time and signature of every signer, with the
    // certificates OpenSSL itself picks): with several signers, our
    // per-signer view and OpenSSL's could otherwise disagree. One call
    // covers every signer, so it runs once per message: the store verifies
    // as of one time, the good signers' signingTime (or now). Signers with
    // different signing times (not seen in real mail) are confirmed once
    // per distinct time, at most MAX_SIGNER_INFOS calls.
    let mut times: Vec<i64> = Vec::new();
    for (v, f) in verdicts.iter().zip(&facts) {
        let at = f.time.unwrap_or(now);
        if matches!(v, SigVerdict::Good { .. }) && !times.contains(&at) {
            times.push(at);
        }
    }
    for at in times {
        let confirmed = keys.store_at(at).and_then(|store| {
            let mut fresh = CmsContentInfo::from_der(parsed.raw)?;
            cms_verify(
                &mut fresh,
                &certs_stack,
                Some(&store),
                data_used.as_deref(),
                CMSOptions::BINARY,
            )
        });
        if let Err(e) = confirmed {
            for (v, f) in verdicts.iter_mut().zip(&facts) {
                if matches!(v, SigVerdict::Good { .. }) && f.time.unwrap_or(now) == at {
                    if let Some(cert) = &f.cert {
                        tracing::warn!(signer = %name_string(cert.subject_name()), error = %reasons(&e),
                            "CMS_verify disagrees with the per-signer checks");
                    }
                    *v = bad(format!("the signature does not verify: {}", reasons(&e)));
                }
            }
        }
    }
    verdicts
}

// X509_V_ERR_* codes (stable OpenSSL ABI values).
const V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE: i32 = 4;
const V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
const V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const V_ERR_CERT_UNTRUSTED: i32 = 27;

fn chain_verdict(
    keys: &SmimeKeys,
    cert: &X509,
    untrusted: &openssl::stack::StackRef<X509>,
    at: i64,
    signing_time: Option<i64>,
) -> SigVerdict {
    let subject = name_string(cert.subject_name());
    let who = format!(
        "subject={subject}, issuer={}",
        name_string(cert.issuer_name())
    );
    if !keys.has_trust() {
        return SigVerdict::UnknownSigner { who };
    }
    let result = keys.store_at(at).and_then(|store| {
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, cert, untrusted, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error(), c.error_depth()))
        })
    });
    let (ok, err, depth) = match result {
        Ok(r) => r,
        Err(e) => return bad(format!("certificate check failed: {}", reasons(&e))),
    };
    if ok {
        return SigVerdict::Good {
            emails: cert_emails(cert),
            subject,
            signing_time,
        };
    }
    let when = format!(
        "{} ({})",
        format_time(at),
        if signing_time.is_some() {
            "signingTime"
        } else {
            "now; no signingTime"
        }
    );
    let what = if depth == 0 {
        "the signer certificate".to_string()
    } else {
        format!("a CA certificate in the chain (depth {depth})")
    };
    match err.as_raw() {
        V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | V_ERR_CERT_UNTRUSTED => SigVerdict::UnknownSigner { who },
        V_ERR_CERT_HAS_EXPIRED => SigVerdict::Rejected {
            reason: format!("{what} had expired at the signing time {when}"),
        },
        V_ERR_CERT_NOT_YET_VALID => SigVerdict::Rejected {
            reason: format!("{what} was not yet valid at the signing time {when}"),
        },
        V_ERR_CERT_SIGNATURE_FAILURE
        | V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE
        | V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY => bad(format!(
            "{what} has an invalid signature: {}",
            err.error_string()
        )),
        _ => SigVerdict::Rejected {
            reason: format!("{what}: {}", err.error_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_canonicalisation() {
        assert_eq!(canonical_crlf(b"a\r\nb"), None);
        assert_eq!(canonical_crlf(b"a\nb\r\n").unwrap(), b"a\r\nb\r\n");
        assert_eq!(canonical_crlf(b"\n").unwrap(), b"\r\n");
    }

    #[test]
    fn pem_block_split() {
        let text = b"junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\nx\n-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].0, "CERTIFICATE");
        assert_eq!(blocks[1].0, "PRIVATE KEY");
        assert!(blocks[1].1.ends_with(b"-----END PRIVATE KEY-----"));
    }

    #[test]
    fn serials_and_garbage() {
        assert_eq!(serial_hex(&[0, 0x80, 1]), "8001");
        assert_eq!(serial_hex(&[0]), "00");
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
        assert!(keys.is_empty());
        assert_eq!(keys.summary(), "S/MIME: 0 identities, 0 trust anchors");
    }
}
