//! The keys directory → an in-memory keyring.
//!
//! ```text
//! keys/
//!   openpgp/   secret keys (to decrypt) and correspondents' certificates (to verify)
//!   smime/     your certificate and key (PEM or PKCS#12)
//!   trust/     CA certificates trusted for S/MIME signatures
//! ```
//! Every part is optional. Secret keys are unlocked once, here.
//!
//! The passphrase is held as a [`SecretString`] (redacted `Debug`, zeroed on
//! drop) only while the keys are unlocked. [`permission_findings`] lists key
//! and passphrase files that users other than the owner may read.

use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sequoia_openpgp as openpgp;
use zeroize::Zeroizing;

use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::key::{SecretKeyMaterial, SecretParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::parse::Parse;

/// Where a key passphrase comes from (never the command line).
#[derive(Debug, Clone, Default)]
pub struct PassphraseSource {
    /// A file whose first line is the passphrase.
    pub file: Option<PathBuf>,
    /// An environment variable holding the passphrase.
    pub env: Option<String>,
}

/// Largest passphrase file read (its first line is the passphrase).
pub const MAX_PASSPHRASE_FILE: usize = 64 * 1024;

impl PassphraseSource {
    /// The passphrase, if one is configured: the first line of the file
    /// (CR LF or LF ends it), else the environment variable. Every copy made
    /// on the way is zeroed; the caller drops the result as soon as the keys
    /// are unlocked.
    pub fn read(&self) -> Result<Option<SecretString>, KeyError> {
        if let Some(f) = &self.file {
            return read_passphrase_file(f).map(Some);
        }
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) => {
                    let v = Zeroizing::new(v);
                    Ok(Some(secret_string(&v)))
                }
                Err(_) => Err(KeyError::MissingEnv(var.clone())),
            };
        }
        Ok(None)
    }
}

/// A [`SecretString`] in an allocation of exactly the text's size (going
/// through `String` could leave a copy behind when it shrinks).
fn secret_string(text: &str) -> SecretString {
    SecretString::new(Box::<str>::from(text))
}

fn read_passphrase_file(path: &Path) -> Result<SecretString, KeyError> {
    let io = |source: std::io::Error| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    // One buffer of fixed size that never grows, zeroed when dropped.
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE_FILE]);
    let mut filled = 0;
    while filled < buf.len() && !buf[..filled].contains(&b'\n') {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    let data = &buf[..filled];
    let line = match data.iter().position(|&b| b == b'\n') {
        Some(i) => &data[..i],
        None if filled == buf.len() => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the passphrase line is longer than {MAX_PASSPHRASE_FILE} octets"),
            )))
        }
        None => data,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the passphrase is not UTF-8",
        ))
    })?;
    Ok(secret_string(text))
}

/// A start-up error about keys: names the file and key, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not readable as OpenPGP: {reason}", .path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{}: wrong passphrase for secret key {fingerprint}", .file.display())]
    WrongPassphrase { file: PathBuf, fingerprint: String },
    #[error("{}: secret key {fingerprint} is passphrase-protected, but no passphrase is configured (set keys_passphrase_file or keys_passphrase_env)", .file.display())]
    NoPassphrase { file: PathBuf, fingerprint: String },
    #[error("keys directory {} does not exist", .0.display())]
    NoDir(PathBuf),
    #[error(transparent)]
    Smime(#[from] crate::message::smime::SmimeKeyError),
    #[error("the passphrase environment variable {0} is not set")]
    MissingEnv(String),
}

/// An unlocked secret (sub)key.
pub struct SecretKey {
    /// The certificate it belongs to (public parts).
    pub cert: Cert,
    /// The unlocked key.
    pub key: Key<SecretParts, UnspecifiedRole>,
}

/// OpenPGP material.
#[derive(Default)]
pub struct PgpKeys {
    /// Every certificate (public parts), own keys included, for verification.
    pub certs: Vec<Cert>,
    /// Unlocked secret keys and subkeys, for decryption.
    pub secrets: Vec<SecretKey>,
}

