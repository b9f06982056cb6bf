//! The key inventory for `popcrypt keys` and `popcrypt check`: every key
//! and certificate of one keys directory, described (never its secret
//! parts), and what is wrong with each.
//!
//! Unlike [`super::Keyring::load`], which stops at the first error (a
//! daemon must not start half-armed), the inventory reads every file on its
//! own and keeps going, so the operator sees every problem at once. It reads
//! the files with the same functions the keyring uses.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;

use super::PassphraseSource;

mod pgp;
mod smime;

/// What an [`Item`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// An OpenPGP certificate with (some) secret keys: your own key.
    OpenPgpSecretKey,
    /// An OpenPGP certificate: a correspondent's public key.
    OpenPgpCertificate,
    /// An S/MIME certificate with its private key.
    SmimeIdentity,
    /// An S/MIME certificate without a key in `smime/` (chain or peer).
    SmimeCertificate,
    /// A CA certificate in `trust/`.
    TrustAnchor,
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ItemKind::OpenPgpSecretKey => "OpenPGP secret key",
            ItemKind::OpenPgpCertificate => "OpenPGP certificate",
            ItemKind::SmimeIdentity => "S/MIME identity (certificate + private key)",
            ItemKind::SmimeCertificate => "S/MIME certificate (no private key)",
            ItemKind::TrustAnchor => "S/MIME trust anchor",
        })
    }
}

/// One key or certificate, described by its public parts only.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: ItemKind,
    /// The file it came from.
    pub source: PathBuf,
    /// OpenPGP fingerprint, or `issuer …, serial …` for X.509.
    pub id: String,
    /// The X.509 subject or the OpenPGP primary user ID.
    pub name: String,
    pub emails: Vec<String>,
    /// e.g. `RSA 3072`, `EdDSA 256`.
    pub algorithms: Vec<String>,
    /// What popcrypt can do with it: `decrypt`, `verify`, `trust`.
    pub capabilities: Vec<&'static str>,
    /// `YYYY-MM-DD` (UTC), or `never`.
    pub expires: String,
    /// False when a [`Finding`] is about this key or certificate.
    pub usable: bool,
}

/// Something wrong with a file or a key, and what to do about it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file (or the passphrase source) concerned.
    pub source: PathBuf,
    /// What is wrong, naming the key but never its secret.
    pub problem: String,
    /// What the operator should do.
    pub fix: String,
}

/// The inventory of one keys directory.
#[derive(Debug, Default)]
pub struct Inventory {
    pub items: Vec<Item>,
    pub findings: Vec<Finding>,
}

impl Inventory {
    /// The files of a key directory, or a finding that it cannot be read.
    fn listed<E: std::fmt::Display>(
        &mut self,
        dir: &Path,
        files: Result<Vec<std::path::PathBuf>, E>,
    ) -> Option<Vec<std::path::PathBuf>> {
        match files {
            Ok(f) => Some(f),
            Err(e) => {
                self.finding(
                    dir,
                    e.to_string(),
                    "make the directory readable by popcrypt's user",
                );
                None
            }
        }
    }

    fn finding(&mut self, source: &Path, problem: impl Into<String>, fix: impl Into<String>) {
        self.findings.push(Finding {
            source: source.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }
}

/// Describe every key and certificate in `dir` (`openpgp/`, `smime/`,
/// `trust/`, each optional) and list what is wrong with each. The
/// passphrase is read once and dropped (zeroed) before this returns.
pub fn inspect(dir: &Path, pass: &PassphraseSource) -> Inventory {
    let mut inv = Inventory::default();
    if !dir.is_dir() {
        inv.finding(
            dir,
            "keys directory does not exist",
            format!(
                "create it with `mkdir -p {0}/openpgp {0}/smime {0}/trust`, or fix `keys`",
                dir.display()
            ),
        );
        return inv;
    }
    let passphrase = match pass.read() {
        Ok(p) => p,
        Err(e) => {
            let source = pass.file.clone().unwrap_or_else(|| dir.to_owned());
            inv.finding(
                &source,
                format!("cannot read the passphrase: {e}"),
                "fix keys_passphrase_file (a file whose first line is the passphrase) or keys_passphrase_env",
            );
            None
        }
    };
    let ctx = Ctx {
        passphrase: passphrase.as_ref().map(|p| p.expose_secret()),
        pass_hint: pass_hint(pass),
    };
    let pgp_dir = dir.join("openpgp");
    if pgp_dir.is_dir() {
        pgp::inspect_dir(&pgp_dir, &ctx, &mut inv);
    }
    let smime_dir = dir.join("smime");
    if smime_dir.is_dir() {
        smime::inspect_own(&smime_dir, &ctx, &mut inv);
    }
    let trust_dir = dir.join("trust");
    if trust_dir.is_dir() {
        smime::inspect_trust(&trust_dir, &mut inv);
    }
    inv
}

/// What the inspectors share: the passphrase (borrowed) and how to tell the
/// operator to set it.
struct Ctx<'a> {
    passphrase: Option<&'a str>,
    pass_hint: String,
}

/// What to do about a missing or wrong passphrase, naming where popcrypt
/// looked (never the passphrase itself).
fn pass_hint(pass: &PassphraseSource) -> String {
    match (&pass.file, &pass.env) {
        (Some(f), _) => format!(
            "put the key's passphrase on the first line of {} (keys_passphrase_file), or re-export the key with the passphrase in it",
            f.display()
        ),
        (None, Some(v)) => format!(
            "set the environment variable {v} (keys_passphrase_env) to the key's passphrase"
        ),
        (None, None) => {
            "set keys_passphrase_file to a file (mode 600) whose first line is the key's passphrase, or keys_passphrase_env"
                .into()
        }
    }
}

/// Seconds since the epoch, now.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn date_string(secs: i64) -> String {
    let d = mail_parser::DateTime::from_timestamp(secs);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// A file's path relative to the keys directory (`smime/me.p12`), or as
/// given when it is outside it (or is the directory itself).
pub fn short_path(keys_dir: &Path, path: &Path) -> String {
    match path.strip_prefix(keys_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(date_string(951_782_400), "2000-02-29");
        assert_eq!(date_string(4_102_444_800), "2100-01-01");
        assert_eq!(date_string(-86_400), "1969-12-31");
    }

    #[test]
    fn a_missing_directory_is_one_finding() {
        let inv = inspect(Path::new("/nonexistent/keys"), &PassphraseSource::default());
        assert_eq!(inv.findings.len(), 1);
        assert!(inv.findings[0].fix.contains("mkdir -p"));
    }
}
