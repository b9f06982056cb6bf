//! The inventory of `openpgp/`: each certificate and secret key, and what
//! is wrong with them (revoked, expired, invalid under the policy, a
//! passphrase that does not unlock, an own key that cannot decrypt).

use std::path::Path;
use std::time::UNIX_EPOCH;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::Password;
use openpgp::packet::key::SecretKeyMaterial;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;

use super::{Ctx, Inventory, Item, ItemKind};

/// Every file of `dir`, as [`crate::keys::PgpKeys::add_dir`] reads them.
pub(super) fn inspect_dir(dir: &Path, ctx: &Ctx<'_>, inv: &mut Inventory) {
    let Some(files) = inv.listed(dir, super::super::openpgp::key_files(dir)) else {
        return;
    };
    let password = ctx.passphrase.map(Password::from);
    for path in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                inv.finding(
                    &path,
                    format!("cannot read: {e}"),
                    "make it readable by popcrypt's user",
                );
                continue;
            }
        };
        let mut any = false;
        match CertParser::from_bytes(&bytes) {
            Ok(parser) => {
                for cert in parser.flatten() {
                    any = true;
                    inspect_cert(&path, &cert, password.as_ref(), ctx, inv);
                }
            }
            Err(e) => inv.finding(
                &path,
                format!("not readable as OpenPGP: {e}"),
                "remove the file",
            ),
        }
        if !any {
            inv.finding(
                &path,
                "no OpenPGP certificate or key found",
                "remove the file, or export the key again with `gpg --export-secret-keys --armor` / `gpg --export --armor`",
            );
        }
    }
}

fn inspect_cert(
    path: &Path,
    cert: &Cert,
    password: Option<&Password>,
    ctx: &Ctx<'_>,
    inv: &mut Inventory,
) {
    let p = StandardPolicy::new();
    let fpr = cert.fingerprint().to_hex();
    let before = inv.findings.len();
    let unlocked = unlock(path, cert, password, ctx, inv);
    let mut item = base_item(path, cert);
    if let RevocationStatus::Revoked(_) = cert.revocation_status(&p, None) {
        inv.finding(
            path,
            format!("OpenPGP certificate {fpr} is revoked"),
            "remove it; ask its owner for their current certificate",
        );
        item.usable = false;
        inv.items.push(item);
        return;
    }
    let vc = match cert.with_policy(&p, None) {
        Ok(vc) => vc,
        Err(e) => {
            inv.finding(
                path,
                format!("OpenPGP certificate {fpr} is not valid under the standard policy: {e}"),
                "replace it with a current export from its owner (e.g. one without SHA-1 self-signatures)",
            );
            item.usable = false;
            inv.items.push(item);
            return;
        }
    };
    describe_valid(&vc, &mut item);
    if vc.alive().is_err() {
        inv.finding(
            path,
            format!("OpenPGP certificate {fpr} has expired ({})", item.expires),
            "extend its expiry (`gpg --quick-set-expire`) and export it again, or remove it",
        );
    }
    if cert.is_tsk() {
        if unlocked.encryption == 0 && unlocked.failed == 0 {
            inv.finding(
                path,
                format!("OpenPGP key {fpr} has no usable encryption-capable secret subkey: mail encrypted to it cannot be decrypted"),
                "add an encryption subkey (`gpg --quick-add-key FPR default encr`) and export the secret key again",
            );
        }
        if unlocked.encryption > 0 {
            item.capabilities.insert(0, "decrypt");
        }
    }
    item.usable = inv.findings.len() == before;
    inv.items.push(item);
}

/// What a certificate carries, before the policy is applied.
fn base_item(path: &Path, cert: &Cert) -> Item {
    let mut item = Item {
        kind: if cert.is_tsk() {
            ItemKind::OpenPgpSecretKey
        } else {
            ItemKind::OpenPgpCertificate
        },
        source: path.to_owned(),
        id: cert.fingerprint().to_hex(),
        name: String::new(),
        emails: cert
            .userids()
            .filter_map(|u| {
                u.userid()
                    .email()
                    .ok()
                    .flatten()
                    .map(str::to_ascii_lowercase)
            })
            .collect(),
        algorithms: cert
            .keys()
            .map(|ka| {
                let k = ka.key();
                match k.mpis().bits() {
                    Some(bits) => format!("{} {bits}", k.pk_algo()),
                    None => k.pk_algo().to_string(),
                }
            })
            .collect(),
        capabilities: Vec::new(),
        expires: "never".into(),
        usable: true,
    };
    item.emails.dedup();
    item
}

/// Name, expiry and verification capability of a certificate valid under
/// the policy.
fn describe_valid(vc: &ValidCert<'_>, item: &mut Item) {
    if let Ok(uid) = vc.primary_userid() {
        item.name = String::from_utf8_lossy(uid.userid().value()).into_owned();
    }
    if let Some(t) = vc.primary_key().key_expiration_time() {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        item.expires = super::date_string(secs);
    }
    if vc
        .keys()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .is_some()
    {
        item.capabilities.push("verify");
    }
}

/// How many secret keys unlocked, how many of those can decrypt now, and
/// how many failed to unlock.
#[derive(Default)]
struct Unlocked {
    encryption: usize,
    failed: usize,
}

/// Try to unlock each secret key of `cert` as the keyring does, with a
/// finding for each that does not unlock.
fn unlock(
    path: &Path,
    cert: &Cert,
    password: Option<&Password>,
    ctx: &Ctx<'_>,
    inv: &mut Inventory,
) -> Unlocked {
    let p = StandardPolicy::new();
    let mut out = Unlocked::default();
    let usable: Vec<_> = match cert.with_policy(&p, None) {
        Ok(vc) => vc
            .keys()
            .alive()
            .revoked(false)
            .for_transport_encryption()
            .for_storage_encryption()
            .map(|k| k.key().fingerprint())
            .collect(),
        Err(_) => Vec::new(),
    };
    for ka in cert.keys().secret() {
        let key = ka.key();
        let fpr = key.fingerprint();
        let ok = match key.secret() {
            SecretKeyMaterial::Encrypted(e) if !e.s2k().is_supported() => continue,
            SecretKeyMaterial::Unencrypted(_) => true,
            SecretKeyMaterial::Encrypted(_) => match password {
                None => {
                    inv.finding(
                        path,
                        format!("secret key {} is passphrase-protected, but no passphrase is configured", fpr.to_hex()),
                        ctx.pass_hint.clone(),
                    );
                    false
                }
                Some(pw) => {
                    let ok = key.clone().decrypt_secret(pw).is_ok();
                    if !ok {
                        inv.finding(
                            path,
                            format!("wrong passphrase for secret key {}", fpr.to_hex()),
                            ctx.pass_hint.clone(),
                        );
                    }
                    ok
                }
            },
        };
        if !ok {
            out.failed += 1;
        } else if usable.contains(&fpr) {
            out.encryption += 1;
        }
    }
    out
}
