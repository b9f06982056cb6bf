//! Every S/MIME mail in the published corpora (the folder named by
//! `POPCRYPT_CORPORA`) through the whole transform, with the keys its
//! legitimate recipient holds (`tests/smime_api.rs` covers the CMS layer
//! alone on the same mails).
//!
//! Asserted for every mail: no spoof gets `smime; good`; the baselines do;
//! what is not decrypted (or, for opaque SignedData, unwrapped) is
//! delivered as the original bytes plus the two status headers; a
//! ciphertext is decrypted only when it is the whole message (possibly
//! inside signature layers), never when it is embedded in a message the
//! attacker built; and each mail matches its hand-written expectation.
//!
//! `cargo test --test corpora_smime -- --nocapture` prints one line per
//! mail: group, file, class, the two header values, and OK/FAIL.
//!
//! The RFC 9216 examples are bare CMS objects, not messages: they are
//! covered by `tests/smime_api.rs` only (see `rfc9216_holds_no_whole_messages`).

mod support;
use std::path::{Path, PathBuf};
use support::corpora::{corpora, corpora_available};

use mail_parser::{MessageParser, PartType};
use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::verdict::{Scheme, Verdict, Word};
use popcrypt::message::{annotate_message, mime, smime, Report, Transformer};
use support::verdicts::{expected_word, Status};

/// What a POP3 server hands over: CRLF line ends.
fn crlf(raw: &[u8]) -> Vec<u8> {
    popcrypt::pop3::response::crlf_lines(raw)
}

/// A keys directory in a temporary directory: `own` files into `smime/`,
/// `trust` into `trust/`, `pgp` into `openpgp/` (paths relative to the
/// corpora), and the passphrase (if any) in a file outside them.
fn keys(
    own: &[&str],
    trust: &[&str],
    pgp: &[&str],
    passphrase: Option<&str>,
) -> (tempfile::TempDir, Transformer) {
    let dir = tempfile::tempdir().unwrap();
    for (sub, files) in [("smime", own), ("trust", trust), ("openpgp", pgp)] {
        if files.is_empty() {
            continue;
        }
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for f in files {
            let src = corpora().join(f);
            std::fs::copy(&src, dir.path().join(sub).join(src.file_name().unwrap()))
                .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
    }
    let pass = match passphrase {
        Some(p) => {
            let file = dir.path().join("passphrase");
            std::fs::write(&file, format!("{p}\n")).unwrap();
            PassphraseSource {
                file: Some(file),
                env: None,
            }
        }
        None => PassphraseSource::default(),
    };
    let ring = Keyring::load(dir.path(), &pass).expect("keys directory loads");
    println!("keys: {}", ring.summary().join("; "));
    (dir, Transformer::with_keys(ring, 64 << 20))
}

fn eml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            eml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "eml") {
            out.push(p);
        }
    }
}

/// Whether a mail carries S/MIME anywhere (application/(x-)pkcs7-*).
fn mentions_pkcs7(raw: &[u8]) -> bool {
    raw.windows(5).any(|w| w.eq_ignore_ascii_case(b"pkcs7"))
}

/// The S/MIME mails under `dir` (relative to the corpora), sorted.
fn smime_mails(dir: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    eml_files(&corpora().join(dir), &mut all);
    all.retain(|p| mentions_pkcs7(&std::fs::read(p).unwrap()));
    all.sort();
    all
}

// --- the shape of a message, independent of the transform -----------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// application/pkcs7-mime EnvelopedData / AuthEnvelopedData.
    Enveloped,
    /// application/pkcs7-mime SignedData (opaque signature).
    Opaque,
    /// multipart/signed whose signed part is EnvelopedData.
    SignedCiphertext,
    /// multipart/signed (S/MIME or OpenPGP) over anything else.
    Signed,
    /// PGP/MIME multipart/encrypted.
    PgpEncrypted,
    /// Anything else (multipart/mixed, text, ...).
    Other,
}

