//! Regression mail for the forgery classes of the outside review (issue 7):
//! parser differentials around multipart/signed and multipart/encrypted,
//! lone CR in header fields, two Content-Type fields, encrypt-then-sign by
//! someone else, display-name and sender tricks, too deep nesting.
//!
//! The inputs are real GnuPG / OpenSSL signatures and ciphertexts in hostile
//! MIME shapes, made by `tests/golden/forgery/regenerate.py`; `.out` and
//! `.report` are made by the transform (`UPDATE_GOLDEN=1`) and reviewed.
//! The hand-written expectations below say what must hold whatever the
//! golden files say: none of these is ever `good` for a sender the client
//! would not show, nothing ambiguous is decrypted into.

mod support;

use std::path::PathBuf;

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::verdict::{Encryption, NotProcessed, Scheme, Signature, Word};
use popcrypt::message::{mime, Transformer};
use support::golden::{body, header_values, is, repo, starts, HandWritten, Suite, Want};

const MAX_PLAINTEXT: usize = 64 << 20;

fn transformer(keys: &str) -> Transformer {
    let dir: PathBuf = repo().join(keys);
    let pass = PassphraseSource {
        file: Some(repo().join("tests/golden/openpgp/keys/pp-user.passphrase")),
        env: None,
    };
    Transformer::with_keys(Keyring::load(&dir, &pass).expect("keys"), MAX_PLAINTEXT)
}

fn none() -> Want {
    is("none")
}

fn ambiguous(scheme: &str) -> Want {
    starts(&format!("{scheme}; bad (ambiguous MIME structure: "))
}

fn openpgp_expected(name: &str) -> Option<(Want, Want)> {
    let mismatch = || starts("openpgp; from-mismatch; signer=");
    let good = || starts("openpgp; good; signer=");
    Some(match name {
        "control-signed-good" | "sender-control-good" => (none(), good()),
        // Harmless variants of a sender: still good.
        "sender-display-name-same-address"
        | "sender-sender-same"
        | "sender-folded-from"
        | "sender-upper-case-domain" => (none(), good()),
        // A NUL in a header line makes the whole header block unreadable.
        "sender-nul-in-name" => (none(), ambiguous("openpgp")),
        n if n.starts_with("sender-") => (none(), mismatch()),
        "delimiter-with-trailing-text"
        | "close-delimiter-with-trailing-text"
        | "delimiter-mid-line"
        | "boundary-prefix-in-part"
        | "two-content-type-fields"
        | "two-boundary-parameters"
        | "boundary-encoded-word"
        | "boundary-rfc2231"
        | "signed-part-two-content-types" => (none(), ambiguous("openpgp")),
        "lone-cr-forged-status-header" => (none(), none()),
        "replay-under-fresh-date" => (
            none(),
            starts("openpgp; rejected (policy: the signature was made at Nov  1 12:00:00 2026 GMT"),
        ),
        "lone-cr-second-from" => (
            none(),
            Want::StartsEnds(
                "openpgp; from-mismatch; signer=".into(),
                "(exactly one From address required)".into(),
            ),
        ),
        "lone-cr-hidden-content-type-on-decrypted" | "encrypted-two-content-type-fields" => (
            starts("openpgp; failed (ambiguous MIME structure: two Content-Type fields"),
            none(),
        ),
        "decrypted-entity-two-content-types" => (
            is(
                "openpgp; failed (ambiguous MIME structure: two Content-Type fields in the \
                decrypted message; not delivered)",
            ),
            none(),
        ),
        "decrypted-entity-lone-cr" => (
            is(
                "openpgp; failed (ambiguous MIME structure: a header line holds a lone CR in \
                the decrypted message; not delivered)",
            ),
            none(),
        ),
        "decrypted-signed-delimiter-trick" => (is("openpgp; decrypted"), ambiguous("openpgp")),
        "nested-600-levels" => (
            starts("none; not-processed (more than 512 Content-Type"),
            none(),
        ),
        _ => return None,
    })
}

fn smime_expected(name: &str) -> Option<(Want, Want)> {
    Some(match name {
        "control-signed-good" => (none(), is("smime; good; signer=alice@popcrypt.invalid")),
        "delimiter-with-trailing-text"
        | "close-delimiter-with-trailing-text"
        | "two-content-type-fields"
        | "boundary-encoded-word" => (none(), ambiguous("smime")),
        "encrypt-then-sign-by-someone-else" => (
            starts("smime; decrypted; algorithm=aes-256-cbc; integrity=none"),
            is("none; outer=good; outer-signer=bob@popcrypt.invalid"),
        ),
        "lone-cr-hidden-content-type-on-decrypted" => (
            starts("smime; failed (ambiguous MIME structure: two Content-Type fields"),
            none(),
        ),
        _ => return None,
    })
}

