//! The inventory of `smime/` (own certificates and private keys) and
//! `trust/` (CA certificates): expired or not yet valid certificates, a
//! certificate without an email address, a private key that matches no
//! certificate, a trust anchor that is not a CA, a passphrase that does not
//! open a file.

use std::path::{Path, PathBuf};

use cms::cert::x509::der::asn1::ObjectIdentifier;
use cms::cert::x509::der::Decode;
use cms::cert::x509::ext::pkix::BasicConstraints;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::x509::{X509Ref, X509};

use super::super::smime::{file_parts, key_files, trust_file_certs};
use super::super::x509::{cert_emails, hex_upper, name_string};
use super::super::SmimeKeyError;
use super::{Ctx, Inventory, Item, ItemKind};

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Every file of `smime/`, then the pairing of keys and certificates as
/// [`crate::keys::SmimeKeys::load`] does it.
pub(super) fn inspect_own(dir: &Path, ctx: &Ctx<'_>, inv: &mut Inventory) {
    let Some(files) = inv.listed(dir, key_files(dir)) else {
        return;
    };
    let mut certs: Vec<(PathBuf, X509)> = Vec::new();
    let mut keys: Vec<(PathBuf, PKey<Private>)> = Vec::new();
    for path in files {
        match file_parts(&path, ctx.passphrase) {
            Ok((c, k, pairs)) => {
                certs.extend(c.into_iter().map(|c| (path.clone(), c)));
                keys.extend(k.into_iter().map(|k| (path.clone(), k)));
                for (c, k) in pairs {
                    certs.push((path.clone(), c));
                    keys.push((path.clone(), k));
                }
            }
            Err(e) => file_error(&path, e, ctx, inv),
        }
    }
    let mut used = vec![false; certs.len()];
    for (path, key) in &keys {
        let matching: Vec<usize> = (0..certs.len())
            .filter(|&i| certs[i].1.public_key().is_ok_and(|pk| pk.public_eq(key)))
            .collect();
        if matching.is_empty() {
            inv.finding(
                path,
                format!(
                    "private key ({}) matches no certificate in smime/",
                    key_algorithm(key)
                ),
                "put the certificate issued for this key into smime/ (PEM), or remove the key",
            );
        }
        for i in matching {
            if !used[i] {
                used[i] = true;
                let before = inv.findings.len();
                let mut item = describe(ItemKind::SmimeIdentity, &certs[i].0, &certs[i].1);
                check_cert(&item, &certs[i].1, inv);
                if item.emails.is_empty() {
                    inv.finding(
                        &item.source,
                        format!("certificate {} has no email address", item.name),
                        "popcrypt matches S/MIME certificates to mail by address: get one with subjectAltName email:you@example.org",
                    );
                }
                item.usable = inv.findings.len() == before;
                inv.items.push(item);
            }
        }
    }
    for (i, (path, cert)) in certs.iter().enumerate() {
        if !used[i] {
            inv.items
                .push(describe(ItemKind::SmimeCertificate, path, cert));
        }
    }
}

/// A file that could not be read, with what to do.
fn file_error(path: &Path, e: SmimeKeyError, ctx: &Ctx<'_>, inv: &mut Inventory) {
    let fix = match &e {
        SmimeKeyError::WrongPassphrase { .. } | SmimeKeyError::NoPassphrase { .. } => {
            ctx.pass_hint.clone()
        }
        SmimeKeyError::Unsupported { .. } => "re-export the file with AES".into(),
        SmimeKeyError::Io { .. } => "make it readable by popcrypt's user".into(),
        _ => {
            "remove the file or replace it with a PEM certificate and key, or a PKCS#12 file".into()
        }
    };
    // The error names the file; the finding does already.
    let text = e.to_string();
    let prefix = format!("{}: ", path.display());
    let problem = text.strip_prefix(&prefix).unwrap_or(&text);
    inv.finding(path, problem, fix);
}

/// Every certificate of `trust/`: an anchor must be a CA and be valid.
pub(super) fn inspect_trust(dir: &Path, inv: &mut Inventory) {
    let Some(files) = inv.listed(dir, key_files(dir)) else {
        return;
    };
    for path in files {
        let certs = match trust_file_certs(&path) {
            Ok(c) => c,
            Err(e) => {
                inv.finding(
                    &path,
                    e.to_string(),
                    "remove the file or replace it with the CA certificate (PEM or DER)",
                );
                continue;
            }
        };
        for cert in certs {
            let before = inv.findings.len();
            let mut item = describe(ItemKind::TrustAnchor, &path, &cert);
            check_cert(&item, &cert, inv);
            if !is_ca(&cert) {
                inv.finding(
                    &path,
                    format!("trust anchor {} is not a CA certificate (no basicConstraints CA:TRUE)", item.name),
                    "put the certificate of the CA that issued it into trust/ instead, and this one into smime/ if you need it",
                );
            }
            item.usable = inv.findings.len() == before;
            inv.items.push(item);
        }
    }
}

/// Expired or not yet valid.
fn check_cert(item: &Item, cert: &X509Ref, inv: &mut Inventory) {
    let now = super::now_secs();
    let before = epoch_secs(cert.not_before());
    let after = epoch_secs(cert.not_after());
    if after.is_some_and(|a| a < now) {
        inv.finding(
            &item.source,
            format!("certificate {} expired on {}", item.name, item.expires),
            "get a renewed certificate from its CA and replace the file",
        );
    }
    if before.is_some_and(|b| b > now) {
        inv.finding(
            &item.source,
            format!(
                "certificate {} is not valid before {}",
                item.name,
                super::date_string(before.unwrap_or(0))
            ),
            "check the system clock, or wait",
        );
    }
}

fn describe(kind: ItemKind, path: &Path, cert: &X509Ref) -> Item {
    let serial = cert
        .serial_number()
        .to_bn()
        .map(|bn| hex_upper(&bn.to_vec()))
        .unwrap_or_default();
    let mut algorithms = Vec::new();
    if let Ok(pk) = cert.public_key() {
        algorithms.push(key_algorithm(&pk));
    }
    if let Ok(sig) = cert.signature_algorithm().object().nid().short_name() {
        algorithms.push(format!("signed {sig}"));
    }
    let capabilities = match kind {
        ItemKind::SmimeIdentity => vec!["decrypt"],
        ItemKind::TrustAnchor => vec!["verify (trust anchor)"],
        _ => vec!["chain"],
    };
    Item {
        kind,
        source: path.to_owned(),
        id: format!(
            "issuer {}, serial {serial}",
            name_string(cert.issuer_name())
        ),
        name: name_string(cert.subject_name()),
        emails: cert_emails(cert),
        algorithms,
        capabilities,
        usable: true,
        expires: epoch_secs(cert.not_after())
            .map(super::date_string)
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// `RSA 2048`, `EC 256`, `Ed25519`.
fn key_algorithm<T: openssl::pkey::HasPublic>(k: &PKeyRef<T>) -> String {
    let name = match k.id() {
        Id::RSA => "RSA",
        Id::EC => "EC",
        Id::ED25519 => return "Ed25519".into(),
        Id::ED448 => return "Ed448".into(),
        Id::DSA => "DSA",
        _ => "other",
    };
    format!("{name} {}", k.bits())
}

/// Seconds since the epoch of an ASN.1 time.
fn epoch_secs(t: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// BasicConstraints present with cA true.
fn is_ca(cert: &X509Ref) -> bool {
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = cms::cert::x509::Certificate::from_der(&der) else {
        return false;
    };
    parsed
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == BASIC_CONSTRAINTS)
        .any(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca))
}