fn is_pkcs7_mime(p: &mail_parser::MessagePart<'_>) -> bool {
    matches!(
        mime::mime_type(p).as_str(),
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    )
}

fn cms_kind(p: &mail_parser::MessagePart<'_>) -> String {
    smime::content_type(p.contents()).unwrap_or_else(|| {
        mime::param(p, "smime-type")
            .unwrap_or("unreadable")
            .to_ascii_lowercase()
    })
}

/// The shape of the message, and the first base64 line of the
/// ciphertext that is the whole message (to check it is gone after
/// decryption).
fn shape(raw: &[u8]) -> (Shape, Option<Vec<u8>>) {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return (Shape::Other, None);
    };
    let root = &msg.parts[0];
    let first_line = |p: &mail_parser::MessagePart<'_>| {
        raw.get(p.offset_body as usize..p.offset_end as usize)
            .and_then(|b| {
                b.split(|&c| c == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                    .find(|l| l.len() >= 40)
                    .map(<[u8]>::to_vec)
            })
    };
    if is_pkcs7_mime(root) {
        return match cms_kind(root).as_str() {
            "signed-data" => (Shape::Opaque, None),
            _ => (Shape::Enveloped, first_line(root)),
        };
    }
    match mime::mime_type(root).as_str() {
        "multipart/signed" => {
            if let PartType::Multipart(ids) = &root.body {
                if let Some(first) = ids.first().map(|&i| &msg.parts[i as usize]) {
                    if is_pkcs7_mime(first) && cms_kind(first) != "signed-data" {
                        return (Shape::SignedCiphertext, first_line(first));
                    }
                }
            }
            (Shape::Signed, None)
        }
        "multipart/encrypted" => (Shape::PgpEncrypted, None),
        _ => (Shape::Other, None),
    }
}

// --- expectations ------------------------------------------------------------------

/// One expectation on a status verdict, written as its header value: the
/// leading tokens name the class, matched on the type
/// ([`support::verdicts`]); the rest is compared with the value.
#[derive(Debug, Clone)]
enum W {
    Is(String),
    Starts(String),
    /// Starts with the first string and contains the second.
    StartsHas(String, String),
    /// Neither an S/MIME nor an OpenPGP `good`.
    NotGood,
    Either(Box<W>, Box<W>),
}

impl W {
    fn holds(&self, v: &impl Status) -> bool {
        match self {
            W::Is(s) => v.is_class(s) && v.to_string() == *s,
            W::Starts(s) => v.is_class(s) && v.to_string().starts_with(s.as_str()),
            W::StartsHas(a, b) => {
                let text = v.to_string();
                v.is_class(a) && text.starts_with(a.as_str()) && text.contains(b.as_str())
            }
            W::NotGood => !v.is_good(),
            W::Either(a, b) => a.holds(v) || b.holds(v),
        }
    }
    /// Whether a signature expectation allows an S/MIME `good`.
    fn allows_good(&self) -> bool {
        match self {
            W::Is(s) | W::Starts(s) | W::StartsHas(s, _) => {
                expected_word(s) == Some((Scheme::Smime, Word::Good))
            }
            W::NotGood => false,
            W::Either(a, b) => a.allows_good() || b.allows_good(),
        }
    }
}

fn is(s: &str) -> W {
    W::Is(s.into())
}

fn starts(s: &str) -> W {
    W::Starts(s.into())
}

/// What a demanding user expects for one mail.
struct Exp {
    class: &'static str,
    enc: W,
    sig: W,
}

fn exp(class: &'static str, enc: W, sig: W) -> Option<Exp> {
    Some(Exp { class, enc, sig })
}

fn none() -> W {
    is("none")
}

/// Opaque SignedData is unwrapped: the Encryption value starts `none`.
fn unwrapped() -> W {
    starts("none")
}

// --- one mail -------------------------------------------------------------------------

struct Seen {
    name: String,
    out: Vec<u8>,
    report: Report,
    shape: Shape,
    class: String,
    problems: Vec<String>,
}

fn decrypted(r: &Report) -> bool {
    r.encryption.is_decrypted()
}

