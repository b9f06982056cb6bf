//! Key and passphrase files that users other than their owner can read:
//! [`permission_findings`], for the start-up log and for `check`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sequoia_openpgp::cert::prelude::*;
use sequoia_openpgp::parse::Parse;
use zeroize::Zeroizing;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testutil::{golden, put};
    use sequoia_openpgp as openpgp;
    use std::os::unix::fs::PermissionsExt;

    /// A keys directory under `root` with secret files too open, secret
    /// files for the owner only and public files readable by all; returns
    /// it and a passphrase file that is too open.
    fn lay_out_keys(root: &Path) -> (PathBuf, PathBuf) {
        let keys = root.join("keys");
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
        let pp = root.join("pp");
        put(&pp, b"battery staple\n", 0o640);
        (keys, pp)
    }

    #[test]
    fn readable_secret_files_are_found_public_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, pp) = lay_out_keys(dir.path());
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
