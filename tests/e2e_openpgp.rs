//! OpenPGP through the proxy against a real Dovecot, with real clients:
//! an encrypted message arrives decrypted, a signed one byte-identical with
//! a `good` verdict, a tampered one `bad`; TOP and LIST agree with RETR.

mod support;

use support::clients::{
    curl_retr, fetchmail_fetch, poplib_retr_all, strip_fetchmail_received, to_crlf, Tls,
};
use support::dovecot::Dovecot;
use support::mail::header;
use support::proxy::ProxyProcess;

const USER: (&str, &str) = ("carol", "carol-pw-ÿ");

fn golden() -> std::path::PathBuf {
    support::mail::golden("openpgp")
}

fn case(name: &str) -> Vec<u8> {
    support::mail::case("openpgp", name)
}

const MAILBOX: [&str; 4] = [
    "pgpmime-enc-compressed",
    "pgpmime-signed-alice",
    "pgpmime-signed-alice-tampered",
    "pgpmime-enc-protected-headers-tb",
];

fn setup() -> (Dovecot, ProxyProcess) {
    let d = Dovecot::start(&[USER]);
    for name in MAILBOX {
        d.deliver(USER.0, &case(name));
    }
    let keys = golden().join("keys");
    let pass = keys.join("pp-user.passphrase");
    let proxy = ProxyProcess::with_keys(&d, &keys, Some(&pass));
    (d, proxy)
}

fn check(msgs: &[Vec<u8>], client: &str) {
    assert_eq!(msgs.len(), MAILBOX.len(), "{client}");
    let enc = &msgs[0];
    assert_eq!(
        header(enc, "X-Popcrypt-Encryption").as_deref(),
        Some("openpgp; decrypted"),
        "{client}: {}",
        String::from_utf8_lossy(enc)
    );
    assert!(
        !enc.windows(27).any(|w| w == b"-----BEGIN PGP MESSAGE-----"),
        "{client}: ciphertext left"
    );
    let signed = &msgs[1];
    let mut want = b"X-Popcrypt-Encryption: none\r\n".to_vec();
    let sig = header(signed, "X-Popcrypt-Signature").unwrap_or_default();
    assert!(sig.starts_with("openpgp; good; signer="), "{client}: {sig}");
    want.extend_from_slice(format!("X-Popcrypt-Signature: {sig}\r\n").as_bytes());
    want.extend_from_slice(&to_crlf(&case(MAILBOX[1])));
    assert!(
        signed == &want,
        "{client}: the signed message is not byte-identical"
    );
    let bad = header(&msgs[2], "X-Popcrypt-Signature").unwrap_or_default();
    assert!(bad.starts_with("openpgp; bad"), "{client}: {bad}");
    let protected = &msgs[3];
    let subject = header(protected, "Subject").unwrap_or_default();
    assert_ne!(
        subject, "...",
        "{client}: the protected Subject was not restored"
    );
    assert!(
        header(protected, "X-Popcrypt-Encryption")
            .unwrap_or_default()
            .contains("protected-headers="),
        "{client}"
    );
}

#[test]
fn poplib_curl_fetchmail_see_decrypted_and_verified_mail() {
    let (_d, proxy) = setup();
    let via_poplib = poplib_retr_all("127.0.0.1", proxy.port, USER.0, USER.1, Tls::Plain);
    check(&via_poplib, "poplib");
    let via_curl: Vec<Vec<u8>> = (1..=MAILBOX.len())
        .map(|n| curl_retr("127.0.0.1", proxy.port, USER.0, USER.1, n, Tls::Plain))
        .collect();
    check(&via_curl, "curl");
    assert_eq!(via_curl, via_poplib, "curl and poplib see the same bytes");
    let via_fetchmail: Vec<Vec<u8>> =
        fetchmail_fetch("localhost", proxy.port, USER.0, USER.1, Tls::Plain, true)
            .iter()
            .map(|m| strip_fetchmail_received(m).to_vec())
            .collect();
    check(&via_fetchmail, "fetchmail");
    let log = proxy.log();
    assert!(log.contains("OpenPGP:"), "start-up summary missing: {log}");
    assert!(!log.contains(USER.1), "password in the log");
}

