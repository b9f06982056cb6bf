//! CMS structures as popcrypt reads them: object identifiers, algorithm
//! tables, the blob as OpenSSL and the `cms` crate both see it, and the
//! lenient DER readers for EnvelopedData/AuthEnvelopedData and SignedData.

use cms::cert::x509::der::asn1::{AnyRef, ObjectIdentifier};
use cms::cert::x509::der::{
    self, Decode, DecodeValue, Encode, FixedTag, Header, Reader, SliceReader, Tag, TagNumber,
    Tagged,
};
use cms::cert::x509::time::Time;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{EncryptedContentInfo, RecipientInfo};
use cms::signed_data::{EncapsulatedContentInfo, SignerInfo};
use openssl::cms::CmsContentInfo;

use crate::keys::ossl::{self, reasons};

// --- object identifiers --------------------------------------------------------

pub(super) const OID_DATA: &str = "1.2.840.113549.1.7.1";
pub(super) const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub(super) const OID_ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
pub(super) const OID_DIGESTED_DATA: &str = "1.2.840.113549.1.7.5";
pub(super) const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
pub(super) const OID_AUTH_DATA: &str = "1.2.840.113549.1.9.16.1.2";
pub(super) const OID_COMPRESSED_DATA: &str = "1.2.840.113549.1.9.16.1.9";
pub(super) const OID_AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
pub(super) const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";

pub(super) fn oid_is(oid: &ObjectIdentifier, dotted: &str) -> bool {
    oid.to_string() == dotted
}

/// Content-encryption algorithms: (OID, name, legacy, supported by OpenSSL 3.0 CMS).
pub(super) const CONTENT_CIPHERS: &[(&str, &str, bool, bool)] = &[
    ("2.16.840.1.101.3.4.1.2", "aes-128-cbc", false, true),
    ("2.16.840.1.101.3.4.1.22", "aes-192-cbc", false, true),
    ("2.16.840.1.101.3.4.1.42", "aes-256-cbc", false, true),
    ("2.16.840.1.101.3.4.1.6", "aes-128-gcm", false, true),
    ("2.16.840.1.101.3.4.1.26", "aes-192-gcm", false, true),
    ("2.16.840.1.101.3.4.1.46", "aes-256-gcm", false, true),
    ("2.16.840.1.101.3.4.1.7", "aes-128-ccm", false, false),
    ("2.16.840.1.101.3.4.1.27", "aes-192-ccm", false, false),
    ("2.16.840.1.101.3.4.1.47", "aes-256-ccm", false, false),
    ("1.2.840.113549.3.7", "des-ede3-cbc", true, true),
    ("1.2.840.113549.3.2", "rc2-cbc", true, true),
    ("1.3.14.3.2.7", "des-cbc", true, true),
    (
        "1.2.840.113549.1.9.16.3.18",
        "chacha20-poly1305",
        false,
        false,
    ),
];

/// Digest and signature algorithms refused by policy (collision attacks).
pub(super) const WEAK_ALGORITHMS: &[(&str, &str)] = &[
    ("1.2.840.113549.2.5", "MD5"),
    ("1.3.14.3.2.26", "SHA-1"),
    ("1.2.840.113549.1.1.4", "MD5 with RSA"),
    ("1.2.840.113549.1.1.5", "SHA-1 with RSA"),
    ("1.2.840.10045.4.1", "ECDSA with SHA-1"),
    ("1.2.840.10040.4.3", "DSA with SHA-1"),
    ("1.3.14.3.2.29", "SHA-1 with RSA"),
];

/// Signature algorithms OpenSSL 3.0's CMS cannot verify.
pub(super) const UNSUPPORTED_SIGNATURES: &[(&str, &str)] =
    &[("1.3.101.112", "Ed25519"), ("1.3.101.113", "Ed448")];

pub(super) fn content_type_name(oid: &ObjectIdentifier) -> String {
    let s = oid.to_string();
    match s.as_str() {
        OID_ENVELOPED_DATA => "enveloped-data".into(),
        OID_AUTH_ENVELOPED_DATA => "auth-enveloped-data".into(),
        OID_SIGNED_DATA => "signed-data".into(),
        OID_COMPRESSED_DATA => "compressed-data".into(),
        OID_DATA => "data".into(),
        OID_DIGESTED_DATA => "digested-data".into(),
        OID_ENCRYPTED_DATA => "encrypted-data".into(),
        OID_AUTH_DATA => "authenticated-data".into(),
        _ => s,
    }
}

/// The blob as OpenSSL sees it, and the same structure as the `cms` crate
/// reads it from OpenSSL's DER re-encoding.
pub(super) struct Parsed<'a> {
    pub(super) raw: &'a [u8],
    pub(super) ossl: CmsContentInfo,
    pub(super) info: ContentInfo,
}

/// Why a blob could not be parsed.
pub(super) enum ParseFail {
    /// The bytes are not readable CMS (the text says why).
    Malformed(String),
    /// OpenSSL itself failed (see [`ossl::is_internal`]); the text is
    /// OpenSSL's reasons.
    Internal(String),
}

