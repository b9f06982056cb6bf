//! Self-test of the Dovecot/client test harness: real clients talking
//! DIRECTLY to a private Dovecot (no proxy involved).

mod support;

use support::clients::{
    curl_list, curl_output, curl_retr, fetchmail_fetch, poplib_retr_all, poplib_session,
    strip_fetchmail_received, to_crlf, Tls,
};
use support::dovecot::Dovecot;
use support::tls::untrusted_ca_pem;

const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob pass \"quoted\" \\ x");

/// Three messages as stored in the Maildir (LF line endings).
fn messages() -> Vec<Vec<u8>> {
    vec![
        b"From: Sender <sender@example.org>\n\
          To: alice@example.org\n\
          Subject: dots\n\
          Message-ID: <m1@example.org>\n\
          \n\
          first line\n\
          .starts with a dot\n\
          ..two dots\n\
          .\n\
          after the lone dot\n"
            .to_vec(),
        b"From: sender@example.org\n\
          To: alice@example.org\n\
          Subject: second\n\
          \n\
          second body\n"
            .to_vec(),
        "From: sender@example.org\n\
         To: alice@example.org\n\
         Subject: third\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\
         \n\
         Gr\u{fc}\u{df}e, third body\n\
         \n\
         last line\n"
            .as_bytes()
            .to_vec(),
    ]
}

fn expected() -> Vec<Vec<u8>> {
    messages().iter().map(|m| to_crlf(m)).collect()
}

fn start() -> Dovecot {
    let d = Dovecot::start(&[ALICE, BOB]);
    for m in messages() {
        d.deliver(ALICE.0, &m);
    }
    assert_eq!(d.message_count(ALICE.0), 3);
    assert_eq!(d.message_count(BOB.0), 0);
    d
}

fn assert_msgs_eq(got: &[Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "number of messages");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "message {} differs:\n got: {:?}\nwant: {:?}",
            i + 1,
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w)
        );
    }
}

#[test]
fn poplib_implicit_tls() {
    let d = start();
    let got = poplib_retr_all(
        "127.0.0.1",
        d.pop3s_port,
        ALICE.0,
        ALICE.1,
        Tls::implicit(&d.ca_pem_path),
    );
    assert_msgs_eq(&got, &expected());
    assert!(d.wait_for_tls_login(ALICE.0).contains("user=<alice>"));
    assert_eq!(d.message_count(ALICE.0), 3);
}

#[test]
fn poplib_stls() {
    let d = start();
    let got = poplib_retr_all(
        &d.host_name,
        d.pop3_port,
        ALICE.0,
        ALICE.1,
        Tls::stls(&d.ca_pem_path),
    );
    assert_msgs_eq(&got, &expected());
    d.wait_for_tls_login(ALICE.0);
}

#[test]
fn poplib_plain_is_not_tls() {
    let d = start();
    let got = poplib_retr_all(&d.host_name, d.pop3_port, ALICE.0, ALICE.1, Tls::Plain);
    assert_msgs_eq(&got, &expected());
    let logins = d.wait_for_log_lines("plaintext login of alice", 1, |l| {
        l.contains("Login: user=<alice>")
    });
    assert!(
        logins.iter().all(|l| !l.contains(", TLS")),
        "plain login logged as TLS: {logins:?}"
    );
}

#[test]
fn curl_pop3s() {
    let d = start();
    let want = expected();
    let tls = Tls::implicit(&d.ca_pem_path);
    let list = curl_list(&d.host_name, d.pop3s_port, ALICE.0, ALICE.1, tls.clone());
    let sizes: Vec<(usize, usize)> = want
        .iter()
        .enumerate()
        .map(|(i, m)| (i + 1, m.len()))
        .collect();
    assert_eq!(list, sizes);
    for (i, w) in want.iter().enumerate() {
        let got = curl_retr(
            &d.host_name,
            d.pop3s_port,
            ALICE.0,
            ALICE.1,
            i + 1,
            tls.clone(),
        );
        assert_msgs_eq(&[got], std::slice::from_ref(w));
    }
    d.wait_for_tls_login(ALICE.0);
}

