//! Certificate helpers shared by key loading and the S/MIME message code: the
//! addresses and names a certificate carries, hex, and certificate lists
//! without duplicates.

use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref, X509};

/// rfc822Name SANs and subject emailAddress, lowercased, deduplicated.
pub(crate) fn cert_emails(cert: &X509Ref) -> Vec<String> {
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
pub(crate) fn name_string(name: &X509NameRef) -> String {
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

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Append `c` unless a certificate with the same DER is already in `v`.
pub(crate) fn push_unique(v: &mut Vec<X509>, c: X509) {
    let der = c.to_der().unwrap_or_default();
    if !v.iter().any(|x| x.to_der().unwrap_or_default() == der) {
        v.push(c);
    }
}