/// Transform one mail and check the invariants and its expectation.
fn check(t: &Transformer, path: &Path, name: String, expect: Option<Exp>) -> Seen {
    let raw = crlf(&std::fs::read(path).unwrap());
    let (out, report) = t.transform(&raw);
    let (shape, ciphertext_line) = shape(&raw);
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    need(
        out.starts_with(&report.header_lines()),
        "the output starts with the two status header lines".into(),
    );
    let head = &out[..mime::header_end(&out)];
    let status_fields = mime::fields(head)
        .iter()
        .filter(|f| f.name.starts_with("x-popcrypt-"))
        .count();
    need(
        status_fields == 2,
        format!("{status_fields} X-Popcrypt-* fields"),
    );
    let unchanged = out == annotate_message(&raw, &report);
    let dec = decrypted(&report);
    if dec {
        need(
            matches!(
                shape,
                Shape::Enveloped | Shape::SignedCiphertext | Shape::Opaque | Shape::PgpEncrypted
            ),
            format!("embedded ciphertext decrypted ({shape:?})"),
        );
        if let Some(line) = &ciphertext_line {
            need(
                !out.windows(line.len()).any(|w| w == line.as_slice()),
                "ciphertext left in the decrypted output".into(),
            );
        }
    } else if shape == Shape::Opaque {
        // Unwrapped (content shown with the verdict) or, if the content
        // could not be read, the original.
        let root_type = MessageParser::default()
            .parse(&out)
            .map(|m| mime::mime_type(&m.parts[0]))
            .unwrap_or_default();
        need(
            unchanged || !root_type.contains("pkcs7-mime"),
            "opaque SignedData neither unwrapped nor unchanged".into(),
        );
    } else {
        need(unchanged, "not decrypted, but altered".into());
    }
    let class = match &expect {
        None => {
            need(false, "no hand-written expectation".into());
            "?".to_string()
        }
        Some(e) => {
            need(
                e.enc.holds(&report.encryption),
                format!("X-Popcrypt-Encryption, want {:?}", e.enc),
            );
            need(
                e.sig.holds(&report.signature),
                format!("X-Popcrypt-Signature, want {:?}", e.sig),
            );
            e.class.to_string()
        }
    };
    if matches!(
        report.signature.verdict,
        Verdict::Good {
            scheme: Scheme::Smime,
            ..
        }
    ) {
        need(
            expect.as_ref().is_some_and(|e| e.sig.allows_good()),
            "SPOOF: good signature where none is expected".into(),
        );
    }
    Seen {
        name,
        out,
        report,
        shape,
        class,
        problems,
    }
}

/// Run a group: every mail checked, the table printed.
fn run(
    group: &str,
    base: &str,
    files: &[PathBuf],
    t: &Transformer,
    expect: impl Fn(&str) -> Option<Exp>,
) -> Vec<Seen> {
    let root = corpora().join(base);
    let mut seen = Vec::new();
    for p in files {
        let name = p.strip_prefix(&root).unwrap().display().to_string();
        let s = check(t, p, name.clone(), expect(&name));
        println!(
            "{group:<9} {:<74} {:<44} enc={} | sig={} | {}",
            s.name,
            s.class,
            s.report.encryption,
            s.report.signature,
            if s.problems.is_empty() {
                "OK".to_string()
            } else {
                format!("FAIL: {}", s.problems.join("; "))
            }
        );
        seen.push(s);
    }
    seen
}

fn assert_clean(group: &str, seen: &[Seen]) {
    let bad: Vec<String> = seen
        .iter()
        .filter(|s| !s.problems.is_empty())
        .map(|s| {
            format!(
                "{}: {}\n    enc: {}\n    sig: {}",
                s.name,
                s.problems.join("; "),
                s.report.encryption,
                s.report.signature
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{group}: {} of {} mails fail:\n{}",
        bad.len(),
        seen.len(),
        bad.join("\n")
    );
}

fn get<'a>(seen: &'a [Seen], name: &str) -> &'a Seen {
    seen.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("corpus mail {name} not found"))
}

