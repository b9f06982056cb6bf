//! Every OpenPGP mail in the published corpora (the folder named by
//! `POPCRYPT_CORPORA`) through the transform, with the keys its legitimate
//! recipient holds. Asserts that no spoof gets `good`,
//! no integrity failure releases plaintext, and no ciphertext embedded in an
//! attacker's message is decrypted into it.

mod support;
use std::path::PathBuf;
use support::corpora::{corpora, corpora_available};

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::verdict::{Scheme, Verdict, Word};
use popcrypt::message::{annotate_message, Report, Transformer};
use support::verdicts::{enc_kind, EncKind};

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
    out: Vec<u8>,
    report: Report,
    unchanged: bool,
}

fn run(dir: &str, t: &Transformer) -> Vec<Seen> {
    let mut seen = Vec::new();
    for path in emls(dir) {
        let raw = crlf(&std::fs::read(&path).unwrap());
        let (out, report) = t.transform(&raw);
        let unchanged = out == annotate_message(&raw, &report);
        let out = out.clone();
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
        if enc_kind(&report.encryption) != EncKind::Decrypted(Scheme::OpenPgp) {
            assert!(unchanged, "{name}: not decrypted but altered");
        }
        seen.push(Seen {
            name,
            out,
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
    enc_kind(&s.report.encryption) == EncKind::Decrypted(Scheme::OpenPgp)
}

fn good(s: &Seen) -> bool {
    matches!(
        s.report.signature.verdict,
        Verdict::Good {
            scheme: Scheme::OpenPgp,
            ..
        }
    )
}

#[test]
fn covert_content_attacks_never_decrypt_embedded_ciphertext() {
    if !corpora_available("corpora_openpgp") {
        return;
    }
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
    if !corpora_available("corpora_openpgp") {
        return;
    }
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
    let eve = "04-id/i2-display-name-confusion/i2-from-contains-signer-pgp-mime.eml";
    let s = get(&seen, eve);
    if good(s) {
        let eve_fpr = "F9E6";
        assert!(
            matches!(&s.report.signature.verdict, Verdict::Good { signer, .. }
                if signer.contains(eve_fpr)),
            "{eve}: {:?}",
            s.report
        );
    }
    for s in &seen {
        // A display name or Sender naming another address than the signer's
        // (i2-from-is-sender-signer, i3-from-signer-others-sender) is never
        // good: a legacy client may show that address as the sender.
        let allowed = s.name.starts_with("assets/valid-signed/")
            || s.name.contains("i2-from-contains-signer");
        if !allowed {
            assert!(!good(s), "{}: spoof got good: {:?}", s.name, s.report);
        }
        assert!(!decrypted(s), "{}", s.name);
    }
}

#[test]
fn thunderbird_efail_set() {
    if !corpora_available("corpora_openpgp") {
        return;
    }
    let t = Transformer::with_keys(
        keyring(&[
            "thunderbird-comm-central/openpgp/keys/bob@openpgp.example-0xfbfcc82a015e7330-secret.asc",
            "thunderbird-comm-central/openpgp/keys/alice@openpgp.example-0xf231550c4f47e38e-pub.asc",
        ]),
        64 << 20,
    );
    let seen = run(
        "thunderbird-comm-central/openpgp-remote-content-integrity",
        &t,
    );
    assert!(decrypted(get(&seen, "rc-openpgp-mdc.eml")));
    for must_fail in [
        "rc-openpgp-nomdc.eml",
        "rc-openpgp-mdc-tampered.eml",
        "rc-openpgp-aead.eml",
    ] {
        let s = get(&seen, must_fail);
        assert!(
            enc_kind(&s.report.encryption) == EncKind::Failed(Some(Scheme::OpenPgp)),
            "{must_fail}: {:?}",
            s.report
        );
        assert!(s.unchanged, "{must_fail}: plaintext released");
    }
    for nested in [
        "rc-openpgp-mixed-subpart.eml",
        "rc-openpgp-sigwrap-mdc.eml",
        "rc-openpgp-sigwrap-nomdc.eml",
    ] {
        assert!(!decrypted(get(&seen, nested)), "{nested}");
    }
}

#[test]
fn thunderbird_openpgp_mail() {
    if !corpora_available("corpora_openpgp") {
        return;
    }
    let keys = "thunderbird-comm-central/openpgp/keys/";
    let t = Transformer::with_keys(
        keyring(&[
            &format!("{keys}alice@openpgp.example-0xf231550c4f47e38e-secret.asc"),
            &format!("{keys}bob@openpgp.example-0xfbfcc82a015e7330-pub.asc"),
            &format!("{keys}carol@example.com-0x3099ff1238852b9f-pub.asc"),
        ]),
        64 << 20,
    );
    let seen = run("thunderbird-comm-central/openpgp/eml", &t);
    for dec in [
        "encrypted-to-alice-as-hidden-recipient.eml",
        "bob-enc-inline-nbsp-qp.eml",
        "unsigned-encrypted-to-0xf231550c4f47e38e-from-0x3099ff1238852b9f.eml",
        "unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml",
    ] {
        assert!(
            decrypted(get(&seen, dec)),
            "{dec}: {:?}",
            get(&seen, dec).report
        );
    }
    for both in [
        "signed-by-0x3099ff1238852b9f-encrypted-to-0xf231550c4f47e38e.eml",
        "signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e.eml",
        "signed-encrypted-autocrypt-gossip.eml",
    ] {
        let s = get(&seen, both);
        assert!(decrypted(s) && good(s), "{both}: {:?}", s.report);
    }
    for g in [
        "alice-signed.eml",
        "alice-utf.eml",
        "signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted.eml",
        "signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml",
    ] {
        assert!(good(get(&seen, g)), "{g}: {:?}", get(&seen, g).report);
    }
    // Two outer From addresses, but the signed and encrypted protected
    // headers carry one From (Bob, the signer): the client sees only that.
    let multi = get(
        &seen,
        "signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-multi-from.eml",
    );
    assert!(decrypted(multi), "{:?}", multi.report);
    let head = &multi.out[..popcrypt::message::header_end(&multi.out)];
    let froms: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .filter(|l| l.to_ascii_lowercase().starts_with(b"from:"))
        .collect();
    assert_eq!(froms.len(), 1, "{}", String::from_utf8_lossy(head));
    if good(multi) {
        assert!(String::from_utf8_lossy(froms[0]).contains("bob@openpgp.example"));
    }
    assert_eq!(
        get(&seen, "bob-to-alice-signed-damaged-signature.eml")
            .report
            .signature
            .verdict
            .word(),
        Some((Scheme::OpenPgp, Word::Bad))
    );
    for never in [
        "partial-encrypt-for-alice-plaintext.eml",
        "partial-encrypt-for-alice-html.eml",
        "fwd-unsigned-encrypted.eml",
        "sigspoof-git-commit.eml",
    ] {
        assert!(!decrypted(get(&seen, never)), "{never}");
    }
    for not_good in [
        "signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted-in-mixed.eml",
        "signed-with-mailman-footer.eml",
        "forwarded-eml-signed-by-alice.eml",
        "openpgp__stripped_sig.eml",
        "dual-signed-uncommon-content-type.eml",
        "sigspoof-git-commit.eml",
    ] {
        assert!(!good(get(&seen, not_good)), "{not_good}");
    }
}

#[test]
fn ccs2020_aead_mails_release_nothing() {
    if !corpora_available("corpora_openpgp") {
        return;
    }
    let t = Transformer::with_keys(
        keyring(&["rub-nds-mitigation-e2ee-ccs2020/dc-demo-keys.asc"]),
        64 << 20,
    );
    let seen = run("rub-nds-mitigation-e2ee-ccs2020", &t);
    for s in &seen {
        // GnuPG's OCB packets are not supported by sequoia: nothing may be
        // released, least of all from the attack mails.
        assert!(!decrypted(s), "{}", s.name);
        assert!(s.unchanged, "{}", s.name);
    }
}