#[test]
fn untrusted_ca_is_rejected() {
    let d = start();
    let dir = tempfile::tempdir().unwrap();
    let bad_ca = dir.path().join("untrusted.pem");
    std::fs::write(&bad_ca, untrusted_ca_pem()).unwrap();
    for tls in [Tls::implicit(&bad_ca), Tls::stls(&bad_ca)] {
        let port = match tls {
            Tls::Implicit { .. } => d.pop3s_port,
            _ => d.pop3_port,
        };
        let out = curl_output(&d.host_name, port, ALICE.0, ALICE.1, "1", &tls, &[]);
        assert!(!out.status.success(), "curl accepted an untrusted cert");
        assert!(out.stdout.is_empty());
        let out = poplib_session(
            "connect(*sys.argv[1:3], *sys.argv[5:7])",
            &d.host_name,
            port,
            ALICE.0,
            ALICE.1,
            &tls,
        );
        assert!(!out.status.success(), "poplib accepted an untrusted cert");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("CERTIFICATE_VERIFY_FAILED"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(d.login_lines(ALICE.0).is_empty());
}

#[test]
fn fetchmail_ssl_keep() {
    let d = start();
    let got = fetchmail_fetch(
        &d.host_name,
        d.pop3s_port,
        ALICE.0,
        ALICE.1,
        Tls::implicit(&d.ca_pem_path),
        true,
    );
    for m in &got {
        assert!(m.starts_with(b"Received: from localhost"), "{m:?}");
    }
    let stripped: Vec<Vec<u8>> = got
        .iter()
        .map(|m| strip_fetchmail_received(m).to_vec())
        .collect();
    assert_msgs_eq(&stripped, &expected());
    d.wait_for_tls_login(ALICE.0);
    assert_eq!(d.message_count(ALICE.0), 3, "keep must not delete");
}

#[test]
fn fetchmail_stls_and_plain_without_keep() {
    let d = start();
    // bob's password contains quotes, a backslash and spaces (rc quoting).
    for m in messages() {
        d.deliver(BOB.0, &m);
    }
    let got = fetchmail_fetch(
        &d.host_name,
        d.pop3_port,
        BOB.0,
        BOB.1,
        Tls::stls(&d.ca_pem_path),
        false,
    );
    let stripped: Vec<Vec<u8>> = got
        .iter()
        .map(|m| strip_fetchmail_received(m).to_vec())
        .collect();
    assert_msgs_eq(&stripped, &expected());
    d.wait_for_tls_login(BOB.0);
    assert_eq!(d.message_count(BOB.0), 0, "no keep must delete");

    // Plain mode must not use STLS even though Dovecot advertises it.
    let got = fetchmail_fetch(
        &d.host_name,
        d.pop3_port,
        ALICE.0,
        ALICE.1,
        Tls::Plain,
        true,
    );
    assert_eq!(got.len(), 3);
    let logins = d.wait_for_log_lines("login of alice", 1, |l| l.contains("Login: user=<alice>"));
    assert!(!logins[0].contains(", TLS"), "{logins:?}");
}

#[test]
fn dele_without_quit_is_rolled_back() {
    let d = start();
    let tls = Tls::implicit(&d.ca_pem_path);
    let out = poplib_session(
        r#"
p = connect(*sys.argv[1:3], *sys.argv[5:7])
p.user(sys.argv[3])
p.pass_(sys.argv[4])
print(p.dele(1))
import socket
p.sock.shutdown(socket.SHUT_RDWR)
p.sock.close()
"#,
        "127.0.0.1",
        d.pop3s_port,
        ALICE.0,
        ALICE.1,
        &tls,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+OK"));
    // Wait until Dovecot has finished the aborted session; it reports the
    // DELE as not performed ("del=0/3").
    let lines = d.wait_for_log_lines("alice's aborted session", 1, |l| {
        l.contains("pop3(alice)") && l.contains("Disconnected: Connection closed")
    });
    assert!(lines[0].contains("del=0/3"), "{lines:?}");
    assert_eq!(d.message_count(ALICE.0), 3);
    let got = poplib_retr_all("127.0.0.1", d.pop3s_port, ALICE.0, ALICE.1, tls.clone());
    assert_msgs_eq(&got, &expected());

    // Contrast: DELE + QUIT really deletes.
    let out = poplib_session(
        "p = connect(*sys.argv[1:3], *sys.argv[5:7])\n\
         p.user(sys.argv[3]); p.pass_(sys.argv[4]); p.dele(1); p.quit()\n",
        "127.0.0.1",
        d.pop3s_port,
        ALICE.0,
        ALICE.1,
        &tls,
    );
    assert!(out.status.success());
    assert_eq!(d.message_count(ALICE.0), 2);
    let got = poplib_retr_all("127.0.0.1", d.pop3s_port, ALICE.0, ALICE.1, tls);
    assert_msgs_eq(&got, &expected()[1..]);
}

#[test]
fn many_deliveries_keep_order() {
    let d = Dovecot::start(&[ALICE]);
    let want: Vec<Vec<u8>> = (0..25)
        .map(|i| format!("Subject: message {i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    for m in &want {
        d.deliver(ALICE.0, m);
    }
    assert_eq!(d.message_count(ALICE.0), 25);
    let got = poplib_retr_all(
        "127.0.0.1",
        d.pop3s_port,
        ALICE.0,
        ALICE.1,
        Tls::implicit(&d.ca_pem_path),
    );
    assert_msgs_eq(&got, &want);
}

#[test]
fn instances_are_independent() {
    let a = Dovecot::start(&[ALICE]);
    let b = Dovecot::start(&[ALICE]);
    assert_ne!(a.pop3_port, b.pop3_port);
    assert_ne!(a.ca_pem(), b.ca_pem());
    a.deliver(ALICE.0, b"Subject: a\n\nonly in a\n");
    let tls_b = Tls::implicit(&b.ca_pem_path);
    assert!(poplib_retr_all("127.0.0.1", b.pop3s_port, ALICE.0, ALICE.1, tls_b).is_empty());
    // b's CA does not trust a's certificate.
    let out = curl_output(
        "127.0.0.1",
        a.pop3s_port,
        ALICE.0,
        ALICE.1,
        "",
        &Tls::implicit(&b.ca_pem_path),
        &[],
    );
    assert!(!out.status.success());
    let pid = a.pid();
    let dir = a.dir.path().to_path_buf();
    drop(a);
    assert!(!dir.exists(), "temp dir not removed");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "dovecot {pid} still running after drop"
    );
}