impl std::fmt::Debug for PgpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgpKeys")
            .field("certs", &self.certs.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Everything loaded from the keys directory.
#[derive(Debug, Default)]
pub struct Keyring {
    pub openpgp: PgpKeys,
    pub smime: crate::message::smime::SmimeKeys,
}

impl Keyring {
    /// True when nothing was loaded (popcrypt only relays).
    pub fn is_empty(&self) -> bool {
        self.openpgp.certs.is_empty() && self.openpgp.secrets.is_empty() && self.smime.is_empty()
    }

    /// One line per kind of material, for the start-up log.
    pub fn summary(&self) -> Vec<String> {
        let own: Vec<String> = self
            .openpgp
            .secrets
            .iter()
            .map(|s| s.key.fingerprint().to_hex())
            .collect();
        vec![
            format!(
                "OpenPGP: {} certificate(s), {} unlocked secret key(s){}",
                self.openpgp.certs.len(),
                own.len(),
                if own.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", own.join(", "))
                }
            ),
            self.smime.summary(),
        ]
    }

    /// Load `dir` (each subdirectory optional); S/MIME signatures are
    /// trusted only through `trust/`.
    pub fn load(dir: &Path, pass: &PassphraseSource) -> Result<Keyring, KeyError> {
        Keyring::load_with(dir, pass, false)
    }

    /// Load `dir`; with `smime_system_roots`, S/MIME signatures chaining to
    /// the system's CA store are trusted too.
    pub fn load_with(
        dir: &Path,
        pass: &PassphraseSource,
        smime_system_roots: bool,
    ) -> Result<Keyring, KeyError> {
        if !dir.is_dir() {
            return Err(KeyError::NoDir(dir.to_owned()));
        }
        let mut ring = Keyring::default();
        // Dropped (and zeroed) when this function returns.
        let passphrase = pass.read()?;
        let smime_dir = dir.join("smime");
        let trust_dir = dir.join("trust");
        ring.smime = crate::message::smime::SmimeKeys::load(
            smime_dir.is_dir().then_some(smime_dir.as_path()),
            trust_dir.is_dir().then_some(trust_dir.as_path()),
            passphrase.as_ref().map(|p| p.expose_secret()),
            smime_system_roots,
        )?;
        let pgp_dir = dir.join("openpgp");
        if pgp_dir.is_dir() {
            // sequoia keeps its copy encrypted in memory and zeroes it.
            let password = passphrase
                .as_ref()
                .map(|p| Password::from(p.expose_secret()));
            for path in files_in(&pgp_dir)? {
                let bytes = std::fs::read(&path).map_err(|e| KeyError::Io {
                    path: path.clone(),
                    source: e,
                })?;
                ring.openpgp.add_bytes(&path, &bytes, password.as_ref())?;
            }
        }
        Ok(ring)
    }
}

/// What a file flagged by [`permission_findings`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFileKind {
    /// A file under `openpgp/` or `smime/` that holds (or may hold) secret
    /// key material.
    SecretKey,
    /// The file named by `keys_passphrase_file`.
    PassphraseFile,
}

impl std::fmt::Display for SecretFileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretFileKind::SecretKey => "secret key file",
            SecretFileKind::PassphraseFile => "passphrase file",
        })
    }
}

/// A secret file whose permissions give users other than its owner access
/// (`mode & 0o077 != 0`). Names the file and its mode, never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionFinding {
    pub path: PathBuf,
    /// The permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub kind: SecretFileKind,
}

impl std::fmt::Display for PermissionFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} has mode {:04o}: users other than its owner can access it (chmod 600)",
            self.path.display(),
            self.kind,
            self.mode
        )
    }
}

/// Depth to which `openpgp/` and `smime/` are searched for files.
const PERMISSION_SCAN_DEPTH: usize = 4;

/// Largest file read to tell secret from public material.
const PERMISSION_SNIFF_LIMIT: u64 = 16 << 20;

