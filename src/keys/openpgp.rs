//! OpenPGP material from `openpgp/`: certificates (to verify) and unlocked
//! secret keys (to decrypt).

use std::path::{Path, PathBuf};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::key::{SecretKeyMaterial, SecretParts, UnspecifiedRole};
use openpgp::packet::Key;
use openpgp::parse::Parse;

use super::KeyError;

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

impl PgpKeys {
    /// Add every file directly in `dir` (dotfiles and `*.md`/`*.txt` notes
    /// skipped), in path order; `password` unlocks protected secret keys.
    pub fn add_dir(&mut self, dir: &Path, password: Option<&Password>) -> Result<(), KeyError> {
        for path in files_in(dir)? {
            let bytes = std::fs::read(&path).map_err(|e| KeyError::Io {
                path: path.clone(),
                source: e,
            })?;
            self.add_bytes(&path, &bytes, password)?;
        }
        Ok(())
    }

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

fn files_in(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    super::files_in(dir, |p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n.ends_with(".md") || n.ends_with(".txt"))
    })
    .map_err(|e| KeyError::Io {
        path: dir.to_owned(),
        source: e,
    })
}

/// The files of `openpgp/` [`PgpKeys::add_dir`] reads (for the inventory).
pub(crate) fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    files_in(dir)
}
