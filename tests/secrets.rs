//! No secret reaches the logs: full sessions through the real proxy,
//! in-process, with a TRACE subscriber capturing every log line (and `log`
//! records), then every captured line is searched for each secret in every
//! form a careless log statement could print it (as text, `{:?}` of a
//! string, `{:?}` of a byte slice, hex, base64).
//!
//! The secrets: the password (USER/PASS, wrong and right, after login, in
//! over-long lines), the APOP digest, the AUTH PLAIN payload (initial
//! response and continuation, pipelined) and its decoding, the AUTH LOGIN
//! responses and their decodings, the passphrase of the protected key
//! (loaded from a passphrase file), and a marker from the subject and body
//! of a decrypted OpenPGP message (RETR and TOP).

mod support;

use std::io::Write;
use std::path::PathBuf;

use popcrypt::keys::{Keyring, PassphraseSource};
use popcrypt::message::Transformer;
use sequoia_openpgp as openpgp;
use support::{fake_server::*, inproc::*, logs::*, mailbox::*, tls::*};

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message};

const SECRET: &str = "S3cr3t-Pa55 with space";
const SECRET_USER: &str = "secret-user";

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/openpgp")
}

/// Something unique to this run, so that no fixed text can match by chance.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{:x}-{:x}", nanos, std::process::id())
}