// --- RUB-NDS "Johnny, You Are Fired" -----------------------------------------------

const JOHNNY: &str = "rub-nds-johnny-you-are-fired";

fn johnny_expect(name: &str) -> Option<Exp> {
    let eve = || is("smime; good; signer=eve@bigcorporation.de");
    let manager = || is("smime; good; signer=manager@bigcorporation.de");
    let file = name.rsplit('/').next().unwrap_or(name);
    match name {
        "assets/valid-signed/eve-smime.eml" => exp("baseline: good", none(), eve()),
        "assets/valid-signed/manager-smime.eml" | "01-cms/valid_email_from_manager.eml" => {
            exp("baseline: good", none(), manager())
        }
        _ if name.starts_with("01-cms/c1_eContent-confusion/") => exp(
            "CMS eContent confusion: bad",
            none(),
            starts("smime; bad (a detached signature that also carries signed content"),
        ),
        _ if name.starts_with("01-cms/c2_multiple-signerInfos/") => exp(
            "CMS extra signerInfo: bad",
            none(),
            starts("smime; bad (one of the 2 signatures does not verify"),
        ),
        _ if name.starts_with("01-cms/c3_no-signerInfos/") => exp(
            "CMS without signerInfo: bad",
            none(),
            is("smime; bad (no signer (the signature holds no SignerInfo))"),
        ),
        "01-cms/crashes/crash_01.eml" => exp(
            "malformed CMS: bad",
            none(),
            starts("smime; bad (unreadable signature: "),
        ),
        _ if name.starts_with("03-mime/") => exp(
            "signed part inside a MIME tree: not good",
            none(),
            W::NotGood,
        ),
        // The From address is Eve's own and the display name names nobody
        // else: good for Eve. (A display name or a Sender naming another
        // address is a from-mismatch below: a legacy client may show it.)
        _ if file == "i2-from-contains-signer-smime.eml" => {
            exp("From address = signer (Eve): good Eve", none(), eve())
        }
        _ if name.starts_with("04-id/") => exp(
            "From/signer confusion: from-mismatch",
            none(),
            starts("smime; from-mismatch; signer=eve@bigcorporation.de; "),
        ),
        _ => None,
    }
}

#[test]
fn johnny_smime_spoofs_never_get_good() {
    if !corpora_available("corpora_smime") {
        return;
    }
    // The GlobalSign intermediate as the anchor (the root is not in the
    // corpus); the signatures (2019) fall within the certificates' validity.
    let (_k, t) = keys(
        &[],
        &["rub-nds-johnny-you-are-fired/assets/certificates/intermediate_ca.crt"],
        &[],
        None,
    );
    let files = smime_mails(JOHNNY);
    assert_eq!(files.len(), 29, "S/MIME mails in {JOHNNY}");
    let seen = run("johnny", JOHNNY, &files, &t, johnny_expect);
    assert_clean("johnny", &seen);
}

/// The same mails when the GlobalSign chain is not trusted (only an
/// unrelated anchor): nothing is good; the signatures that verify are
/// `unknown-signer`.
#[test]
fn johnny_smime_untrusted_chain_is_never_good() {
    if !corpora_available("corpora_smime") {
        return;
    }
    let (_k, t) = keys(
        &[],
        &["thunderbird-comm-central/smime/mailnews-test-data/TestCA.pem"],
        &[],
        None,
    );
    let files = smime_mails(JOHNNY);
    let seen = run("johnny-nt", JOHNNY, &files, &t, |name| {
        let trusted = johnny_expect(name)?;
        if trusted.sig.allows_good() || trusted.class.starts_with("From/signer") {
            exp(
                "verifies, chain not trusted: unknown-signer",
                none(),
                starts("smime; unknown-signer; signer=subject="),
            )
        } else {
            exp(trusted.class, trusted.enc, W::NotGood)
        }
    });
    assert_clean("johnny-nt", &seen);
}

// --- RUB-NDS covert content attacks --------------------------------------------------

