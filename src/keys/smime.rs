//! S/MIME material from `smime/` (own certificates and keys: PEM or
//! PKCS#12) and `trust/` (CA certificates trusted for signatures), and the
//! trust store built from it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::provider::Provider;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509PurposeId, X509};

use super::ossl::{self, reasons};
use super::x509::{cert_emails, name_string, push_unique};

// --- legacy provider -------------------------------------------------------------

static LEGACY: OnceLock<Option<Provider>> = OnceLock::new();

/// Load OpenSSL 3's `legacy` provider once (RC2/3DES PKCS#12 files, RC2
/// content), keeping the default provider available. Kept alive for the
/// life of the process.
pub(crate) fn legacy_provider() -> bool {
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
pub(crate) struct Identity {
    pub(crate) cert: X509,
    pub(crate) key: PKey<Private>,
    pub(crate) emails: Vec<String>,
    pub(crate) subject: String,
}

/// S/MIME key material: own identities (certificate + private key, to
/// decrypt), untrusted extra certificates found next to them (chains), and
/// the trust store for signatures.
#[derive(Clone, Default)]
pub struct SmimeKeys {
    pub(crate) identities: Vec<Identity>,
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
    super::files_in(dir, |p| {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        name.starts_with('.')
            || name.ends_with(".md")
            || name.ends_with(".txt")
            || name.ends_with(".passphrase")
            || name.starts_with("readme")
    })
    .map_err(|e| io_err(dir, e))
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
    pub(crate) fn candidate_certs(&self) -> Vec<X509> {
        let mut v: Vec<X509> = self.identities.iter().map(|i| i.cert.clone()).collect();
        v.extend(self.extra_certs.iter().cloned());
        v.extend(self.anchors.iter().cloned());
        v
    }

    /// The trust store, verifying as of `time` (seconds since the epoch).
    pub(crate) fn store_at(&self, time: i64) -> Result<X509Store, ErrorStack> {
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

/// What a PKCS#12 file opened with the wrong passphrase reports: its MAC
/// does not verify, or (without a MAC) the decrypted key bag is not padded
/// right.
const WRONG_PASSPHRASE: &[(ossl::Lib, ossl::Reason)] = &[
    (ossl::ERR_LIB_PKCS12, ossl::PKCS12_R_MAC_VERIFY_FAILURE),
    (ossl::ERR_LIB_EVP, ossl::EVP_R_BAD_DECRYPT),
    (ossl::ERR_LIB_PEM, ossl::PEM_R_BAD_DECRYPT),
    (ossl::ERR_LIB_PROV, ossl::PROV_R_BAD_DECRYPT),
];

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
            if ossl::any_of(&e, WRONG_PASSPHRASE) {
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
            if ossl::is_unsupported(&e) {
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

/// What one file of `smime/` holds, unpaired: certificates, private keys,
/// and certificate + key pairs (PKCS#12). For the key inventory, which
/// reports each file on its own instead of stopping at the first error.
pub(crate) type FileParts = (Vec<X509>, Vec<PKey<Private>>, Vec<(X509, PKey<Private>)>);

/// Read one file of `smime/` the way [`SmimeKeys::load`] does.
pub(crate) fn file_parts(
    path: &Path,
    passphrase: Option<&str>,
) -> Result<FileParts, SmimeKeyError> {
    let mut loose = Loose::default();
    load_own_file(path, passphrase, &mut loose)?;
    let certs = loose.certs.into_iter().map(|(_, c)| c).collect();
    let keys = loose.keys.into_iter().map(|(_, k)| k).collect();
    Ok((certs, keys, loose.identities))
}

/// The files of `smime/` (or `trust/`) [`SmimeKeys::load`] reads.
pub(crate) fn key_files(dir: &Path) -> Result<Vec<PathBuf>, SmimeKeyError> {
    files_in(dir)
}

/// The certificates of one `trust/` file, read as [`SmimeKeys::load`] reads them.
pub(crate) fn trust_file_certs(path: &Path) -> Result<Vec<X509>, SmimeKeyError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let certs = if looks_like_pem(&bytes) {
        X509::stack_from_pem(&bytes).map_err(|e| parse_err(path, reasons(&e)))?
    } else {
        vec![X509::from_der(&bytes).map_err(|e| parse_err(path, reasons(&e)))?]
    };
    if certs.is_empty() {
        return Err(parse_err(path, "no certificate found"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn nothing_loaded() {
        let keys = SmimeKeys::default();
        assert!(keys.is_empty());
        assert_eq!(keys.summary(), "S/MIME: 0 identities, 0 trust anchors");
    }
}