/// Key and passphrase files that users other than their owner may read or
/// change: every file under `keys_dir`'s `openpgp/` and `smime/` that holds
/// (or may hold) secret key material, and the passphrase file. Files with
/// public material only (certificates) are not findings. Unreadable
/// entries are skipped: loading the keys reports them. For the start-up log
/// and for `check`; the caller decides how to report.
pub fn permission_findings(
    keys_dir: Option<&Path>,
    passphrase_file: Option<&Path>,
) -> Vec<PermissionFinding> {
    let mut out = Vec::new();
    if let Some(dir) = keys_dir {
        let mut files = Vec::new();
        for sub in ["openpgp", "smime"] {
            collect_files(&dir.join(sub), PERMISSION_SCAN_DEPTH, &mut files);
        }
        files.sort();
        for path in files {
            let Some(mode) = group_or_world_mode(&path) else {
                continue;
            };
            if may_hold_secret(&path) {
                out.push(PermissionFinding {
                    path,
                    mode,
                    kind: SecretFileKind::SecretKey,
                });
            }
        }
    }
    if let Some(path) = passphrase_file {
        if let Some(mode) = group_or_world_mode(path) {
            out.push(PermissionFinding {
                path: path.to_owned(),
                mode,
                kind: SecretFileKind::PassphraseFile,
            });
        }
    }
    out
}

/// The permission bits of `path` (symlinks followed) when any group or
/// other bit is set.
fn group_or_world_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => out.push(path),
            Ok(m) if m.is_dir() && depth > 0 => collect_files(&path, depth - 1, out),
            _ => {}
        }
    }
}

/// Whether a file under `openpgp/` or `smime/` may hold secret material.
/// Only files recognised as public (OpenPGP certificates without secret
/// parts, X.509 certificates) are not; anything unknown counts as secret.
fn may_hold_secret(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if [".p12", ".pfx", ".key", ".passphrase"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        return true;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return true;
    };
    // Zeroed when dropped: it may be an unprotected secret key.
    let mut bytes = Zeroizing::new(Vec::new());
    if file
        .take(PERMISSION_SNIFF_LIMIT)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return true;
    }
    if bytes.windows(11).any(|w| w == b"PRIVATE KEY") {
        return true;
    }
    if pem_certificates_only(&bytes) || openssl::x509::X509::from_der(&bytes).is_ok() {
        return false;
    }
    let Ok(parser) = CertParser::from_bytes(&bytes[..]) else {
        return true;
    };
    let mut certs = 0;
    for cert in parser {
        match cert {
            Ok(c) if !c.is_tsk() => certs += 1,
            _ => return true,
        }
    }
    certs == 0
}

/// PEM text whose every block is a certificate (or CRL).
fn pem_certificates_only(bytes: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut blocks = 0;
    for (i, _) in bytes
        .windows(BEGIN.len())
        .enumerate()
        .filter(|(_, w)| *w == BEGIN)
    {
        let label = &bytes[i + BEGIN.len()..];
        if !(label.starts_with(b"CERTIFICATE-----")
            || label.starts_with(b"TRUSTED CERTIFICATE-----")
            || label.starts_with(b"X509 CRL-----"))
        {
            return false;
        }
        blocks += 1;
    }
    blocks > 0
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| KeyError::Io {
            path: dir.to_owned(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n.ends_with(".md") || n.ends_with(".txt"))
        })
        .collect();
    v.sort();
    Ok(v)
}