const COVERT: &str = "rub-nds-covert-content-attacks";

fn covert_expect(name: &str) -> Option<Exp> {
    if name == "01-enc/smime/00-original-mail.eml" {
        exp(
            "benign original: decrypted",
            is("smime; decrypted; algorithm=aes-128-cbc; integrity=none"),
            none(),
        )
    } else {
        exp("embedded ciphertext: not decrypted", none(), none())
    }
}

#[test]
fn covert_content_smime_never_decrypts_embedded_ciphertext() {
    if !corpora_available("corpora_smime") {
        return;
    }
    // The manager's legacy (RC2-40/3DES) PKCS#12; password from the corpus README.
    let (_k, t) = keys(
        &["rub-nds-covert-content-attacks/assets/secret-keys/manager@bigcorporation.pfx"],
        &[],
        &[],
        Some("test12345678"),
    );
    let files = smime_mails(COVERT);
    assert_eq!(files.len(), 8, "S/MIME mails in {COVERT}");
    let seen = run("covert", COVERT, &files, &t, covert_expect);
    assert_clean("covert", &seen);
    // The original's plaintext reaches no attack mail's output.
    let original = get(&seen, "01-enc/smime/00-original-mail.eml");
    let body = &original.out[mime::body_start(&original.out)..];
    let secret: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| l.len() >= 12)
        .collect();
    assert!(!secret.is_empty(), "the original decrypts to some text");
    println!(
        "covert: original plaintext lines: {:?}",
        secret
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect::<Vec<_>>()
    );
    for s in seen.iter().filter(|s| s.name != original.name) {
        for line in &secret {
            assert!(
                !s.out.windows(line.len()).any(|w| w == *line),
                "{}: plaintext of the original released",
                s.name
            );
        }
    }
}

// --- Thunderbird (NSS test data) -------------------------------------------------------

const TB_MAILNEWS: &str = "thunderbird-comm-central/smime/mailnews-test-data";
const TB_BROWSER: &str = "thunderbird-comm-central/smime/browser-test-data";

