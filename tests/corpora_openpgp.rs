//! Every OpenPGP mail in ../shared/corpora through the transform, with the
//! keys its legitimate recipient holds. Asserts that no spoof gets `good`,
//! no integrity failure releases plaintext, and no ciphertext embedded in an
//! attacker's message is decrypted into it.

use std::path::{Path, PathBuf};

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::{annotate_message, Report, Transformer};

fn corpora() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
    assert!(
        p.is_dir(),
        "the test corpora are missing: expected {} (they live beside the checkout, not in it)",
        p.display()
    );
    p
}

fn keyring(files: &[&str]) -> Keyring {
    let dir = tempfile::tempdir().unwrap();
    let pgp = dir.path().join("openpgp");
    std::fs::create_dir(&pgp).unwrap();
    for f in files {
        let src = corpora().join(f);
        let name = src.file_name().unwrap();
        std::fs::copy(&src, pgp.join(name)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
    Keyring::load(dir.path(), &PassphraseSource::default()).unwrap()
}

fn emls(dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![corpora().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "eml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a POP3 server hands over: CRLF line ends.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

struct Seen {
    name: String,
    report: Report,
    unchanged: bool,
}

fn run(dir: &str, t: &Transformer) -> Vec<Seen> {
    let mut seen = Vec::new();
    for path in emls(dir) {
        let raw = crlf(&std::fs::read(&path).unwrap());
        let (out, report) = t.transform(&raw);
        let unchanged = out == annotate_message(&raw, &report);
        let name = path
            .strip_prefix(corpora().join(dir))
            .unwrap()
            .display()
            .to_string();
        eprintln!(
            "{dir}/{name}\n    enc: {}\n    sig: {}\n    unchanged: {unchanged}",
            report.encryption, report.signature
        );
        // Lossless: what is not decrypted arrives as the original bytes.
        if !report.encryption.starts_with("openpgp; decrypted") {
            assert!(unchanged, "{name}: not decrypted but altered");
        }
        seen.push(Seen {
            name,
            report,
            unchanged,
        });
    }
    seen
}

fn get<'a>(seen: &'a [Seen], name: &str) -> &'a Seen {
    seen.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("corpus mail {name} not found"))
}

fn decrypted(s: &Seen) -> bool {
    s.report.encryption.starts_with("openpgp; decrypted")
}

fn good(s: &Seen) -> bool {
    s.report.signature.starts_with("openpgp; good")
}

#[test]
fn covert_content_attacks_never_decrypt_embedded_ciphertext() {
    let t = Transformer::with_keys(
        keyring(&[
            "rub-nds-covert-content-attacks/assets/secret-keys/manager@bigcorporation-sec.asc",
        ]),
        64 << 20,
    );
    let seen = run("rub-nds-covert-content-attacks", &t);
    for s in &seen {
        let original = s.name.ends_with("00-original-mail.eml");
        let pgp = s.name.contains("pgp");
        if original && pgp {
            assert!(decrypted(s), "{}: the benign original must decrypt", s.name);
        } else {
            assert!(
                !decrypted(s),
                "{}: embedded ciphertext was decrypted",
                s.name
            );
            assert!(s.unchanged, "{}", s.name);
        }
        assert!(!good(s), "{}", s.name);
    }
}

#[test]
fn johnny_you_are_fired_spoofs_never_get_good() {
    let t = Transformer::with_keys(
        keyring(&[
            "rub-nds-johnny-you-are-fired/assets/public-keys/manager@bigcorporation.asc",
            "rub-nds-johnny-you-are-fired/assets/public-keys/eve@bigcorporation.asc",
        ]),
        64 << 20,
    );
    let seen = run("rub-nds-johnny-you-are-fired", &t);
    // Baselines really verify.
    for ok in [
        "assets/valid-signed/manager-pgp-mime.eml",
        "assets/valid-signed/manager-pgp-inline.eml",
        "assets/valid-signed/eve-pgp-mime.eml",
        "assets/valid-signed/eve-pgp-inline.eml",
    ] {
        assert!(good(get(&seen, ok)), "{ok}: {:?}", get(&seen, ok).report);
    }
    // Signed by Eve with Eve's own From address: good, and for Eve only.
    for eve in [
        "04-id/i2-display-name-confusion/i2-from-contains-signer-pgp-mime.eml",
        "04-id/i3-from-sender-confusion/i3-from-signer-others-sender-pgp-mime.eml",
    ] {
        let s = get(&seen, eve);
        if good(s) {
            let eve_fpr = "F9E6";
            assert!(
                s.report.signature.contains(eve_fpr),
                "{eve}: {:?}",
                s.report
            );
        }
    }
    for s in &seen {
        let allowed = s.name.starts_with("assets/valid-signed/")
            || s.name.contains("i2-from-contains-signer")
            || s.name.contains("i2-from-is-sender-signer")
            || s.name.contains("i3-from-signer-others-sender");
        if !allowed {
            assert!(!good(s), "{}: spoof got good: {:?}", s.name, s.report);
        }
        assert!(!decrypted(s), "{}", s.name);
    }
}
