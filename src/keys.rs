//! The keys directory → an in-memory keyring.
//!
//! ```text
//! keys/
//!   openpgp/   secret keys (to decrypt) and correspondents' certificates (to verify)
//!   smime/     your certificate and key (PEM or PKCS#12)
//!   trust/     CA certificates trusted for S/MIME signatures
//! ```
//! Every part is optional. Secret keys are unlocked once, here.

use std::path::{Path, PathBuf};

use sequoia_openpgp as openpgp;

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

impl PassphraseSource {
    fn read(&self) -> Result<Option<String>, KeyError> {
        if let Some(f) = &self.file {
            let text = std::fs::read_to_string(f).map_err(|e| KeyError::Io {
                path: f.clone(),
                source: e,
            })?;
            return Ok(Some(text.lines().next().unwrap_or("").to_string()));
        }
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(KeyError::MissingEnv(var.clone())),
            };
        }
        Ok(None)
    }
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
        let passphrase = pass.read()?;
        let smime_dir = dir.join("smime");
        let trust_dir = dir.join("trust");
        ring.smime = crate::message::smime::SmimeKeys::load(
            smime_dir.is_dir().then_some(smime_dir.as_path()),
            trust_dir.is_dir().then_some(trust_dir.as_path()),
            passphrase.as_deref(),
            smime_system_roots,
        )?;
        let pgp_dir = dir.join("openpgp");
        if pgp_dir.is_dir() {
            let password = passphrase.map(Password::from);
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