/// Hand-written expectations for Thunderbird's S/MIME mails, from the file
/// names (NSS test suite naming: `env` enveloped, `dsig` detached
/// multipart/signed, `sig` opaque, `bad` tampered, `mismatch-econtent`
/// eContent confusion, `future` signingTime far from Date, `dave` an outer
/// signature by Dave; From is Dave for those, Alice otherwise).
fn thunderbird_expect(browser: bool, name: &str) -> Option<Exp> {
    let alice = || is("smime; good; signer=alice@example.com");
    let dave = || is("smime; good; signer=dave@example.com");
    let cbc = "smime; decrypted; algorithm=aes-128-cbc";
    let cbc_no_integrity = || is(&format!("{cbc}; integrity=none"));
    let sha1 = name.contains(".SHA1.");
    let weak = || is("smime; rejected (policy: weak signature algorithm SHA-1)");
    if browser {
        match name {
            "alice.dsig.SHA256.multipart.in.mixed.eml"
            | "alice.dsig.SHA256.multipart.in.mixed.with.header.eml" => {
                return exp(
                    "signed part inside multipart/mixed: not good",
                    none(),
                    W::NotGood,
                )
            }
            "multipart-alternative.eml" => {
                return exp(
                    "2 ciphertexts in multipart/alternative: not decrypted",
                    none(),
                    none(),
                )
            }
            "nested-sigs.eml" => {
                return exp(
                    "signature that does not verify: bad",
                    none(),
                    starts("smime; bad ("),
                )
            }
            // Signed by an Alice certificate of an older test-CA generation
            // than the TestCA.pem beside it.
            "alice.html.sig.SHA256.opaque.eml" => {
                return exp("stale test certificate: not good", unwrapped(), W::NotGood)
            }
            _ => {}
        }
    }
    if name == "alice.env.eml" {
        return exp("encrypted (CBC): decrypted", cbc_no_integrity(), none());
    }
    if name.contains(".bad.") {
        return exp(
            "tampered: bad",
            none(),
            starts("smime; bad (the signature does not verify"),
        );
    }
    if name.contains("mismatch-econtent") {
        return exp(
            "eContent confusion: bad",
            none(),
            starts("smime; bad (a detached signature that also carries signed content"),
        );
    }
    if name.starts_with("alice.future.") {
        return exp(
            "re-dated (signingTime vs Date): rejected",
            none(),
            starts("smime; rejected (policy: the signature was made at "),
        );
    }
    let plain_signed = ["alice.dsig.", "alice.sig.", "alice.html.sig."]
        .iter()
        .any(|p| name.starts_with(p));
    let opaque = name.contains(".opaque.");
    if plain_signed && !name.contains(".env.") {
        let enc = if opaque { unwrapped() } else { none() };
        return if sha1 {
            exp("SHA-1 signature: rejected", enc, weak())
        } else {
            exp("baseline: good", enc, alice())
        };
    }
    if plain_signed && name.ends_with(".env.eml") {
        // Sign-then-encrypt: only a good signature inside makes up for CBC.
        if sha1 {
            return exp(
                "sign-then-encrypt, SHA-1: decrypted, rejected",
                W::StartsHas(cbc.into(), "integrity=none".into()),
                weak(),
            );
        }
        let enc = if opaque {
            is(&format!("{cbc}; signed-data unwrapped"))
        } else {
            is(cbc)
        };
        return exp("sign-then-encrypt: decrypted, good", enc, alice());
    }
    if name.starts_with("alice.env.") && !name.contains(".dave.") {
        // Encrypt-then-sign: the signature covers the ciphertext only, so
        // integrity=none stays (see golden_smime.rs), and its verdict is
        // only `outer=`: the plaintext carries no signature.
        let enc = W::StartsHas(cbc.into(), "integrity=none".into());
        return if name.contains(".dsig.") {
            // NSS signed the part with LF line ends; the stored mail has
            // CRLF, so the signature cannot verify (OpenSSL agrees).
            exp(
                "encrypt-then-sign, signed bytes not as stored: decrypted, outer bad",
                enc,
                is("none; outer=bad"),
            )
        } else if sha1 {
            exp(
                "encrypt-then-sign, SHA-1: decrypted, outer rejected",
                enc,
                is("none; outer=rejected"),
            )
        } else {
            exp(
                "encrypt-then-sign: decrypted, outer good, integrity=none",
                enc,
                is("none; outer=good; outer-signer=alice@example.com"),
            )
        };
    }
    if name.contains(".dave.") {
        if sha1 {
            return exp(
                "double signature, SHA-1: not good",
                W::Either(Box::new(starts("none")), Box::new(starts(cbc))),
                W::NotGood,
            );
        }
        if name.starts_with("alice.plain.") {
            return exp(
                "Alice signed, Dave re-signed (From Dave): good Dave",
                unwrapped(),
                dave(),
            );
        }
        if name.starts_with("alice.env.sig.") {
            return exp(
                "encrypt, sign, Dave re-signed: decrypted, outer good Dave",
                W::StartsHas(cbc.into(), "integrity=none".into()),
                is("none; outer=good; outer-signer=dave@example.com"),
            );
        }
        if name.starts_with("alice.env.dsig.") {
            // Both signatures verify over the exact bytes inside Dave's
            // opaque signature (smime_api.rs: good dave -> good alice).
            return exp(
                "encrypt, detached-sign, Dave re-signed: good Dave",
                W::Either(
                    Box::new(starts("none")),
                    Box::new(W::StartsHas(cbc.into(), "integrity=none".into())),
                ),
                dave(),
            );
        }
    }
    None
}

