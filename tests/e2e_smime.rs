//! S/MIME through the proxy against a real Dovecot, with real clients:
//! enveloped mail arrives decrypted (CBC marked integrity=none), a signed
//! one byte-identical with a `good` verdict, a tampered one `bad`.

mod support;

use support::clients::{
    curl_retr, fetchmail_fetch, poplib_retr_all, strip_fetchmail_received, to_crlf, Tls,
};
use support::dovecot::Dovecot;
use support::mail::header;
use support::proxy::ProxyProcess;

const USER: (&str, &str) = ("dave", "dave-password-42");

fn golden() -> std::path::PathBuf {
    support::mail::golden("smime")
}

fn case(name: &str) -> Vec<u8> {
    support::mail::case("smime", name)
}

const MAILBOX: [&str; 5] = [
    "enveloped-aes256-gcm",
    "signed-detached",
    "signed-detached-tampered",
    "enveloped-aes128-cbc",
    "sign-then-encrypt",
];

fn check(msgs: &[Vec<u8>], client: &str) {
    assert_eq!(msgs.len(), MAILBOX.len(), "{client}");
    let enc = |i: usize| header(&msgs[i], "X-Popcrypt-Encryption").unwrap_or_default();
    let sig = |i: usize| header(&msgs[i], "X-Popcrypt-Signature").unwrap_or_default();
    assert!(
        enc(0).starts_with("smime; decrypted; algorithm=aes-256-gcm")
            && !enc(0).contains("integrity=none"),
        "{client}: {}",
        enc(0)
    );
    assert!(
        !String::from_utf8_lossy(&msgs[0]).contains("application/pkcs7-mime"),
        "{client}: ciphertext left"
    );
    assert!(
        sig(1).starts_with("smime; good; signer=alice@popcrypt.invalid"),
        "{client}: {}",
        sig(1)
    );
    let mut want = format!(
        "X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: {}\r\n",
        sig(1)
    )
    .into_bytes();
    want.extend_from_slice(&to_crlf(&case(MAILBOX[1])));
    assert!(
        msgs[1] == want,
        "{client}: the signed message is not byte-identical"
    );
    assert!(sig(2).starts_with("smime; bad"), "{client}: {}", sig(2));
    assert!(enc(3).contains("integrity=none"), "{client}: {}", enc(3));
    assert!(
        enc(4).starts_with("smime; decrypted"),
        "{client}: {}",
        enc(4)
    );
    assert!(sig(4).starts_with("smime; good"), "{client}: {}", sig(4));
}

#[test]
fn poplib_curl_fetchmail_see_decrypted_and_verified_smime() {
    let d = Dovecot::start(&[USER]);
    for name in MAILBOX {
        d.deliver(USER.0, &case(name));
    }
    let keys = golden().join("keys");
    let proxy = ProxyProcess::with_keys(&d, &keys, None);
    let via_poplib = poplib_retr_all("127.0.0.1", proxy.port, USER.0, USER.1, Tls::Plain);
    check(&via_poplib, "poplib");
    let via_curl: Vec<Vec<u8>> = (1..=MAILBOX.len())
        .map(|n| curl_retr("127.0.0.1", proxy.port, USER.0, USER.1, n, Tls::Plain))
        .collect();
    check(&via_curl, "curl");
    let via_fetchmail: Vec<Vec<u8>> =
        fetchmail_fetch("localhost", proxy.port, USER.0, USER.1, Tls::Plain, true)
            .iter()
            .map(|m| strip_fetchmail_received(m).to_vec())
            .collect();
    check(&via_fetchmail, "fetchmail");
    assert!(proxy.log().contains("S/MIME:"), "start-up summary missing");

    // TOP on an enveloped message: the decrypted headers, not ciphertext.
    let mut c = proxy.connect();
    c.line();
    c.cmd(&format!("USER {}", USER.0));
    c.cmd(&format!("PASS {}", USER.1));
    assert!(c.cmd("TOP 1 0").starts_with("+OK"));
    let top = c.multi();
    assert!(
        top.contains("X-Popcrypt-Encryption: smime; decrypted"),
        "{top}"
    );
    assert!(!top.contains("pkcs7-mime"), "{top}");
    c.cmd("QUIT");
}