#[test]
fn top_and_list_agree_with_retr_for_encrypted_mail() {
    let (_d, proxy) = setup();
    let script = r#"
import sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
import poplib
p = poplib.POP3(host, port)
p.user(user); p.pass_(pw)
top0 = b"\r\n".join(p.top(1, 0)[1])
top2 = b"\r\n".join(p.top(1, 2)[1])
retr = p.retr(1)[1]
after = p.list(1)
sys.stdout.buffer.write(repr((top0, top2, b"\r\n".join(retr), len(b"\r\n".join(retr)) + 2, after)).encode())
p.quit()
"#;
    let out = support::clients::python3(
        script,
        &["127.0.0.1", &proxy.port.to_string(), USER.0, USER.1],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // TOP n 0 carries the decrypted message's headers, and no ciphertext.
    assert!(
        text.contains("X-Popcrypt-Encryption: openpgp; decrypted"),
        "{text}"
    );
    assert!(!text.contains("BEGIN PGP MESSAGE"), "{text}");
    // After the RETR, LIST reports exactly the delivered size.
    let size = text
        .rsplit_once(", b'+OK 1 ")
        .and_then(|(_, r)| r.split('\'').next())
        .unwrap_or_default()
        .to_string();
    let delivered = text
        .rsplit_once(", b'+OK 1 ")
        .and_then(|(l, _)| l.rsplit_once(", ").map(|(_, n)| n.to_string()))
        .unwrap_or_default();
    assert_eq!(size, delivered, "{text}");
}

#[test]
fn protected_keys_need_the_right_passphrase_at_start_up() {
    let keys = golden().join("keys");
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let run = |extra: &[&std::ffi::OsStr]| {
        std::process::Command::new(support::proxy::POPCRYPT_BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "localhost:995",
            ])
            .arg("--keys")
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[
        std::ffi::OsStr::new("--keys-passphrase-file"),
        wrong.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("wrong passphrase") && err.contains("pp-user.sec.asc"),
        "{err}"
    );
    assert!(
        err.contains("559D549EDDA4637D27385F28B5E0ABAFBFA587AC"),
        "names the key: {err}"
    );
    assert!(
        !err.contains("not the passphrase"),
        "the passphrase must not be echoed"
    );
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no passphrase is configured"), "{err}");
    // From an environment variable.
    let out = std::process::Command::new(support::proxy::POPCRYPT_BIN)
        .args(["decrypt", "--keys"])
        .arg(&keys)
        .args(["--keys-passphrase-env", "POPCRYPT_TEST_PASS"])
        .arg(golden().join("cases/pgpmime-enc-to-pp-user.eml"))
        .env(
            "POPCRYPT_TEST_PASS",
            std::fs::read_to_string(keys.join("pp-user.passphrase"))
                .unwrap()
                .trim(),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("X-Popcrypt-Encryption: openpgp; decrypted"),
        "{err}"
    );
}

#[test]
fn top_with_keys_loaded_judges_text_mail_from_the_top_answer() {
    let d = Dovecot::start(&[USER]);
    let plain: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    d.deliver(
        USER.0,
        format!("From: a@popcrypt.invalid\nSubject: plain\nContent-Type: text/plain\n\n{plain}")
            .as_bytes(),
    );
    d.deliver(USER.0, &case("inline-enc-7bit"));
    let keys = golden().join("keys");
    let pass = keys.join("pp-user.passphrase");
    let proxy = ProxyProcess::with_keys(&d, &keys, Some(&pass));
    let mut c = proxy.connect();
    c.line();
    c.cmd(&format!("USER {}", USER.0));
    c.cmd(&format!("PASS {}", USER.1));
    assert!(c.cmd("TOP 1 2").starts_with("+OK"));
    let top = c.multi();
    assert!(top.contains("X-Popcrypt-Encryption: none\r\n"), "{top}");
    assert!(top.ends_with("\r\n\r\nline 1\r\nline 2\r\n.\r\n"), "{top}");
    assert!(c.cmd("TOP 2 0").starts_with("+OK"));
    let top = c.multi();
    assert!(
        top.contains("X-Popcrypt-Encryption: openpgp; decrypted"),
        "{top}"
    );
    assert!(top.ends_with("\r\n\r\n.\r\n"), "headers only: {top}");
    c.cmd("QUIT");
    // Dovecot counted two TOPs and one RETR (message 2, to decrypt it):
    // the plain message was never fetched whole.
    let lines = d.wait_for_log_lines("session end", 1, |l| {
        l.contains(&format!("pop3({})", USER.0)) && l.contains("Disconnected")
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains("top=2/") && l.contains("retr=1/")),
        "{lines:?}"
    );
}