#[test]
fn thunderbird_smime() {
    if !corpora_available("corpora_smime") {
        return;
    }
    let mut all = Vec::new();
    for (group, dir, browser, count) in [
        ("tb-mail", TB_MAILNEWS, false, 66),
        ("tb-browser", TB_BROWSER, true, 10),
    ] {
        let (_k, t) = keys(
            &[&format!("{dir}/Bob.p12")],
            &[&format!("{dir}/TestCA.pem")],
            &[],
            Some("nss"),
        );
        let files = smime_mails(dir);
        assert_eq!(files.len(), count, "S/MIME mails in {dir}");
        let mut seen = run(group, dir, &files, &t, |n| thunderbird_expect(browser, n));
        // Every decryption that Bob's key allows actually happened.
        for s in &mut seen {
            if s.shape == Shape::Enveloped && !decrypted(&s.report) {
                s.problems.push("enveloped for Bob, not decrypted".into());
            }
            s.name = format!("{group}/{}", s.name);
        }
        all.extend(seen);
    }
    assert_clean("thunderbird", &all);
}

// --- Thunderbird mail mixing OpenPGP and S/MIME ---------------------------------------

const TB: &str = "thunderbird-comm-central";

fn mixed_expect(name: &str) -> Option<Exp> {
    match name.rsplit('/').next().unwrap_or(name) {
        "outer-smime-bad-sig-inner-pgp-enc.eml"
        | "outer-smime-bad-sig-inner-pgp-enc-sig.eml"
        | "outer-smime-bad-sig-inner-pgp-enc-sig-with-mixed.eml" => exp(
            "bad S/MIME signature around PGP/MIME: bad, unchanged",
            none(),
            starts("smime; bad ("),
        ),
        "dual-signed-uncommon-content-type.eml" => exp(
            "S/MIME around PGP/MIME signed: not good",
            none(),
            W::NotGood,
        ),
        "multiple-signatures.eml" => exp("signed mails in a digest: none", none(), none()),
        "inner-smime-sig-in-pgp-encrypted.eml" => exp(
            "fake S/MIME signature inside PGP: not good",
            is("openpgp; decrypted"),
            W::NotGood,
        ),
        "pgp-sig-wrapping-smime-enc.eml" => exp(
            "PGP signature around S/MIME CBC (not ours): not decrypted",
            none(),
            W::NotGood,
        ),
        _ => None,
    }
}

#[test]
fn thunderbird_mixed_openpgp_and_smime() {
    if !corpora_available("corpora_smime") {
        return;
    }
    let k = "thunderbird-comm-central/openpgp/keys/";
    let (_k, t) = keys(
        &[&format!("{TB_MAILNEWS}/Bob.p12")],
        &[&format!("{TB_MAILNEWS}/TestCA.pem")],
        &[
            &format!("{k}alice@openpgp.example-0xf231550c4f47e38e-secret.asc"),
            &format!("{k}bob@openpgp.example-0xfbfcc82a015e7330-pub.asc"),
            &format!("{k}carol@example.com-0x3099ff1238852b9f-pub.asc"),
        ],
        Some("nss"),
    );
    let mut files = smime_mails("thunderbird-comm-central/openpgp");
    files.extend(smime_mails(
        "thunderbird-comm-central/openpgp-remote-content-integrity",
    ));
    // Its S/MIME signature is inside the PGP encryption.
    files.push(
        corpora().join("thunderbird-comm-central/openpgp/eml/inner-smime-sig-in-pgp-encrypted.eml"),
    );
    files.sort();
    assert_eq!(files.len(), 7);
    let seen = run("tb-mixed", TB, &files, &t, mixed_expect);
    assert_clean("tb-mixed", &seen);
}

// --- RFC 9216 ----------------------------------------------------------------------------

/// The RFC 9216 examples are bare CMS (`.p7m`, `.pem`), not messages; the
/// API tests decrypt and verify them. Should whole messages be added to the
/// corpus, this fails so they get a transform test.
#[test]
fn rfc9216_holds_no_whole_messages() {
    if !corpora_available("corpora_smime") {
        return;
    }
    let mut files = Vec::new();
    eml_files(&corpora().join("rfc9216-lamps-examples-cms"), &mut files);
    assert!(files.is_empty(), "{files:?}");
    println!("rfc9216   (bare CMS objects only: covered by tests/smime_api.rs, skipped here)");
}