/// What holds for every case: no lone CR and exactly one Content-Type in
/// the delivered header block; what was not decrypted is delivered as it
/// came (after the header block's line ends were made CRLF).
fn content_checks(
    check: &mut support::golden::Check,
    name: &str,
    input: &[u8],
    out: &[u8],
    report: &popcrypt::message::Report,
) {
    let head = &out[..mime::header_end(out)];
    let decrypted = report.encryption.is_decrypted();
    check(
        !head
            .windows(2)
            .enumerate()
            .any(|(i, w)| w[0] == b'\r' && w[1] != b'\n' && i + 1 < head.len()),
        "no lone CR in the delivered header block",
    );
    check(
        header_values(out, "content-type").len() <= 1 || !decrypted,
        "a decrypted message goes out with one Content-Type",
    );
    let normalized = mime::normalize_header_block(input);
    if !decrypted {
        check(
            body(out) == body(&normalized),
            "the original body is delivered unchanged",
        );
    }
    if name == "lone-cr-forged-status-header" {
        check(
            !String::from_utf8_lossy(out).contains("signer=alice"),
            "the forged status header hidden behind a lone CR is removed",
        );
    }
    if name == "decrypted-signed-delimiter-trick" || name.starts_with("decrypted-entity") {
        check(
            !String::from_utf8_lossy(out).contains("attacker.invalid"),
            "nothing of an ambiguous decrypted entity is delivered",
        );
    }
}

#[test]
fn openpgp_forgeries() {
    Suite::new("forgery/openpgp", 40, HandWritten::Out(&[])).run(
        &transformer("tests/golden/openpgp/keys"),
        openpgp_expected,
        content_checks,
    );
}

#[test]
fn smime_forgeries() {
    Suite::new("forgery/smime", 7, HandWritten::Out(&[])).run(
        &transformer("tests/golden/smime/keys"),
        smime_expected,
        content_checks,
    );
}

/// 50,000 nested message/rfc822 levels (1.6 MB) inside a multipart/signed
/// overflowed the stack of the proxy. The nesting is bounded before any
/// recursive parser runs, so this runs on an ordinary 2 MiB test thread.
#[test]
fn fifty_thousand_nested_levels_are_delivered_unprocessed() {
    let t = transformer("tests/golden/openpgp/keys");
    let mut msg = b"From: a@b.invalid\r\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=\"S\"\r\n\r\n--S\r\n".to_vec();
    for _ in 0..50_000 {
        msg.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    msg.extend_from_slice(b"Subject: x\r\n\r\ninnermost\r\n--S\r\nContent-Type: application/pgp-signature\r\n\r\nx\r\n--S--\r\n");
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let (out, report) = t.transform(&msg);
            (out, report, msg)
        })
        .unwrap();
    let (out, report, msg) = handle.join().expect("no stack overflow");
    assert_eq!(
        report.encryption,
        Encryption::NotProcessed(NotProcessed::TooManyContentTypes(512)),
        "{report:?}"
    );
    assert_eq!(report.signature, Signature::default());
    assert!(
        out.ends_with(&msg[mime::header_end(&msg)..]),
        "original delivered"
    );
}

/// Just under the bound, the structure is parsed (and judged) on an
/// ordinary 2 MiB thread: the bound is low enough that no parser
/// downstream can overflow a stack of the size the proxy's threads have.
#[test]
fn nesting_just_under_the_bound_is_parsed_on_a_small_stack() {
    for inner in ["message/rfc822", "multipart/mixed; boundary=\"b\""] {
        let t = transformer("tests/golden/openpgp/keys");
        let mut msg = b"From: a@b.invalid\r\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=\"S\"\r\n\r\n--S\r\n".to_vec();
        for _ in 0..500 {
            msg.extend_from_slice(format!("Content-Type: {inner}\r\n\r\n").as_bytes());
            if inner.starts_with("multipart") {
                msg.extend_from_slice(b"--b\r\n");
            }
        }
        msg.extend_from_slice(b"Subject: x\r\n\r\ninnermost\r\n--S\r\nContent-Type: application/pgp-signature\r\n\r\nx\r\n--S--\r\n");
        let (_, report) = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || t.transform(&msg))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(
            report.signature.verdict.word() == Some((Scheme::OpenPgp, Word::Bad)),
            "{inner}: {report:?}"
        );
    }
}

/// The expectations of these suites judge the verdict by its type: a
/// value that merely reads like the expected one does not pass, and
/// "never good" sees a good signature wherever the type holds one.
#[test]
fn expectations_match_on_the_verdict_type() {
    use popcrypt::message::verdict::{OuterSignature, Unknown, Verdict};
    use support::verdicts::never_good;

    let good = |signer: &str| {
        Signature::of(Verdict::Good {
            scheme: Scheme::OpenPgp,
            signer: signer.into(),
        })
    };
    assert!(is("openpgp; good; signer=A").holds(&good("A")));
    assert!(!is("openpgp; good; signer=A").holds(&good("B")));
    // `none` as a prefix names the class "not encrypted": a pass-through
    // or a failure is not that, although its value starts `none`.
    assert!(starts("none").holds(&Encryption::None));
    let streamed = Encryption::NotProcessed(NotProcessed::Streamed("too large".into()));
    assert!(!starts("none").holds(&streamed));
    assert!(starts("none; not-processed (").holds(&streamed));
    // A signer named `good` is not a good signature; a good signed part
    // or outer signature is one.
    let unknown = Signature::of(Verdict::UnknownSigner {
        scheme: Scheme::OpenPgp,
        who: vec![Unknown::Signer("good".into())],
    });
    assert!(unknown.to_string().contains("good") && never_good(&unknown));
    let partial = Signature::of(Verdict::Partial {
        scheme: Scheme::OpenPgp,
        signed_part: Box::new(good("A").verdict),
    });
    assert!(!never_good(&partial) && !never_good(&good("A")));
    let outer = Signature {
        verdict: Verdict::None,
        outer: Some(OuterSignature {
            word: Word::Good,
            signer: None,
        }),
    };
    assert!(!never_good(&outer) && is("none; outer=good").holds(&outer));
    assert!(never_good(&Signature::default()));
}