pub(super) fn parse(der: &[u8]) -> Result<Parsed<'_>, ParseFail> {
    let openssl_fail = |what: &str, e: openssl::error::ErrorStack| {
        if ossl::is_internal(&e) {
            ParseFail::Internal(reasons(&e))
        } else {
            ParseFail::Malformed(format!("{what}: {}", reasons(&e)))
        }
    };
    let ossl = CmsContentInfo::from_der(der).map_err(|e| openssl_fail("not CMS", e))?;
    let norm = ossl
        .to_der()
        .map_err(|e| openssl_fail("cannot re-encode CMS", e))?;
    let info = ContentInfo::from_der(&norm)
        .map_err(|e| ParseFail::Malformed(format!("malformed CMS: {e}")))?;
    Ok(Parsed {
        raw: der,
        ossl,
        info,
    })
}

/// What a CMS blob is: `enveloped-data`, `auth-enveloped-data`,
/// `signed-data`, `compressed-data`, `data`, …, or the dotted OID.
pub fn content_type(der: &[u8]) -> Option<String> {
    if let Ok(ci) = ContentInfo::from_der(der) {
        return Some(content_type_name(&ci.content_type));
    }
    // BER (indefinite lengths from streaming tools): let OpenSSL re-encode.
    let ossl = CmsContentInfo::from_der(der).ok()?;
    let norm = ossl.to_der().ok()?;
    ContentInfo::from_der(&norm)
        .ok()
        .map(|ci| content_type_name(&ci.content_type))
}

/// Read a SET OF element by element, accepting duplicates and any order
/// (real signers put the same certificate in twice; the `cms` crate's
/// `SetOfVec` refuses that).
fn set_elements<'a, T: Decode<'a>>(set: AnyRef<'a>) -> der::Result<Vec<T>> {
    let mut r = SliceReader::new(set.value())?;
    let mut v = Vec::new();
    while !r.is_finished() {
        v.push(T::decode(&mut r)?);
    }
    Ok(v)
}

fn context_tag(n: TagNumber) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: n,
    }
}

fn expect_set<'a, R: Reader<'a>>(r: &mut R) -> der::Result<AnyRef<'a>> {
    let set = AnyRef::decode(r)?;
    if set.tag() != Tag::Set {
        return Err(der::Error::new(
            der::ErrorKind::TagUnexpected {
                expected: Some(Tag::Set),
                actual: set.tag(),
            },
            r.position(),
        ));
    }
    Ok(set)
}

/// EnvelopedData (RFC 5652) and AuthEnvelopedData (RFC 5083; the `cms`
/// crate 0.2 has no type for it) share their first fields; read as far as
/// the encrypted content info. OpenSSL checks the rest.
pub(super) struct EnvelopedHead {
    pub(super) recip_infos: Vec<RecipientInfo>,
    pub(super) content: EncryptedContentInfo,
}

impl FixedTag for EnvelopedHead {
    const TAG: Tag = Tag::Sequence;
}

impl<'a> DecodeValue<'a> for EnvelopedHead {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let _version = CmsVersion::decode(r)?;
            if r.peek_tag()? == context_tag(TagNumber::N0) {
                let _originator = AnyRef::decode(r)?;
            }
            let recip_infos = set_elements::<RecipientInfo>(expect_set(r)?)?;
            let content = EncryptedContentInfo::decode(r)?;
            // unprotectedAttrs / authAttrs, mac, unauthAttrs: OpenSSL's job.
            let rest = r.remaining_len();
            r.read_slice(rest)?;
            Ok(EnvelopedHead {
                recip_infos,
                content,
            })
        })
    }
}

/// SignedData as far as popcrypt reads it, leniently: certificates are kept
/// as their original DER, SETs may hold duplicates.
pub(super) struct SignedLite {
    pub(super) encap: EncapsulatedContentInfo,
    pub(super) certs: Vec<Vec<u8>>,
    pub(super) signers: Vec<SignerInfo>,
}

impl FixedTag for SignedLite {
    const TAG: Tag = Tag::Sequence;
}

impl<'a> DecodeValue<'a> for SignedLite {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let _version = CmsVersion::decode(r)?;
            let _digest_algorithms = expect_set(r)?;
            let encap = EncapsulatedContentInfo::decode(r)?;
            let mut certs = Vec::new();
            if r.peek_tag()? == context_tag(TagNumber::N0) {
                let set = AnyRef::decode(r)?;
                for c in set_elements::<AnyRef<'a>>(set)? {
                    // CertificateChoices: only plain certificates (SEQUENCE).
                    if c.tag() == Tag::Sequence {
                        certs.push(c.to_der()?);
                    }
                }
            }
            if r.peek_tag()? == context_tag(TagNumber::N1) {
                let _crls = AnyRef::decode(r)?;
            }
            let signers = set_elements::<SignerInfo>(expect_set(r)?)?;
            Ok(SignedLite {
                encap,
                certs,
                signers,
            })
        })
    }
}

/// The signingTime attribute, in seconds since the Unix epoch.
pub(super) fn signing_time(si: &SignerInfo) -> Option<i64> {
    let attrs = si.signed_attrs.as_ref()?;
    let attr = attrs.iter().find(|a| oid_is(&a.oid, OID_SIGNING_TIME))?;
    let v = attr.values.iter().next()?;
    let t = Time::from_der(&v.to_der().ok()?).ok()?;
    Some(t.to_unix_duration().as_secs() as i64)
}