/// A PGP/MIME message encrypted to the passphrase-protected `pp-user` key.
fn encrypted_to_pp_user(subject: &str, body: &str) -> Vec<u8> {
    let cert = Cert::from_file(golden().join("keys/openpgp/pp-user.sec.asc"))
        .expect("pp-user certificate");
    let p = StandardPolicy::new();
    let recipients = cert
        .keys()
        .with_policy(&p, None)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption();
    let inner =
        format!("Content-Type: text/plain; charset=utf-8\r\nSubject: {subject}\r\n\r\n{body}\r\n");
    let mut armored = Vec::new();
    {
        let m = Message::new(&mut armored);
        let m = Armorer::new(m).build().unwrap();
        let m = Encryptor::for_recipients(m, recipients).build().unwrap();
        let mut w = LiteralWriter::new(m).build().unwrap();
        w.write_all(inner.as_bytes()).unwrap();
        w.finalize().unwrap();
    }
    let armored = String::from_utf8(armored).unwrap().replace('\n', "\r\n");
    format!(
        "From: Alice Demo <alice@popcrypt.invalid>\r\n\
         To: PP User <pp-user@popcrypt.invalid>\r\n\
         Subject: {subject}\r\n\
         Message-ID: <secrets@popcrypt.invalid>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\n\r\n\
         {armored}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// Every form in which `secret` could show up in a log line.
fn renderings(secret: &[u8]) -> Vec<String> {
    let mut v = vec![
        format!("{secret:?}").trim_matches(['[', ']']).to_string(),
        secret.iter().map(|b| format!("{b:02x}")).collect(),
        secret.iter().map(|b| format!("{b:02X}")).collect(),
        b64(secret),
        // `{:?}` of a `&[u8]` rendered as an escaped byte string.
        secret.escape_ascii().to_string(),
    ];
    if let Ok(text) = std::str::from_utf8(secret) {
        v.push(text.to_string());
        v.push(format!("{text:?}").trim_matches('"').to_string());
    }
    v.sort();
    v.dedup();
    v
}

/// Fail, naming the secret and the line (the report shows the line: the
/// secrets here are test data), if any captured line holds any rendering.
fn assert_no_secret_logged(logs: &str, secrets: &[(&str, Vec<u8>)]) {
    let mut leaks = Vec::new();
    for (label, secret) in secrets {
        let forms = renderings(secret);
        for line in logs.lines() {
            if let Some(form) = forms.iter().find(|f| line.contains(f.as_str())) {
                leaks.push(format!("{label} (as {form:?}) in: {line}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_logs() {
    let logs = capture_logs();
    let marker = unique("decrypted-body-marker");
    let subject_marker = unique("decrypted-subject-marker");
    let passphrase_file = golden().join("keys/pp-user.passphrase");
    let passphrase = std::fs::read_to_string(&passphrase_file).unwrap();
    let passphrase = passphrase.lines().next().unwrap().to_string();
    assert!(passphrase.len() >= 8);

    // The mailbox: the encrypted message, then a plain one.
    let encrypted = encrypted_to_pp_user(
        &subject_marker,
        &format!("The secret of the day is {marker}."),
    );
    assert!(!String::from_utf8_lossy(&encrypted).contains(&marker));
    let mailbox = vec![encrypted, sample_mailbox().remove(0)];
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(Transport::Implicit(ca.server_config(&["localhost"])), {
        let mailbox = mailbox.clone();
        move |c| {
            serve_pop3(
                c,
                Pop3State::new(mailbox.clone()).with_login(SECRET_USER, SECRET),
                true,
            )
        }
    })
    .await;
    // The protected key, unlocked with the passphrase file (logs captured
    // from here on).
    let keys = Keyring::load(
        &golden().join("keys"),
        &PassphraseSource {
            file: Some(passphrase_file),
            env: None,
        },
    )
    .expect("golden keys with the pp-user passphrase");
    let transformer = Transformer::with_keys(keys, 64 << 20);
    let mut proxy = start_proxy_with(server.addr, &ca.pem(), transformer, |f| {
        f.limits.max_command_line = 128
    })
    .await;

    let payload = plain_payload(SECRET_USER, SECRET);
    let login_user = b64(SECRET_USER.as_bytes());
    let login_pass = b64(SECRET.as_bytes());

    // USER/PASS: a PASS before USER (-ERR upstream), the right one, one
    // after login (refused locally); then RETR and TOP of the encrypted
    // message, decrypted.
    let mut c = proxy.client().await;
    let peer = c.stream.local_addr().unwrap();
    assert_eq!(c.line().await, GREETING);
    assert!(c
        .cmd(&format!("PASS {SECRET}"))
        .await
        .starts_with("-ERR [AUTH]"));
    assert_eq!(
        c.cmd(&format!("USER {SECRET_USER}")).await,
        "+OK user accepted"
    );
    assert_eq!(c.cmd(&format!("PASS {SECRET}")).await, "+OK logged in");
    assert!(c
        .cmd(&format!("PASS {SECRET}"))
        .await
        .starts_with("-ERR popcrypt"));
    assert!(c.cmd("RETR 1").await.starts_with("+OK"));
    let retr = String::from_utf8_lossy(&c.multi().await).into_owned();
    assert!(
        retr.starts_with("X-Popcrypt-Encryption: openpgp; decrypted\r\n"),
        "{retr}"
    );
    assert!(retr.contains(&marker), "the body was decrypted: {retr}");
    assert!(c.cmd("TOP 1 1").await.starts_with("+OK"));
    let top = String::from_utf8_lossy(&c.multi().await).into_owned();
    assert!(top.contains(&marker), "TOP decrypts too: {top}");
    assert!(c.cmd("RETR 2").await.starts_with("+OK"));
    c.multi().await;
    assert_eq!(c.cmd("QUIT").await, "+OK bye");

    // APOP.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        c.cmd(&format!("APOP {APOP_NAME} {APOP_DIGEST}")).await,
        "+OK maildrop locked and ready"
    );
    assert!(c.cmd("STAT").await.starts_with("+OK 2 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");

    // AUTH PLAIN with an initial response, with a continuation, and with
    // the continuation pipelined behind the command.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {payload}")).await,
        "+OK logged in"
    );
    c.cmd("QUIT").await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd(&payload).await, "+OK logged in");
    c.cmd("QUIT").await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert!(c.send(format!("AUTH PLAIN\r\n{payload}\r\nSTAT\r\n")).await);
    assert_eq!(c.line().await, "+ ");
    assert_eq!(c.line().await, "+OK logged in");
    assert!(c.line().await.starts_with("+OK 2 "));
    c.cmd("QUIT").await;

    // AUTH LOGIN, cancelled once with "*", then all the way.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(c.cmd("*").await, "-ERR [AUTH] authentication cancelled");
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(c.cmd(&login_user).await, format!("+ {}", b64(b"Password:")));
    assert_eq!(c.cmd(&login_pass).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 2 "));
    c.cmd("QUIT").await;

    // Over-long lines carrying the secret.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    c.send(format!("PASS {SECRET} {}\r\n", "x".repeat(200)))
        .await;
    assert!(c.line().await.starts_with("-ERR"));
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    c.send(format!("AUTH PLAIN {payload}{}", "=".repeat(200)))
        .await;
    assert!(c.line().await.starts_with("-ERR"));

    // A session cut by shutdown mid-SASL. The shutdown also waits for every
    // session to end, so all their log lines are in the capture.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(proxy.shutdown().await);
    drop(c);

    // The secrets went through to the server.
    let rec = server.conns();
    assert!(rec.iter().any(|c| c.got_prefix(&format!("PASS {SECRET}"))));
    assert!(rec.iter().any(|c| c.lines.contains(&payload)));
    assert!(rec.iter().any(|c| c.lines.contains(&login_pass)));
    assert!(rec
        .iter()
        .any(|c| c.got_prefix(&format!("APOP {APOP_NAME} {APOP_DIGEST}"))));

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    // The capture holds this test's sessions, at every level, with the
    // commands named by verb and the decryption recorded.
    assert!(logs.contains(&format!("peer={peer}")), "{logs}");
    for needle in [
        "PASS",
        "APOP",
        "AUTH",
        "RETR",
        "TOP",
        "openpgp; decrypted",
        " DEBUG ",
        " TRACE ",
    ] {
        assert!(logs.contains(needle), "{needle:?} missing from the logs");
    }
    let plain_decoded = format!("\0{SECRET_USER}\0{SECRET}");
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the password", SECRET.into()),
        ("the APOP digest", APOP_DIGEST.into()),
        ("the AUTH PLAIN payload", payload.clone().into()),
        ("the AUTH PLAIN payload decoded", plain_decoded.into()),
        (
            "the AUTH LOGIN password response",
            login_pass.clone().into(),
        ),
        ("the key passphrase", passphrase.clone().into()),
        ("the decrypted body marker", marker.clone().into()),
        (
            "the decrypted subject marker",
            subject_marker.clone().into(),
        ),
    ];
    assert_no_secret_logged(&logs, &secrets);
}

/// The check itself finds a secret in each form it looks for (so a leak
/// cannot hide behind `{:?}` or hex).
#[test]
fn the_log_check_catches_every_rendering() {
    let secret = b"S3cr3t\0x";
    for form in renderings(secret) {
        let logs = format!("2026-12-01T00:00:00Z  INFO popcrypt: line x={form} y\n");
        let caught = std::panic::catch_unwind(|| {
            assert_no_secret_logged(&logs, &[("s", secret.to_vec())]);
        });
        assert!(caught.is_err(), "{form:?} not caught");
    }
    assert_no_secret_logged(
        "INFO popcrypt: command=PASS outcome=+OK\n",
        &[("s", secret.to_vec())],
    );
    let shown = format!("{secret:?}");
    assert!(renderings(secret)
        .iter()
        .any(|f| shown.contains(f.as_str())));
}

/// `popcrypt decrypt` (like `serve`) warns at start-up about a secret key
/// and a passphrase file that others can read, naming each file and its
/// mode and never the content; after `chmod 600` it says nothing.
#[test]
fn readable_key_files_are_named_at_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(keys.join("openpgp")).unwrap();
    let secret_key = keys.join("openpgp/pp-user.sec.asc");
    let public = keys.join("openpgp/alice.pub.asc");
    std::fs::copy(golden().join("keys/openpgp/pp-user.sec.asc"), &secret_key).unwrap();
    std::fs::copy(golden().join("keys/openpgp/alice.pub.asc"), &public).unwrap();
    let pass = dir.path().join("pp");
    std::fs::copy(golden().join("keys/pp-user.passphrase"), &pass).unwrap();
    let passphrase = std::fs::read_to_string(&pass).unwrap();
    let passphrase = passphrase.lines().next().unwrap().to_string();
    let mail = dir.path().join("m.eml");
    std::fs::write(&mail, &sample_mailbox()[0]).unwrap();
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_popcrypt"))
            .arg("decrypt")
            .arg("--keys")
            .arg(&keys)
            .arg("--keys-passphrase-file")
            .arg(&pass)
            .arg("--output")
            .arg(dir.path().join("out.eml"))
            .arg(&mail)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    chmod(&secret_key, 0o644);
    chmod(&public, 0o644);
    chmod(&pass, 0o640);
    let stderr = run();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].contains(&format!("file={}", secret_key.display()))
            && warnings[0].contains("mode=0644")
            && warnings[0].contains("secret key file"),
        "{stderr}"
    );
    assert!(
        warnings[1].contains(&format!("file={}", pass.display()))
            && warnings[1].contains("mode=0640")
            && warnings[1].contains("passphrase file"),
        "{stderr}"
    );
    assert!(!stderr.contains("alice.pub.asc"), "{stderr}");
    assert!(
        !stderr.contains(&passphrase) && !stderr.contains("PRIVATE KEY"),
        "{stderr}"
    );
    chmod(&secret_key, 0o600);
    chmod(&pass, 0o600);
    let stderr = run();
    assert!(!stderr.contains("WARN"), "{stderr}");
}
