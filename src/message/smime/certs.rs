//! Which of our certificates a CMS identifier names, and how identifiers
//! are shown: signer identifiers (SignedData) and recipient identifiers
//! (EnvelopedData), by issuer and serial number or by subject key
//! identifier.

use cms::cert::x509::der::{Decode, Encode};
use cms::enveloped_data::{KeyAgreeRecipientIdentifier, RecipientIdentifier, RecipientInfo};
use cms::signed_data::SignerIdentifier;
use openssl::x509::X509Ref;

use crate::keys::smime::Identity;
use crate::keys::x509::{hex_upper, name_string};

/// Serial number bytes without the sign octet(s).
pub(super) fn serial_hex(bytes: &[u8]) -> String {
    let mut b = bytes;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    hex_upper(b)
}

fn x509_name_from(name: &cms::cert::x509::name::Name) -> Option<openssl::x509::X509Name> {
    let der = name.to_der().ok()?;
    openssl::x509::X509Name::from_der(&der).ok()
}

fn issuer_serial_string(ias: &cms::cert::IssuerAndSerialNumber) -> String {
    let issuer = x509_name_from(&ias.issuer)
        .map(|n| name_string(&n))
        .unwrap_or_else(|| ias.issuer.to_string());
    format!(
        "issuer={issuer}, serial={}",
        serial_hex(ias.serial_number.as_bytes())
    )
}

fn cert_matches_issuer_serial(cert: &X509Ref, ias: &cms::cert::IssuerAndSerialNumber) -> bool {
    let Some(name) = x509_name_from(&ias.issuer) else {
        return false;
    };
    let same_issuer = cert
        .issuer_name()
        .try_cmp(&name)
        .is_ok_and(|o| o == std::cmp::Ordering::Equal);
    // Compare the serial numbers as encoded (two's complement content
    // octets): a magnitude comparison would let a certificate with serial
    // -0x5433 (AB CD) stand in for one with 0xABCD (00 AB CD).
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = cms::cert::x509::Certificate::from_der(&der) else {
        return false;
    };
    same_issuer && parsed.tbs_certificate.serial_number.as_bytes() == ias.serial_number.as_bytes()
}

fn cert_matches_ski(cert: &X509Ref, ski: &[u8]) -> bool {
    cert.subject_key_id().is_some_and(|k| k.as_slice() == ski)
}

pub(super) fn signer_matches(cert: &X509Ref, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => cert_matches_issuer_serial(cert, ias),
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert_matches_ski(cert, ski.0.as_bytes()),
    }
}

pub(super) fn sid_string(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => issuer_serial_string(ias),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("ski={}", hex_upper(ski.0.as_bytes()))
        }
    }
}

/// How each RecipientInfo names its recipient, in order.
pub(super) fn recipient_strings(infos: &[RecipientInfo]) -> Vec<String> {
    let mut v = Vec::new();
    for ri in infos {
        match ri {
            RecipientInfo::Ktri(k) => v.push(match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(ias) => issuer_serial_string(ias),
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    format!("ski={}", hex_upper(ski.0.as_bytes()))
                }
            }),
            RecipientInfo::Kari(k) => {
                for rek in k.recipient_enc_keys.iter() {
                    v.push(match &rek.rid {
                        KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) => {
                            issuer_serial_string(ias)
                        }
                        KeyAgreeRecipientIdentifier::RKeyId(r) => {
                            format!("ski={}", hex_upper(r.subject_key_identifier.0.as_bytes()))
                        }
                    });
                }
            }
            RecipientInfo::Kekri(k) => v.push(format!(
                "kek={}",
                hex_upper(k.kek_id.kek_identifier.as_bytes())
            )),
            RecipientInfo::Pwri(_) => v.push("password recipient".into()),
            RecipientInfo::Ori(o) => v.push(format!("other recipient type {}", o.ori_type)),
        }
    }
    v
}

/// Decrypt EnvelopedData or AuthEnvelopedData (DER or BER). `cap` bounds the
/// How one of our certificates is named in a RecipientInfo, read once.
struct OwnName<'a> {
    cert: &'a X509Ref,
    /// The serial number's content octets as encoded (see
    /// [`cert_matches_issuer_serial`]); None when the `cms` crate cannot read
    /// the certificate.
    serial: Option<Vec<u8>>,
}

fn own_name(cert: &X509Ref) -> OwnName<'_> {
    let serial = cert
        .to_der()
        .ok()
        .and_then(|der| cms::cert::x509::Certificate::from_der(&der).ok())
        .map(|c| c.tbs_certificate.serial_number.as_bytes().to_vec());
    OwnName { cert, serial }
}

/// One recipient identifier, with its issuer parsed by OpenSSL once.
enum Rid {
    IssuerSerial(Option<openssl::x509::X509Name>, Vec<u8>),
    Ski(Vec<u8>),
}

impl Rid {
    fn names(&self, own: &OwnName<'_>) -> bool {
        match self {
            Rid::IssuerSerial(Some(issuer), serial) => {
                own.serial.as_deref() == Some(serial.as_slice())
                    && own
                        .cert
                        .issuer_name()
                        .try_cmp(issuer)
                        .is_ok_and(|o| o == std::cmp::Ordering::Equal)
            }
            Rid::IssuerSerial(None, _) => false,
            Rid::Ski(ski) => cert_matches_ski(own.cert, ski),
        }
    }
}

fn rids(ri: &RecipientInfo) -> Vec<Rid> {
    let ias = |ias: &cms::cert::IssuerAndSerialNumber| {
        Rid::IssuerSerial(
            x509_name_from(&ias.issuer),
            ias.serial_number.as_bytes().to_vec(),
        )
    };
    match ri {
        RecipientInfo::Ktri(k) => vec![match &k.rid {
            RecipientIdentifier::IssuerAndSerialNumber(i) => ias(i),
            RecipientIdentifier::SubjectKeyIdentifier(ski) => Rid::Ski(ski.0.as_bytes().to_vec()),
        }],
        RecipientInfo::Kari(k) => k
            .recipient_enc_keys
            .iter()
            .map(|rek| match &rek.rid {
                KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(i) => ias(i),
                KeyAgreeRecipientIdentifier::RKeyId(r) => {
                    Rid::Ski(r.subject_key_identifier.0.as_bytes().to_vec())
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// For each identity, whether some RecipientInfo names its certificate. One
/// pass over the RecipientInfos; each identifier is read once.
pub(super) fn named_recipients(identities: &[Identity], infos: &[RecipientInfo]) -> Vec<bool> {
    let own: Vec<OwnName<'_>> = identities.iter().map(|id| own_name(&id.cert)).collect();
    let mut named = vec![false; own.len()];
    for ri in infos {
        if named.iter().all(|n| *n) {
            break;
        }
        for rid in rids(ri) {
            for (o, n) in own.iter().zip(named.iter_mut()) {
                if !*n && rid.names(o) {
                    *n = true;
                }
            }
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials() {
        assert_eq!(serial_hex(&[0, 0x80, 1]), "8001");
        assert_eq!(serial_hex(&[0]), "00");
    }
}
