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
//! The passphrase is held as a [`secrecy::SecretString`] (redacted `Debug`, zeroed on
//! drop) only while the keys are unlocked. [`permission_findings`] lists key
//! and passphrase files that users other than the owner may read.
//!
//! `keys` depends on nothing else in popcrypt: `message` borrows the loaded
//! material (and the certificate helpers in `x509.rs`), never the other way.

use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use sequoia_openpgp::crypto::Password;

pub mod inventory;
pub mod openpgp;
pub(crate) mod ossl;
pub mod passphrase;
pub mod permissions;
pub mod smime;
pub(crate) mod x509;

pub use openpgp::{PgpKeys, SecretKey};
pub use passphrase::{PassphraseSource, MAX_PASSPHRASE_FILE};
pub use permissions::{permission_findings, PermissionFinding, SecretFileKind};
pub use smime::{SmimeKeyError, SmimeKeys};

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
    Smime(#[from] SmimeKeyError),
    #[error("the passphrase environment variable {0} is not set")]
    MissingEnv(String),
}

/// Everything loaded from the keys directory.
#[derive(Debug, Default)]
pub struct Keyring {
    pub openpgp: PgpKeys,
    pub smime: SmimeKeys,
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
        ring.smime = SmimeKeys::load(
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
            ring.openpgp.add_dir(&pgp_dir, password.as_ref())?;
        }
        Ok(ring)
    }
}

/// The regular files directly in `dir` (symlinks followed, subdirectories
/// ignored) for which `skip` is false, sorted by path.
fn files_in(dir: &Path, skip: impl Fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| !skip(p))
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    pub(crate) fn golden(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(rel)
    }

    pub(crate) fn put(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{golden, put};
    use super::*;

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
}