impl PgpKeys {
    /// Add every certificate in `bytes` (armored or binary, one or many).
    pub fn add_bytes(
        &mut self,
        path: &Path,
        bytes: &[u8],
        password: Option<&Password>,
    ) -> Result<(), KeyError> {
        let parser = CertParser::from_bytes(bytes).map_err(|e| KeyError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut any = false;
        for cert in parser {
            let cert = match cert {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable certificate");
                    continue;
                }
            };
            any = true;
            if cert.is_tsk() {
                for ka in cert.keys().secret() {
                    let key: Key<SecretParts, UnspecifiedRole> = ka.key().clone();
                    let fingerprint = key.fingerprint().to_hex();
                    if let SecretKeyMaterial::Encrypted(e) = key.secret() {
                        if !e.s2k().is_supported() {
                            // gnu-dummy (secret subkeys only) or card stubs.
                            continue;
                        }
                    }
                    if !key.secret().is_encrypted() {
                        self.secrets.push(SecretKey {
                            cert: cert.clone(),
                            key,
                        });
                        continue;
                    }
                    let Some(pw) = password else {
                        return Err(KeyError::NoPassphrase {
                            file: path.to_owned(),
                            fingerprint,
                        });
                    };
                    match key.decrypt_secret(pw) {
                        Ok(k) => self.secrets.push(SecretKey {
                            cert: cert.clone(),
                            key: k,
                        }),
                        Err(_) => {
                            return Err(KeyError::WrongPassphrase {
                                file: path.to_owned(),
                                fingerprint,
                            })
                        }
                    }
                }
            }
            self.certs.push(cert.strip_secret_key_material());
        }
        if !any {
            return Err(KeyError::Parse {
                path: path.to_owned(),
                reason: "no certificate found".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn golden(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(rel)
    }

    fn put(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn passphrase_from_file_is_the_first_line_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pp");
        for (content, want) in [
            (&b"correct horse\r\nsecond line\n"[..], "correct horse"),
            (b"correct horse\n", "correct horse"),
            (b"correct horse", "correct horse"),
            (b"", ""),
        ] {
            put(&f, content, 0o600);
            let src = PassphraseSource {
                file: Some(f.clone()),
                env: None,
            };
            let got = src.read().unwrap().unwrap();
            assert_eq!(got.expose_secret(), want);
            let shown = format!("{got:?} {:?} {src:?}", Some(&got));
            assert!(shown.contains("[REDACTED]"), "{shown}");
            assert!(!shown.contains("horse"), "{shown}");
        }
        // Too long a line, or not UTF-8: an error that does not quote it.
        put(&f, &vec![b'h'; MAX_PASSPHRASE_FILE + 10], 0o600);
        let src = PassphraseSource {
            file: Some(f.clone()),
            env: None,
        };
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains("longer than") && !e.contains("hhhh"), "{e}");
        put(&f, b"horse\xff\n", 0o600);
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && !e.contains("horse"), "{e}");
        assert!(PassphraseSource::default().read().unwrap().is_none());
    }

    #[test]
    fn passphrase_from_the_environment() {
        let var = "POPCRYPT_UNIT_TEST_PASSPHRASE_7f3a";
        std::env::set_var(var, "battery staple");
        let src = PassphraseSource {
            file: None,
            env: Some(var.into()),
        };
        let got = src.read().unwrap().unwrap();
        assert_eq!(got.expose_secret(), "battery staple");
        assert!(!format!("{got:?}").contains("staple"));
        std::env::remove_var(var);
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains(var), "{e}");
    }

    #[test]
    fn the_protected_key_unlocks_with_the_file_and_not_without() {
        let keys = golden("openpgp/keys");
        let pass = PassphraseSource {
            file: Some(keys.join("pp-user.passphrase")),
            env: None,
        };
        let ring = Keyring::load(&keys, &pass).unwrap();
        assert!(!ring.openpgp.secrets.is_empty());
        let e = Keyring::load(&keys, &PassphraseSource::default()).unwrap_err();
        assert!(matches!(e, KeyError::NoPassphrase { .. }), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let wrong = dir.path().join("wrong");
        put(&wrong, b"not the passphrase\n", 0o600);
        let e = Keyring::load(
            &keys,
            &PassphraseSource {
                file: Some(wrong),
                env: None,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("wrong passphrase") && !e.contains("not the"),
            "{e}"
        );
    }

    #[test]
    fn readable_secret_files_are_found_public_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let read = |rel: &str| std::fs::read(golden(rel)).unwrap();
        let pgp = keys.join("openpgp");
        let smime = keys.join("smime");
        // Secret material, too open.
        put(
            &pgp.join("pp-user.sec.asc"),
            &read("openpgp/keys/openpgp/pp-user.sec.asc"),
            0o644,
        );
        let (binary_tsk, _) = CertBuilder::new()
            .add_userid("x@example.org")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let mut bin = Vec::new();
        openpgp::serialize::Serialize::serialize(&binary_tsk.as_tsk(), &mut bin).unwrap();
        put(&pgp.join("binary.pgp"), &bin, 0o640);
        put(&pgp.join("nested/deeper/old.key"), b"whatever", 0o604);
        put(
            &smime.join("alice.pem"),
            &read("smime/keys-private/alice.pem"),
            0o660,
        );
        put(
            &smime.join("unknown.bin"),
            b"\x00\x01\x02 not a cert",
            0o644,
        );
        put(&smime.join("me.p12"), b"garbage", 0o620);
        // Secret material, owner only.
        put(
            &pgp.join("demo.sec.asc"),
            &read("openpgp/keys/openpgp/demo-recipient.sec.asc"),
            0o600,
        );
        put(&smime.join("own.p12"), b"garbage", 0o400);
        // Public material, readable by all: fine.
        put(
            &pgp.join("alice.pub.asc"),
            &read("openpgp/keys/openpgp/alice.pub.asc"),
            0o644,
        );
        let mut pub_bin = Vec::new();
        openpgp::serialize::Serialize::serialize(&binary_tsk, &mut pub_bin).unwrap();
        put(&pgp.join("public.pgp"), &pub_bin, 0o644);
        put(
            &smime.join("demo.crt"),
            &read("smime/keys/smime/demo-rsa4096.crt"),
            0o644,
        );
        put(
            &keys.join("trust/root.pem"),
            &read("smime/keys/trust/demo-root-ca.pem"),
            0o666,
        );
        let der = openssl::x509::X509::from_pem(&read("smime/keys/trust/demo-root-ca.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        put(&smime.join("root.der"), &der, 0o644);
        // The passphrase file.
        let pp = dir.path().join("pp");
        put(&pp, b"battery staple\n", 0o640);

        let found = permission_findings(Some(&keys), Some(&pp));
        let got: Vec<(String, u32, SecretFileKind)> = found
            .iter()
            .map(|f| {
                (
                    f.path
                        .strip_prefix(dir.path())
                        .unwrap()
                        .display()
                        .to_string(),
                    f.mode,
                    f.kind,
                )
            })
            .collect();
        use SecretFileKind::*;
        assert_eq!(
            got,
            vec![
                ("keys/openpgp/binary.pgp".into(), 0o640, SecretKey),
                (
                    "keys/openpgp/nested/deeper/old.key".into(),
                    0o604,
                    SecretKey
                ),
                ("keys/openpgp/pp-user.sec.asc".into(), 0o644, SecretKey),
                ("keys/smime/alice.pem".into(), 0o660, SecretKey),
                ("keys/smime/me.p12".into(), 0o620, SecretKey),
                ("keys/smime/unknown.bin".into(), 0o644, SecretKey),
                ("pp".into(), 0o640, PassphraseFile),
            ]
        );
        for f in &found {
            let line = f.to_string();
            assert!(line.contains(&f.path.display().to_string()), "{line}");
            assert!(line.contains(&format!("{:04o}", f.mode)), "{line}");
            assert!(
                !line.contains("PRIVATE") && !line.contains("staple"),
                "{line}"
            );
        }
        assert!(found[6]
            .to_string()
            .contains("passphrase file has mode 0640"));

        // Fixed: nothing left.
        for f in &found {
            std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(permission_findings(Some(&keys), Some(&pp)), vec![]);
        assert_eq!(permission_findings(None, None), vec![]);
        // Missing paths are not findings (loading reports them).
        assert_eq!(
            permission_findings(
                Some(&dir.path().join("nope")),
                Some(&dir.path().join("nope"))
            ),
            vec![]
        );
    }
}
