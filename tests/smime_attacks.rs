//! S/MIME attacks found in review, kept as regression tests.

use std::path::Path;

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::Transformer;

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
        !report.signature.contains("good"),
        "forged signature accepted: {report:?}"
    );
    assert!(report.signature.starts_with("smime; "), "{report:?}");
    assert!(out.ends_with(&raw), "the message passes unchanged");
}
