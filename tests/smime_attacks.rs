//! S/MIME attacks found in review, kept as regression tests.

mod support;

use std::path::Path;

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::verdict::{BadReason, Encryption, Scheme, Signature, Verdict};
use popcrypt::message::Transformer;
use support::verdicts::never_good;

#[test]
fn two_signers_cannot_borrow_a_trusted_certificate() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smime/attacks");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("trust")).unwrap();
    std::fs::copy(
        fixtures.join("test-ca.pem"),
        dir.path().join("trust/ca.pem"),
    )
    .unwrap();
    let ring = Keyring::load(dir.path(), &PassphraseSource::default()).unwrap();
    let t = Transformer::with_keys(ring, 1 << 20);
    let raw = popcrypt::pop3::response::crlf_lines(
        &std::fs::read(fixtures.join("two-signers-serial-confusion.eml")).unwrap(),
    );
    let (out, report) = t.transform(&raw);
    assert!(
        never_good(&report.signature),
        "forged signature accepted: {report:?}"
    );
    assert!(
        matches!(report.signature.verdict.word(), Some((Scheme::Smime, _))),
        "{report:?}"
    );
    assert!(out.ends_with(&raw), "the message passes unchanged");
}

/// 1,000 copies of one real, good SignerInfo (tests/golden/smime/regenerate.sh
/// builds it with `openssl cms -sign` and 1,000 `-signer` options). Before
/// the cap every good copy was confirmed by a CMS verification over all
/// 1,000 (about 10^6 signer checks, minutes of CPU) and the verdict was
/// `good`; now no SignerInfo is checked at all, and the message passes
/// unchanged with the reason.
#[test]
fn a_thousand_signer_infos_are_not_examined() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smime");
    let ring = Keyring::load(&golden.join("keys"), &PassphraseSource::default()).unwrap();
    let t = Transformer::with_keys(ring, 64 << 20);
    let raw = popcrypt::pop3::response::crlf_lines(
        &std::fs::read(golden.join("attacks/many-signers.eml")).unwrap(),
    );
    let before = popcrypt::message::smime::cms_verify_calls();
    let (out, report) = t.transform(&raw);
    assert_eq!(report.encryption, Encryption::None);
    assert_eq!(
        report.signature,
        Signature::of(Verdict::Bad {
            scheme: Scheme::Smime,
            reason: BadReason::Library("too many signers: 1000".into()),
        })
    );
    assert_eq!(
        popcrypt::message::smime::cms_verify_calls() - before,
        0,
        "no CMS verification was run"
    );
    assert_eq!(out, popcrypt::message::annotate_message(&raw, &report));
}
