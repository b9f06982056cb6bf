//! The S/MIME crypto layer (`popcrypt::message::smime`) on its own: the
//! golden fixtures made by tests/golden/smime/regenerate.sh, and the public
//! corpora named by POPCRYPT_CORPORA (RFC 9216 examples, Thunderbird's S/MIME
//! tests, "Johnny, You Are Fired" 01-cms, covert-content S/MIME).
//!
//! The CMS is cut out of the .eml files here with mail-parser; the real MIME
//! glue lives in src/message/mod.rs.

mod support;
use std::path::{Path, PathBuf};
use support::corpora::{corpora, corpora_available};

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};
use popcrypt::message::smime::{
    self, check_message_date, content_type, decrypt, verify_detached, verify_opaque, SigVerdict,
    SmimeError, SmimeKeyError, SmimeKeys,
};

const CAP: usize = 64 << 20;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smime")
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    let p = p.as_ref();
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn case(name: &str) -> Vec<u8> {
    read(golden().join("cases").join(format!("{name}.eml")))
}

fn demo_keys() -> SmimeKeys {
    let k = golden().join("keys");
    SmimeKeys::load(Some(&k.join("smime")), Some(&k.join("trust")), None, false)
        .expect("golden keys load")
}

fn passphrase() -> String {
    String::from_utf8(read(golden().join("keys/pkcs12/demo.p12.passphrase")))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

// --- cutting CMS out of mail -----------------------------------------------------

/// What the root of a message (or MIME entity) holds.
enum Smime {
    /// application/(x-)pkcs7-mime: the decoded DER.
    Mime(Vec<u8>),
    /// multipart/signed: the exact signed bytes and the signature DER.
    Signed { data: Vec<u8>, sig: Vec<u8> },
}

fn mime_type(p: &MessagePart<'_>) -> String {
    match p.content_type() {
        Some(ct) => format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase(),
        None => "text/plain".into(),
    }
}

fn is_pkcs7_mime(p: &MessagePart<'_>) -> bool {
    matches!(
        mime_type(p).as_str(),
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    )
}

fn is_pkcs7_sig(p: &MessagePart<'_>) -> bool {
    matches!(
        mime_type(p).as_str(),
        "application/pkcs7-signature" | "application/x-pkcs7-signature"
    )
}

/// Every S/MIME object in a message, outermost first (parts nested in
/// multipart/mixed included).
fn smime_parts(raw: &[u8]) -> Vec<Smime> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Parts inside a multipart/signed are reached through its signed bytes.
    let mut inside = vec![false; msg.parts.len()];
    for (i, p) in msg.parts.iter().enumerate() {
        if inside[i] {
            if let PartType::Multipart(ids) = &p.body {
                for &c in ids {
                    inside[c as usize] = true;
                }
            }
            continue;
        }
        if mime_type(p) == "multipart/signed" {
            if let PartType::Multipart(ids) = &p.body {
                for &c in ids {
                    inside[c as usize] = true;
                }
            }
        }
        if is_pkcs7_mime(p) {
            out.push(Smime::Mime(p.contents().to_vec()));
        } else if mime_type(p) == "multipart/signed" {
            if let PartType::Multipart(ids) = &p.body {
                if ids.len() == 2 {
                    let first = &msg.parts[ids[0] as usize];
                    let second = &msg.parts[ids[1] as usize];
                    if is_pkcs7_sig(second) {
                        out.push(Smime::Signed {
                            data: raw[first.offset_header as usize..first.offset_end as usize]
                                .to_vec(),
                            sig: second.contents().to_vec(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The root S/MIME object of a message.
fn root(raw: &[u8]) -> Smime {
    let msg = MessageParser::default().parse(raw).expect("parses");
    let r = &msg.parts[0];
    assert!(
        is_pkcs7_mime(r) || mime_type(r) == "multipart/signed",
        "root is {}",
        mime_type(r)
    );
    smime_parts(raw).into_iter().next().expect("an S/MIME root")
}

fn root_der(raw: &[u8]) -> Vec<u8> {
    match root(raw) {
        Smime::Mime(d) => d,
        Smime::Signed { .. } => panic!("expected application/pkcs7-mime"),
    }
}

/// What processing a message found, recursively (decrypted and opaque
/// content is processed again).
#[derive(Debug)]
enum Event {
    Decrypted(smime::Decrypted),
    DecryptFailed(String),
    Verdicts(Vec<SigVerdict>),
}

/// The Date header as seconds since the Unix epoch.
fn date_of(raw: &[u8]) -> Option<i64> {
    MessageParser::default()
        .parse(raw)?
        .date()
        .map(|d| d.to_timestamp())
}

fn analyze(keys: &SmimeKeys, raw: &[u8], depth: usize) -> Vec<Event> {
    analyze_dated(keys, raw, depth, date_of(raw))
}

fn analyze_dated(keys: &SmimeKeys, raw: &[u8], depth: usize, date: Option<i64>) -> Vec<Event> {
    let mut ev = Vec::new();
    if depth > 4 {
        return ev;
    }
    let analyze =
        |keys: &SmimeKeys, raw: &[u8], depth: usize| analyze_dated(keys, raw, depth, date);
    let verify_detached = |keys: &SmimeKeys, sig: &[u8], data: &[u8]| {
        check_message_date(verify_detached(keys, sig, data), date)
    };
    let verify_opaque = |keys: &SmimeKeys, der: &[u8], cap: usize| {
        let (c, v) = verify_opaque(keys, der, cap);
        (c, check_message_date(v, date))
    };
    for part in smime_parts(raw) {
        match part {
            Smime::Signed { data, sig } => {
                ev.push(Event::Verdicts(verify_detached(keys, &sig, &data)));
                ev.extend(analyze(keys, &data, depth + 1));
            }
            Smime::Mime(der) => match content_type(&der).as_deref() {
                Some("signed-data") => {
                    let (content, v) = verify_opaque(keys, &der, CAP);
                    ev.push(Event::Verdicts(v));
                    if let Some(c) = content {
                        ev.extend(analyze(keys, &c, depth + 1));
                    }
                }
                _ => match decrypt(keys, &der, CAP) {
                    Ok(d) => {
                        let inner = d.content.clone();
                        ev.push(Event::Decrypted(d));
                        ev.extend(analyze(keys, &inner, depth + 1));
                    }
                    Err(e) => ev.push(Event::DecryptFailed(e.to_string())),
                },
            },
        }
    }
    ev
}

fn verdicts(ev: &[Event]) -> Vec<&SigVerdict> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Verdicts(v) => Some(v.iter()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn any_good(ev: &[Event]) -> bool {
    verdicts(ev)
        .iter()
        .any(|v| matches!(v, SigVerdict::Good { .. }))
}

fn word(v: &SigVerdict) -> &'static str {
    match v {
        SigVerdict::Good { .. } => "good",
        SigVerdict::Bad { .. } => "bad",
        SigVerdict::UnknownSigner { .. } => "unknown-signer",
        SigVerdict::Rejected { .. } => "rejected",
        SigVerdict::Internal { .. } => "internal",
    }
}

fn summary(ev: &[Event]) -> String {
    ev.iter()
        .map(|e| match e {
            Event::Decrypted(d) => format!("decrypted({})", d.algorithm),
            Event::DecryptFailed(e) => format!("decrypt-failed({e})"),
            Event::Verdicts(v) => format!(
                "[{}]",
                v.iter()
                    .map(|v| match v {
                        SigVerdict::Good { emails, .. } => format!("good {}", emails.join(",")),
                        SigVerdict::Bad { reason } => format!("bad: {reason}"),
                        SigVerdict::UnknownSigner { who } => format!("unknown-signer: {who}"),
                        SigVerdict::Rejected { reason } => format!("rejected: {reason}"),
                        SigVerdict::Internal { reason } => format!("internal: {reason}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn marker(content: &[u8], name: &str) -> bool {
    let needle = format!("popcrypt S/MIME test message \"{name}\"");
    String::from_utf8_lossy(content).contains(&needle)
}

// --- keys ------------------------------------------------------------------------

#[test]
fn loads_golden_keys() {
    let keys = demo_keys();
    assert!(keys.has_identities() && keys.has_trust() && !keys.is_empty());
    assert_eq!(keys.identity_emails(), vec!["demo@popcrypt.invalid"]);
    let s = keys.summary();
    assert_eq!(
        s, "S/MIME: 3 identities (demo@popcrypt.invalid), 1 trust anchor",
        "{s}"
    );
    let none = SmimeKeys::load(None, None, None, false).unwrap();
    assert!(none.is_empty() && !none.has_identities() && !none.has_trust());
}

#[test]
fn loads_pkcs12_with_passphrase() {
    let dir = golden().join("keys/pkcs12");
    let pass = passphrase();
    let keys = SmimeKeys::load(Some(&dir), None, Some(&pass), false).expect("p12 loads");
    // demo.p12 and demo-legacy.p12 hold the same identity: loaded once.
    assert_eq!(
        keys.summary(),
        "S/MIME: 1 identity (demo@popcrypt.invalid), 0 trust anchors"
    );
    let d = decrypt(&keys, &root_der(&case("enveloped-aes128-cbc")), CAP).unwrap();
    assert!(marker(&d.content, "enveloped-aes128-cbc"));

    // The legacy (RC2-40/3DES) file on its own.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("demo-legacy.p12"), tmp.path().join("old.pfx")).unwrap();
    let keys = SmimeKeys::load(Some(tmp.path()), None, Some(&pass), false).expect("legacy p12");
    assert!(keys.has_identities());

    // Wrong and missing passphrase: clear errors naming the file.
    let err = SmimeKeys::load(Some(&dir), None, Some("wrong"), false).unwrap_err();
    assert!(
        matches!(err, SmimeKeyError::WrongPassphrase { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("demo") && msg.contains(".p12") && msg.contains("wrong passphrase"),
        "{msg}"
    );
    let err = SmimeKeys::load(Some(&dir), None, None, false).unwrap_err();
    assert!(matches!(err, SmimeKeyError::NoPassphrase { .. }), "{err}");
    assert!(err.to_string().contains(".p12"), "{err}");
}

#[test]
fn key_file_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    // A private key without its certificate.
    let key = read(golden().join("keys/smime/demo-rsa4096.key"));
    std::fs::write(tmp.path().join("lonely.key"), key).unwrap();
    let err = SmimeKeys::load(Some(tmp.path()), None, None, false).unwrap_err();
    assert!(matches!(err, SmimeKeyError::KeyWithoutCertificate { .. }));
    assert!(err.to_string().contains("lonely.key"), "{err}");

    // Garbage.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("junk.pem"), b"hello").unwrap();
    let err = SmimeKeys::load(Some(tmp.path()), None, None, false).unwrap_err();
    assert!(err.to_string().contains("junk.pem"), "{err}");
    let err = SmimeKeys::load(None, Some(tmp.path()), None, false).unwrap_err();
    assert!(err.to_string().contains("junk.pem"), "{err}");

    // A missing directory.
    let err = SmimeKeys::load(Some(&tmp.path().join("nope")), None, None, false).unwrap_err();
    assert!(matches!(err, SmimeKeyError::Io { .. }), "{err}");

    // Notes and passphrase files are skipped; a DER trust anchor loads.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("README.md"), b"notes").unwrap();
    std::fs::write(tmp.path().join("x.passphrase"), b"secret").unwrap();
    let pem = read(golden().join("keys/trust/demo-root-ca.pem"));
    let der = openssl::x509::X509::from_pem(&pem)
        .unwrap()
        .to_der()
        .unwrap();
    std::fs::write(tmp.path().join("root.der"), der).unwrap();
    let keys = SmimeKeys::load(None, Some(tmp.path()), None, false).unwrap();
    assert_eq!(keys.summary(), "S/MIME: 0 identities, 1 trust anchor");
}

#[test]
fn encrypted_pem_keys_use_the_passphrase() {
    // demo-rsa4096.crt + the same key as encrypted PKCS#8 PEM.
    let src = golden().join("keys/smime");
    let key =
        openssl::pkey::PKey::private_key_from_pem(&read(src.join("demo-rsa4096.key"))).unwrap();
    let enc = key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pem secret")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("demo-rsa4096.crt"), tmp.path().join("me.crt")).unwrap();
    std::fs::write(tmp.path().join("me.key"), enc).unwrap();
    let keys = SmimeKeys::load(Some(tmp.path()), None, Some("pem secret"), false).unwrap();
    let d = decrypt(&keys, &root_der(&case("enveloped-rsa4096")), CAP).unwrap();
    assert!(marker(&d.content, "enveloped-rsa4096"));
    let err = SmimeKeys::load(Some(tmp.path()), None, Some("nope"), false).unwrap_err();
    assert!(
        matches!(err, SmimeKeyError::WrongPassphrase { .. }) && err.to_string().contains("me.key"),
        "{err}"
    );
    let err = SmimeKeys::load(Some(tmp.path()), None, None, false).unwrap_err();
    assert!(matches!(err, SmimeKeyError::NoPassphrase { .. }), "{err}");
}

#[test]
fn system_roots_are_optional() {
    // Without the flag nothing is trusted.
    let none = SmimeKeys::load(None, None, None, false).unwrap();
    assert!(none.is_empty() && !none.has_trust(), "{}", none.summary());
    assert_eq!(none.summary(), "S/MIME: 0 identities, 0 trust anchors");
    // With it: exactly the certificates of OpenSSL's default CA file (the
    // hashed directory is looked up lazily and lists nothing up front),
    // counted here independently; none when the machine has no such file.
    let keys = SmimeKeys::load(None, None, None, true).unwrap();
    let file = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let dir = openssl::version::dir();
            let dir = dir
                .trim_start_matches("OPENSSLDIR: ")
                .trim_matches('"')
                .to_string();
            Path::new(&dir).join("cert.pem")
        });
    let mut unique: Vec<Vec<u8>> = Vec::new();
    if let Ok(pem) = std::fs::read(&file) {
        for c in openssl::x509::X509::stack_from_pem(&pem).unwrap_or_default() {
            let der = c.to_der().unwrap();
            if !unique.contains(&der) {
                unique.push(der);
            }
        }
    }
    if unique.is_empty() {
        assert!(!keys.has_trust(), "{}: {}", file.display(), keys.summary());
        assert_eq!(keys.summary(), none.summary());
    } else {
        assert!(keys.has_trust() && !keys.has_identities());
        assert_eq!(
            keys.summary(),
            format!(
                "S/MIME: 0 identities, 0 trust anchors + {} system root certificates",
                unique.len()
            ),
            "{}",
            file.display()
        );
    }
}

// --- decryption ------------------------------------------------------------------

#[test]
fn decrypts_every_enveloped_case() {
    let keys = demo_keys();
    // case, algorithm, authEnveloped, legacy
    let table: &[(&str, &str, bool, bool)] = &[
        ("enveloped-aes128-cbc", "aes-128-cbc", false, false),
        ("enveloped-aes128-cbc-lf", "aes-128-cbc", false, false),
        ("enveloped-aes256-cbc", "aes-256-cbc", false, false),
        ("enveloped-3des", "des-ede3-cbc", false, true),
        ("enveloped-aes256-gcm", "aes-256-gcm", true, false),
        ("enveloped-rsa-oaep", "aes-256-cbc", false, false),
        ("enveloped-rsa4096", "aes-256-cbc", false, false),
        ("enveloped-p256-ecdh", "aes-256-cbc", false, false),
        ("enveloped-p256-ecdh-gcm", "aes-128-gcm", true, false),
        ("enveloped-ski-rid", "aes-256-cbc", false, false),
        ("enveloped-two-recipients", "aes-256-cbc", false, false),
        ("enveloped-x-pkcs7-mime", "aes-128-cbc", false, false),
        ("enveloped-binary", "aes-256-cbc", false, false),
    ];
    for &(name, alg, auth, legacy) in table {
        let der = root_der(&case(name));
        let want = if auth {
            "auth-enveloped-data"
        } else {
            "enveloped-data"
        };
        assert_eq!(content_type(&der).as_deref(), Some(want), "{name}");
        let d = decrypt(&keys, &der, CAP).unwrap_or_else(|e| panic!("{name}: {e}"));
        let inner = if name == "enveloped-aes128-cbc-lf" {
            "enveloped-aes128-cbc"
        } else {
            name
        };
        assert!(marker(&d.content, inner), "{name}: wrong content");
        assert!(d.content.starts_with(b"Content-Type: text/plain"), "{name}");
        assert_eq!(d.algorithm, alg, "{name}");
        assert_eq!(d.auth_enveloped, auth, "{name}");
        assert_eq!(d.legacy_algorithm, legacy, "{name}");
    }
}

#[test]
fn not_recipient_lists_the_recipients() {
    let keys = demo_keys();
    let der = root_der(&case("enveloped-other-recipient"));
    match decrypt(&keys, &der, CAP) {
        Err(SmimeError::NotRecipient { recipients }) => {
            assert_eq!(recipients.len(), 1, "{recipients:?}");
            let r = &recipients[0];
            assert!(
                r.starts_with(
                    "issuer=CN=popcrypt DEMO ONLY S-MIME Issuing CA, O=popcrypt DEMO ONLY, serial="
                ),
                "{r}"
            );
            // bob's serial (regenerate.sh issues 0x1005)
            assert!(r.ends_with("serial=1005"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    // No identities at all: every message is for someone else.
    let none = SmimeKeys::default();
    let der = root_der(&case("enveloped-ski-rid"));
    match decrypt(&none, &der, CAP) {
        Err(SmimeError::NotRecipient { recipients }) => {
            assert!(recipients[0].starts_with("ski="), "{recipients:?}")
        }
        other => panic!("{other:?}"),
    }
    let der = root_der(&case("enveloped-p256-ecdh"));
    let err = decrypt(&none, &der, CAP).unwrap_err();
    assert!(err.to_string().contains("serial=1003"), "{err}");
}

#[test]
fn corrupt_and_tampered_fail() {
    let keys = demo_keys();
    let der = root_der(&case("enveloped-corrupt-der"));
    assert!(matches!(
        decrypt(&keys, &der, CAP),
        Err(SmimeError::Corrupt(_))
    ));
    assert_eq!(content_type(&der), None);
    let der = root_der(&case("enveloped-aes256-gcm-tampered"));
    let err = decrypt(&keys, &der, CAP).unwrap_err();
    assert!(matches!(err, SmimeError::Corrupt(_)), "{err}");
    // Random bytes, truncated, empty.
    for junk in [
        &b""[..],
        b"\x30\x80",
        b"\x30\x03\x06\x01\x00",
        &der[..der.len() / 2],
    ] {
        assert!(decrypt(&keys, junk, CAP).is_err());
    }
    // A signature is not something to decrypt.
    let signed = root_der(&case("signed-opaque"));
    assert!(matches!(
        decrypt(&keys, &signed, CAP),
        Err(SmimeError::Other(_))
    ));
}

#[test]
fn cap_bounds_the_plaintext() {
    let keys = demo_keys();
    let der = root_der(&case("enveloped-aes256-gcm"));
    assert!(matches!(
        decrypt(&keys, &der, 100),
        Err(SmimeError::TooLarge(100))
    ));
    let der = root_der(&case("signed-opaque"));
    let (content, v) = verify_opaque(&keys, &der, 100);
    assert!(content.is_none());
    assert!(matches!(v.as_slice(), [SigVerdict::Bad { .. }]));
}

// --- signatures ------------------------------------------------------------------

fn detached(name: &str) -> (Vec<u8>, Vec<u8>) {
    match root(&case(name)) {
        Smime::Signed { data, sig } => (data, sig),
        Smime::Mime(_) => panic!("{name}: expected multipart/signed"),
    }
}

fn one(v: Vec<SigVerdict>) -> SigVerdict {
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

#[test]
fn verifies_detached_signatures() {
    let keys = demo_keys();
    for name in [
        "signed-detached",
        "signed-detached-lf",
        "signed-detached-from-mismatch",
    ] {
        let (data, sig) = detached(name);
        assert_eq!(content_type(&sig).as_deref(), Some("signed-data"));
        match one(verify_detached(&keys, &sig, &data)) {
            SigVerdict::Good {
                emails,
                subject,
                signing_time,
            } => {
                assert!(signing_time.is_some());
                // The glue compares with From: bob in the from-mismatch case.
                assert_eq!(emails, vec!["alice@popcrypt.invalid"], "{name}");
                assert!(subject.starts_with("CN=alice (DEMO ONLY)"), "{subject}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let (data, sig) = detached("signed-detached-tampered");
    assert!(matches!(
        one(verify_detached(&keys, &sig, &data)),
        SigVerdict::Bad { .. }
    ));
    let (data, sig) = detached("signed-detached-untrusted");
    match one(verify_detached(&keys, &sig, &data)) {
        SigVerdict::UnknownSigner { who } => {
            assert!(who.contains("subject=CN=mallory (DEMO ONLY)"), "{who}");
            assert!(who.contains("issuer=CN=Mallory's Untrusted CA"), "{who}");
        }
        other => panic!("{other:?}"),
    }
    let (data, sig) = detached("signed-detached-no-chain");
    assert!(matches!(
        one(verify_detached(&keys, &sig, &data)),
        SigVerdict::UnknownSigner { .. }
    ));
    let (data, sig) = detached("signed-detached-expired");
    match one(verify_detached(&keys, &sig, &data)) {
        SigVerdict::Rejected { reason } => assert!(reason.contains("expired"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Without a trust store nobody is known; a good signature is not bad.
    let (data, sig) = detached("signed-detached");
    let v = one(verify_detached(&SmimeKeys::default(), &sig, &data));
    assert!(matches!(v, SigVerdict::UnknownSigner { .. }), "{v:?}");
    // The signed bytes must be exact.
    let mut more = data.clone();
    more.extend_from_slice(b"PS: added later\r\n");
    assert!(matches!(
        one(verify_detached(&keys, &sig, &more)),
        SigVerdict::Bad { .. }
    ));
}

#[test]
fn verifies_opaque_signatures() {
    let keys = demo_keys();
    let der = root_der(&case("signed-opaque"));
    assert_eq!(content_type(&der).as_deref(), Some("signed-data"));
    let (content, v) = verify_opaque(&keys, &der, CAP);
    let content = content.expect("content");
    assert!(marker(&content, "signed-opaque"));
    assert!(content.starts_with(b"Content-Type: text/plain"));
    assert!(content.windows(2).any(|w| w == b"\r\n"), "line ends kept");
    assert!(matches!(one(v), SigVerdict::Good { .. }));

    let der = root_der(&case("signed-opaque-tampered"));
    let (content, v) = verify_opaque(&keys, &der, CAP);
    assert!(String::from_utf8_lossy(&content.unwrap()).contains("test DATA"));
    assert!(matches!(one(v), SigVerdict::Bad { .. }));
}

#[test]
fn structure_confusion_is_never_good() {
    let keys = demo_keys();
    let (data, detached_sig) = detached("signed-detached");
    let opaque = root_der(&case("signed-opaque"));
    // An opaque signature (with eContent) used as a detached signature over
    // other bytes: eContent is what it signs, not the displayed part.
    let v = verify_detached(&keys, &opaque, &data);
    assert!(matches!(one(v), SigVerdict::Bad { .. }));
    // A detached signature offered as opaque: no content.
    let (content, v) = verify_opaque(&keys, &detached_sig, CAP);
    assert!(content.is_none());
    assert!(matches!(one(v), SigVerdict::Bad { .. }));
    // Not a signature at all.
    let env = root_der(&case("enveloped-aes256-cbc"));
    assert!(matches!(
        one(verify_detached(&keys, &env, &data)),
        SigVerdict::Bad { .. }
    ));
    let (c, v) = verify_opaque(&keys, &env, CAP);
    assert!(c.is_none() && matches!(one(v), SigVerdict::Bad { .. }));
}

#[test]
fn nested_sign_and_encrypt() {
    let keys = demo_keys();
    for (name, want) in [
        (
            "sign-then-encrypt",
            "decrypted(aes-256-cbc) -> [good alice@popcrypt.invalid]",
        ),
        (
            "sign-opaque-then-encrypt",
            "decrypted(aes-256-gcm) -> [good alice@popcrypt.invalid]",
        ),
        (
            "encrypt-then-sign",
            "[good alice@popcrypt.invalid] -> decrypted(aes-256-cbc)",
        ),
    ] {
        let ev = analyze(&keys, &case(name), 0);
        assert_eq!(summary(&ev), want, "{name}");
    }
}

#[test]
fn every_golden_case_is_handled() {
    // Nothing panics, and each case gives the expected shape.
    let keys = demo_keys();
    let dir = golden().join("cases");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert!(names.len() >= 28, "{} cases", names.len());
    for p in names {
        let ev = analyze(&keys, &read(&p), 0);
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let s = summary(&ev);
        eprintln!("{name}: {s}");
        let good = any_good(&ev);
        let expect_good = !name.contains("tampered")
            && !name.contains("untrusted")
            && !name.contains("expired")
            && !name.contains("no-chain")
            && (name.starts_with("sign")
                || name.contains("encrypt-then-sign")
                || name.contains("signed-inside")
                // Alice's genuine signature over one part of Mallory's
                // message: the crypto layer says good, the transform says
                // partial (golden_smime.rs).
                || name.starts_with("mixed-with-signed-part"));
        assert_eq!(good, expect_good, "{name}: {s}");
    }
}

// --- corpora: RFC 9216 -----------------------------------------------------------

fn rfc9216() -> PathBuf {
    corpora().join("rfc9216-lamps-examples-cms")
}

/// A keys directory for the RFC 9216 people: Bob (RSA) and Dana (X25519) as
/// own identities; Alice's and Carlos's end-entity certificates as trust
/// anchors (the Sample LAMPS CA certificates are not in the corpus).
fn rfc9216_keys(dir: &Path) -> SmimeKeys {
    let ck = rfc9216().join("certs-and-keys");
    let own = dir.join("smime");
    let trust = dir.join("trust");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::create_dir_all(&trust).unwrap();
    for (src, dst) in [
        ("lamps-bob.encrypt.crt", "bob.crt"),
        ("lamps-bob.decrypt.p8.pem", "bob.key"),
        ("lamps-dana.encrypt.crt", "dana.crt"),
        ("lamps-dana.decrypt.p8.pem", "dana.key"),
    ] {
        std::fs::copy(ck.join(src), own.join(dst)).unwrap();
    }
    for (src, dst) in [
        ("lamps-alice.crt", "alice.crt"),
        ("lamps-carlos.crt", "carlos.crt"),
    ] {
        std::fs::copy(ck.join(src), trust.join(dst)).unwrap();
    }
    SmimeKeys::load(Some(&own), Some(&trust), None, false).expect("RFC 9216 keys")
}

#[test]
fn rfc9216_examples() {
    if !corpora_available("smime_api") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let keys = rfc9216_keys(tmp.path());
    assert_eq!(
        keys.summary(),
        "S/MIME: 2 identities (bob@smime.example, dana@smime.example), 2 trust anchors"
    );
    let bin = |n: &str| read(rfc9216().join("binary-files").join(format!("{n}.p7m")));
    let pem = |n: &str| {
        let text = read(rfc9216().join("pem-encoded").join(format!("{n}.pem")));
        openssl::cms::CmsContentInfo::from_pem(&text)
            .unwrap()
            .to_der()
            .unwrap()
    };
    let sample = b"This is some sample content.";
    let mut report = Vec::new();

    // Supported: decrypt.
    for n in ["encryptedForBobRSAOaep", "encryptedForBobAndDana"] {
        for der in [bin(n), pem(n)] {
            let d = decrypt(&keys, &der, CAP).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert!(d.content.starts_with(sample), "{n}");
            assert!(!d.auth_enveloped);
            report.push(format!("{n}: decrypted ({})", d.algorithm));
        }
    }
    // Unsupported by OpenSSL 3.0: an error, not a panic, not plaintext.
    for n in [
        "authEnvelopedForBobChaCha20Poly1305",
        "authEnvelopedForDanaX25519HKDF",
    ] {
        assert_eq!(
            content_type(&bin(n)).as_deref(),
            Some("auth-enveloped-data")
        );
        let err = decrypt(&keys, &bin(n), CAP).unwrap_err();
        assert!(matches!(err, SmimeError::Unsupported(_)), "{n}: {err:?}");
        report.push(format!("{n}: {err}"));
    }
    // Not for us: a KEK recipient.
    let err = decrypt(&keys, &bin("encryptedKekri"), CAP).unwrap_err();
    match &err {
        SmimeError::NotRecipient { recipients } => {
            assert!(recipients[0].starts_with("kek="), "{recipients:?}")
        }
        other => panic!("{other:?}"),
    }
    report.push(format!("encryptedKekri: {err}"));

    // Signatures.
    for n in ["signedByAliceRSA", "signedByAliceRSAPSS"] {
        let (content, v) = verify_opaque(&keys, &bin(n), CAP);
        assert!(content.unwrap().starts_with(sample), "{n}");
        match one(v) {
            SigVerdict::Good { emails, .. } => assert_eq!(emails, vec!["alice@smime.example"]),
            other => panic!("{n}: {other:?}"),
        }
        // Without trust: the signature is fine, the signer unknown.
        let (_, v) = verify_opaque(&SmimeKeys::default(), &bin(n), CAP);
        assert!(matches!(one(v), SigVerdict::UnknownSigner { .. }), "{n}");
        report.push(format!("{n}: good"));
    }
    let (content, v) = verify_opaque(&keys, &bin("signedByCarlosEd25519"), CAP);
    assert!(content.unwrap().starts_with(sample));
    match one(v) {
        SigVerdict::Rejected { reason } => {
            assert!(reason.contains("Ed25519"), "{reason}");
            report.push(format!("signedByCarlosEd25519: rejected ({reason})"));
        }
        other => panic!("{other:?}"),
    }
    let v = verify_detached(&keys, &bin("signedByCarlosDetached"), sample);
    assert!(
        v.iter().all(|v| !matches!(v, SigVerdict::Good { .. })),
        "{v:?}"
    );
    report.push(format!(
        "signedByCarlosDetached: {}",
        v.iter().map(word).collect::<Vec<_>>().join(",")
    ));
    // Two signers (Alice RSA + Carlos Ed25519), no certificates in the
    // message: never a Good, one verdict each.
    let (_, v) = verify_opaque(&keys, &bin("signedByAliceAndCarlosNoCerts"), CAP);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v.iter().all(|v| !matches!(v, SigVerdict::Good { .. })),
        "{v:?}"
    );
    report.push(format!(
        "signedByAliceAndCarlosNoCerts: {}",
        v.iter().map(word).collect::<Vec<_>>().join(",")
    ));
    eprintln!("RFC 9216:\n  {}", report.join("\n  "));
}

// --- corpora: Thunderbird --------------------------------------------------------

fn thunderbird_keys(dir: &Path, own: &str) -> SmimeKeys {
    let trust = dir.join("TestCA.pem");
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(&trust, t.path().join("TestCA.pem")).unwrap();
    let o = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join(own), o.path().join(own)).unwrap();
    SmimeKeys::load(Some(o.path()), Some(t.path()), Some("nss"), false).expect("NSS keys")
}

#[test]
fn thunderbird_smime() {
    if !corpora_available("smime_api") {
        return;
    }
    for sub in ["mailnews-test-data", "browser-test-data"] {
        let dir = corpora().join("thunderbird-comm-central/smime").join(sub);
        let keys = thunderbird_keys(&dir, "Bob.p12");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        let mut good = 0;
        for p in &files {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let ev = analyze(&keys, &read(p), 0);
            let s = summary(&ev);
            eprintln!("thunderbird {sub}/{name}: {s}");
            let hostile = name.contains(".bad.")
                || name.contains("mismatch-econtent")
                || name.contains("future");
            if hostile {
                assert!(!any_good(&ev), "{name}: {s}");
                assert!(!verdicts(&ev).is_empty(), "{name}: no verdict at all");
            }
            // SHA-1 signatures are refused by policy.
            if name.contains("SHA1") {
                assert!(!any_good(&ev), "{name}: {s}");
            }
            for e in &ev {
                if let Event::DecryptFailed(err) = e {
                    panic!("{name}: decryption failed: {err}");
                }
            }
            if any_good(&ev) {
                good += 1;
                for v in verdicts(&ev) {
                    if let SigVerdict::Good { emails, .. } = v {
                        assert!(
                            emails.iter().any(|e| e.ends_with("@example.com")),
                            "{name}: {emails:?}"
                        );
                    }
                }
            }
        }
        eprintln!(
            "thunderbird {sub}: {good} of {} mails with a good signature",
            files.len()
        );
        assert!(good > 0);
    }
    // Baselines that must be good.
    let dir = corpora().join("thunderbird-comm-central/smime/mailnews-test-data");
    let keys = thunderbird_keys(&dir, "Bob.p12");
    for name in [
        "alice.dsig.SHA256.multipart.eml",
        "alice.sig.SHA256.opaque.eml",
        "alice.dsig.SHA512.multipart.env.eml",
        "alice.env.sig.SHA384.opaque.eml",
    ] {
        let ev = analyze(&keys, &read(dir.join(name)), 0);
        assert!(any_good(&ev), "{name}: {}", summary(&ev));
        assert!(
            verdicts(&ev)
                .iter()
                .all(|v| matches!(v, SigVerdict::Good { .. })),
            "{name}: {}",
            summary(&ev)
        );
    }
    // Double signatures: both layers are verified.
    let ev = analyze(
        &keys,
        &read(dir.join("alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml")),
        0,
    );
    assert_eq!(verdicts(&ev).len(), 2, "{}", summary(&ev));
}

#[test]
fn thunderbird_alice_ec_key_loads() {
    if !corpora_available("smime_api") {
        return;
    }
    let dir = corpora().join("thunderbird-comm-central/smime/mailnews-test-data");
    for f in ["Alice-ec.p12", "Fran-ec.p12", "Dave.p12", "Eve.p12"] {
        let keys = thunderbird_keys(&dir, f);
        assert!(keys.has_identities(), "{f}");
    }
    let err = SmimeKeys::load(Some(&dir), None, Some("not nss"), false).unwrap_err();
    assert!(
        matches!(err, SmimeKeyError::WrongPassphrase { .. }),
        "{err}"
    );
}

// --- corpora: Johnny, You Are Fired (01-cms) ------------------------------------

fn johnny() -> PathBuf {
    corpora().join("rub-nds-johnny-you-are-fired")
}

fn eml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            eml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "eml") {
            out.push(p);
        }
    }
    out.sort();
}

/// Trust the GlobalSign intermediate as the anchor (the root is not in the
/// corpus); the signatures' signingTime (2019) lies within the certificates'
/// validity, so the valid baselines are good.
fn johnny_keys() -> (tempfile::TempDir, SmimeKeys) {
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(
        johnny().join("assets/certificates/intermediate_ca.crt"),
        t.path().join("globalsign-personalsign.crt"),
    )
    .unwrap();
    let keys = SmimeKeys::load(None, Some(t.path()), None, false).unwrap();
    (t, keys)
}

#[test]
fn johnny_cms_spoofs_are_never_good() {
    if !corpora_available("smime_api") {
        return;
    }
    let (_t, keys) = johnny_keys();
    let mut files = Vec::new();
    eml_files(&johnny().join("01-cms"), &mut files);
    assert_eq!(files.len(), 8);
    for p in &files {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let ev = analyze(&keys, &read(p), 0);
        let s = summary(&ev);
        eprintln!("johnny 01-cms/{name}: {s}");
        if name == "valid_email_from_manager.eml" {
            assert!(any_good(&ev), "baseline: {s}");
            continue;
        }
        assert!(!any_good(&ev), "{name}: {s}");
        assert!(!verdicts(&ev).is_empty(), "{name}: no verdict");
        if name.starts_with("multiple_signerInfos") {
            assert_eq!(
                verdicts(&ev).len(),
                2,
                "{name}: one verdict per signer: {s}"
            );
        }
        if name.starts_with("no_signerInfos") {
            match verdicts(&ev).as_slice() {
                [SigVerdict::Bad { reason }] => assert!(reason.contains("no signer"), "{reason}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

#[test]
fn johnny_smime_baselines_and_identity_cases() {
    if !corpora_available("smime_api") {
        return;
    }
    // The S/MIME mails of the other classes verify as Eve or the manager;
    // the From check is the glue's job, so here only the signer's emails.
    let (_t, keys) = johnny_keys();
    let mut files = Vec::new();
    for sub in ["assets/valid-signed", "03-mime", "04-id", "05-ui"] {
        eml_files(&johnny().join(sub), &mut files);
    }
    let mut n = 0;
    for p in files
        .iter()
        .filter(|p| p.to_string_lossy().contains("smime"))
    {
        n += 1;
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let ev = analyze(&keys, &read(p), 0);
        eprintln!("johnny {name}: {}", summary(&ev));
        for v in verdicts(&ev) {
            if let SigVerdict::Good { emails, .. } = v {
                assert!(
                    emails == &vec!["eve@bigcorporation.de".to_string()]
                        || emails == &vec!["manager@bigcorporation.de".to_string()],
                    "{name}: {emails:?}"
                );
            }
        }
    }
    assert!(n >= 15, "{n} S/MIME mails");
}

// --- corpora: covert content (legacy PKCS#12) -------------------------------------

#[test]
fn covert_content_legacy_pfx_decrypts() {
    if !corpora_available("smime_api") {
        return;
    }
    let base = corpora().join("rub-nds-covert-content-attacks");
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(
        base.join("assets/secret-keys/manager@bigcorporation.pfx"),
        t.path().join("manager.pfx"),
    )
    .unwrap();
    let keys = SmimeKeys::load(Some(t.path()), None, Some("test12345678"), false)
        .expect("RC2-40 PKCS#12 loads with the legacy provider");
    assert_eq!(
        keys.identity_emails(),
        vec!["manager@bigcorporation.de".to_string()]
    );
    let raw = read(base.join("01-enc/smime/00-original-mail.eml"));
    let d = decrypt(&keys, &root_der(&raw), CAP).expect("decrypts");
    assert_eq!(d.algorithm, "aes-128-cbc");
    assert!(!d.auth_enveloped);
    // The attack mails embed the same ciphertext deeper in the structure;
    // decrypting the part itself works (refusing it is the glue's job).
    let raw = read(base.join("01-enc/smime/01-reply-mix-alt.eml"));
    let ev = analyze(&keys, &raw, 0);
    eprintln!("covert 01-reply-mix-alt: {}", summary(&ev));
}

// --- timing ----------------------------------------------------------------------

// --- the demo mailbox -------------------------------------------------------------

#[test]
fn demo_mailbox_material() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/demo");
    let keys = SmimeKeys::load(
        Some(&demo.join("smime")),
        Some(&demo.join("trust")),
        None,
        false,
    )
    .expect("demo S/MIME keys");
    assert_eq!(
        keys.summary(),
        "S/MIME: 1 identity (demo@popcrypt.invalid), 1 trust anchor"
    );
    let sample = |n: &str| read(demo.join("samples").join(n));
    let ev = analyze(&keys, &sample("smime-encrypted.eml"), 0);
    assert_eq!(summary(&ev), "decrypted(aes-256-gcm)");
    let ev = analyze(&keys, &sample("smime-signed.eml"), 0);
    assert_eq!(summary(&ev), "[good alice@popcrypt.invalid]");
    let ev = analyze(&keys, &sample("smime-tampered.eml"), 0);
    assert!(
        matches!(verdicts(&ev).as_slice(), [SigVerdict::Bad { .. }]),
        "{}",
        summary(&ev)
    );
}

// --- bounded work ------------------------------------------------------------------

/// One DER TLV at the start of `b`: (header length, content length).
fn tlv(b: &[u8]) -> (usize, usize) {
    let l = b[1] as usize;
    if l < 0x80 {
        return (2, l);
    }
    let n = l & 0x7f;
    let len = b[2..2 + n]
        .iter()
        .fold(0usize, |a, &x| (a << 8) | x as usize);
    (2 + n, len)
}

/// The TLVs inside a constructed value's content.
fn children(content: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (h, l) = tlv(rest);
        v.push(&rest[..h + l]);
        rest = &rest[h + l..];
    }
    v
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The same SignedData with its (only) SignerInfo repeated `k` times, as a
/// sender can write it: every copy is a valid signature.
fn with_signer_copies(sig: &[u8], k: usize) -> Vec<u8> {
    // OpenSSL's S/MIME output is BER (streamed); work on its DER.
    let der = openssl::cms::CmsContentInfo::from_der(sig)
        .unwrap()
        .to_der()
        .unwrap();
    let (h, l) = tlv(&der);
    let ci = children(&der[h..h + l]);
    let explicit = ci[1];
    let (h, l) = tlv(explicit);
    let sd = &explicit[h..h + l];
    let (h, l) = tlv(sd);
    let mut fields = children(&sd[h..h + l]);
    let signer_set = fields.pop().unwrap();
    assert_eq!(signer_set[0], 0x31, "signerInfos is the last SET");
    let (h, l) = tlv(signer_set);
    let signers = children(&signer_set[h..h + l]);
    assert_eq!(signers.len(), 1);
    let set = encode(0x31, &signers[0].repeat(k));
    let mut sd_content: Vec<u8> = fields.concat();
    sd_content.extend_from_slice(&set);
    let sd = encode(0x30, &sd_content);
    let mut ci_content = ci[0].to_vec();
    ci_content.extend_from_slice(&encode(0xa0, &sd));
    encode(0x30, &ci_content)
}

/// A signature with many SignerInfos costs no more than one with a few: at
/// most `MAX_SIGNER_INFOS` are examined (more is `bad` before any check),
/// and the complete OpenSSL verification runs once per message, not once
/// per good signer (that made 1,000 copies of one SignerInfo cost ~10^6
/// signer checks).
#[test]
fn signer_infos_are_capped_and_confirmed_once() {
    let keys = demo_keys();
    let (data, sig) = detached("signed-detached");
    for k in [1, 2, smime::MAX_SIGNER_INFOS] {
        let copies = with_signer_copies(&sig, k);
        let before = smime::cms_verify_calls();
        let v = verify_detached(&keys, &copies, &data);
        let calls = smime::cms_verify_calls() - before;
        assert_eq!(v.len(), k, "{k}: {v:?}");
        for s in &v {
            assert!(
                matches!(s, SigVerdict::Good { emails, .. } if emails == &["alice@popcrypt.invalid"]),
                "{k}: {v:?}"
            );
        }
        // The signature check over all signers, then one confirmation.
        assert_eq!(calls, 2, "{k} signers: CMS_verify calls");
    }
    for k in [smime::MAX_SIGNER_INFOS + 1, 1000] {
        let copies = with_signer_copies(&sig, k);
        let before = smime::cms_verify_calls();
        let v = verify_detached(&keys, &copies, &data);
        assert_eq!(
            smime::cms_verify_calls() - before,
            0,
            "{k}: nothing checked"
        );
        assert_eq!(
            v,
            [SigVerdict::Bad {
                reason: format!("too many signers: {k}")
            }],
            "{k}"
        );
    }
    // Opaque signatures: the same cap.
    let opaque = root_der(&case("signed-opaque"));
    let copies = with_signer_copies(&opaque, smime::MAX_SIGNER_INFOS + 1);
    let (content, v) = verify_opaque(&keys, &copies, CAP);
    assert!(content.is_some());
    assert!(
        matches!(v.as_slice(), [SigVerdict::Bad { reason }] if reason == "too many signers: 9"),
        "{v:?}"
    );
    // A tampered part with copies: still bad, and no confirmation needed.
    let copies = with_signer_copies(&sig, 3);
    let before = smime::cms_verify_calls();
    let mut tampered = data.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    let v = verify_detached(&keys, &copies, &tampered);
    assert!(
        v.len() == 3 && v.iter().all(|s| matches!(s, SigVerdict::Bad { .. })),
        "{v:?}"
    );
    assert!(smime::cms_verify_calls() - before <= 2);
}

/// RecipientInfos for other people are skipped without a private-key
/// operation: a message encrypted to 40 others with our certificate last
/// decrypts with one try of our key, and one for others only is "not for
/// us" with a bounded list of recipients.
#[test]
fn recipients_for_others_cost_no_key_operation() {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    use openssl::stack::Stack;
    use openssl::x509::X509;
    let keys = demo_keys();
    let cert = |pem: &str| X509::from_pem(&read(golden().join(pem))).unwrap();
    let bob = cert("keys-private/bob.pem");
    let mallory = cert("keys-private/mallory.pem");
    let demo = cert("keys/smime/demo.pem");
    let entity = b"Content-Type: text/plain\r\n\r\nforty recipients\r\n";
    let build = |ours: bool| {
        let mut st = Stack::new().unwrap();
        for i in 0..40 {
            st.push(if i % 2 == 0 {
                bob.clone()
            } else {
                mallory.clone()
            })
            .unwrap();
        }
        if ours {
            st.push(demo.clone()).unwrap();
        }
        CmsContentInfo::encrypt(
            &st,
            entity,
            openssl::symm::Cipher::aes_256_cbc(),
            CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap()
    };
    let der = build(true);
    let before = smime::private_key_tries();
    let d = decrypt(&keys, &der, CAP).expect("our certificate is the 41st recipient");
    assert_eq!(d.content, entity);
    assert_eq!(
        smime::private_key_tries() - before,
        1,
        "only our named identity is tried"
    );

    let der = build(false);
    match decrypt(&keys, &der, CAP) {
        Err(SmimeError::NotRecipient { recipients }) => {
            assert_eq!(recipients.len(), 9, "{recipients:?}");
            assert_eq!(recipients[8], "and 32 more");
            // DER sorts the SET: some order of bob's and mallory's.
            assert!(
                recipients[..8]
                    .iter()
                    .all(|r| r.ends_with("serial=1005") || r.ends_with("serial=2001")),
                "{recipients:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
