//! The forgery classes of issue 7 end to end: hostile mail (real GnuPG
//! signatures and ciphertexts in hostile MIME shapes, from
//! tests/golden/forgery) in a real Dovecot, fetched through the proxy by
//! poplib and curl. The client must see the same verdict the golden tests
//! see, and never a forged status header, whatever Dovecot does with a lone
//! CR.

mod support;

use support::clients::{curl_retr, poplib_retr_all, Tls};
use support::dovecot::Dovecot;
use support::proxy::ProxyProcess;

const USER: (&str, &str) = ("frank", "frank-pw");

/// (case, the two status values the client must see: (encryption prefix,
/// signature prefix)).
const MAILBOX: [(&str, &str, &str); 7] = [
    ("control-signed-good", "none", "openpgp; good; signer="),
    (
        "delimiter-with-trailing-text",
        "none",
        "openpgp; bad (ambiguous MIME structure",
    ),
    (
        "two-content-type-fields",
        "none",
        "openpgp; bad (ambiguous MIME structure",
    ),
    ("lone-cr-forged-status-header", "none", "none"),
    (
        "lone-cr-hidden-content-type-on-decrypted",
        "openpgp; failed (ambiguous MIME structure",
        "none",
    ),
    (
        "sender-display-name-address",
        "none",
        "openpgp; from-mismatch; ",
    ),
    (
        "decrypted-signed-delimiter-trick",
        "openpgp; decrypted",
        "openpgp; bad (ambiguous MIME structure",
    ),
];

fn case(name: &str) -> Vec<u8> {
    support::mail::case("forgery/openpgp", name)
}

/// Every value of a header field, reading line ends the way the most
/// lenient client does (CRLF, LF or a lone CR).
fn lenient_values(msg: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split(['\r', '\n'])
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

fn check(msgs: &[Vec<u8>], client: &str) {
    assert_eq!(msgs.len(), MAILBOX.len(), "{client}");
    for (msg, (name, enc, sig)) in msgs.iter().zip(MAILBOX) {
        let encs = lenient_values(msg, "X-Popcrypt-Encryption");
        let sigs = lenient_values(msg, "X-Popcrypt-Signature");
        assert!(
            encs.len() == 1 && encs[0].starts_with(enc),
            "{client}: {name}: encryption {encs:?}"
        );
        assert!(
            sigs.len() == 1 && sigs[0].starts_with(sig),
            "{client}: {name}: signature {sigs:?}"
        );
        if name.starts_with("lone-cr-hidden") {
            assert!(
                lenient_values(msg, "Content-Type").len() == 2
                    && msg.windows(27).any(|w| w == b"-----BEGIN PGP MESSAGE-----"),
                "{client}: {name}: delivered as it came, not decrypted"
            );
        }
    }
}

#[test]
fn poplib_and_curl_never_see_a_forged_verdict() {
    let d = Dovecot::start(&[USER]);
    for (name, _, _) in MAILBOX {
        d.deliver(USER.0, &case(name));
    }
    let keys = support::mail::golden("openpgp").join("keys");
    let pass = keys.join("pp-user.passphrase");
    let proxy = ProxyProcess::with_keys(&d, &keys, Some(&pass));
    let via_poplib = poplib_retr_all("127.0.0.1", proxy.port, USER.0, USER.1, Tls::Plain);
    check(&via_poplib, "poplib");
    let via_curl: Vec<Vec<u8>> = (1..=MAILBOX.len())
        .map(|n| curl_retr("127.0.0.1", proxy.port, USER.0, USER.1, n, Tls::Plain))
        .collect();
    check(&via_curl, "curl");
}
