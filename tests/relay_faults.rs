//! The real proxy, in-process, against a scriptable fake POP3 server over
//! TLS: the happy path and the ways a session can go wrong.

mod support;

use std::time::{Duration, Instant};

use popcrypt::config::UpstreamTls;
use support::{fake_server::*, inproc::*, mailbox::*, pop3_client::*, tls::*};

const SHORT: Duration = Duration::from_millis(300);

fn lines_of(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

/// True if a multi-line terminator appears as a line of `bytes`.
fn has_terminator(bytes: &[u8]) -> bool {
    lines_of(bytes)
        .iter()
        .any(|l| *l == b".\r\n" || *l == b".\n")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expected_retr(status: &str, msg: &[u8]) -> Vec<u8> {
    let mut want = format!("{status}\r\n").into_bytes();
    want.extend_from_slice(&stuff(&expected_delivery(msg)));
    want.extend_from_slice(b".\r\n");
    want
}

async fn multi_answer(c: &mut Client, cmd: &str) -> Vec<u8> {
    let status = c.cmd(cmd).await;
    let mut out = format!("{status}\r\n").into_bytes();
    if status.starts_with("+OK") {
        out.extend_from_slice(&c.multi().await);
    }
    out
}

// ------------------------------------------------------------------ 1

#[tokio::test(flavor = "multi_thread")]
async fn happy_path_relays_every_command() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mbox = sample_mailbox();
    let ov = overhead();
    assert_eq!(ov, 57);
    let sizes: Vec<usize> = mbox.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();

    // Session 1: APOP, relayed verbatim; the greeting keeps its timestamp.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let apop = format!("APOP {APOP_NAME} {APOP_DIGEST}");
    assert_eq!(c.cmd(&apop).await, "+OK maildrop locked and ready");
    assert_eq!(c.cmd("STAT").await, format!("+OK 3 {}", total + 3 * ov));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    assert!(c.read_to_close().await.is_empty());
    let rec = server.wait_closed(0).await;
    assert_eq!(rec.lines, vec![apop.clone(), "STAT".into(), "QUIT".into()]);

    // Session 2: USER/PASS and every transaction command.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK user accepted");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    assert_eq!(c.cmd("STAT").await, format!("+OK 3 {}", total + 3 * ov));
    let want_list = format!(
        "+OK scan listing follows\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n",
        sizes[0] + ov,
        sizes[1] + ov,
        sizes[2] + ov
    );
    assert_eq!(text(&multi_answer(&mut c, "LIST").await), want_list);
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {}", sizes[1] + ov));
    assert_eq!(c.cmd("LIST 9").await, "-ERR no such message");
    assert_eq!(
        text(&multi_answer(&mut c, "UIDL").await),
        "+OK unique-id listing follows\r\n1 uid-1\r\n2 uid-2\r\n3 uid-3\r\n.\r\n"
    );
    assert_eq!(c.cmd("UIDL 2").await, "+OK 2 uid-2");
    for (i, m) in mbox.iter().enumerate() {
        let got = multi_answer(&mut c, &format!("RETR {}", i + 1)).await;
        let want = expected_retr(&format!("+OK {} octets", m.len()), m);
        assert!(
            got == want,
            "RETR {}: got\n{}\nwant\n{}",
            i + 1,
            text(&got),
            text(&want)
        );
    }
    // The status headers come first, the forged one is gone.
    let got = multi_answer(&mut c, "RETR 2").await;
    assert!(text(&got).starts_with(&format!(
        "+OK {} octets\r\n{STATUS_HEADERS}From: mallory",
        sizes[1]
    )));
    assert!(!text(&got).contains("FORGED"));
    assert!(!text(&got).contains("continued forged line"));
    assert_eq!(c.cmd("RETR 9").await, "-ERR no such message");
    // Once retrieved, LIST and STAT report exactly what RETR delivered
    // (message 2 lost its forged header, so it is smaller than size + 57).
    let delivered: Vec<usize> = mbox.iter().map(|m| expected_delivery(m).len()).collect();
    assert!(delivered[1] < sizes[1] + ov);
    assert_eq!(delivered[0], sizes[0] + ov);
    let want_list = format!(
        "+OK scan listing follows\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n",
        delivered[0], delivered[1], delivered[2]
    );
    assert_eq!(text(&multi_answer(&mut c, "LIST").await), want_list);
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {}", delivered[1]));
    for (n, lines) in [(1, 2), (1, 0), (3, 5), (2, 100)] {
        let got = multi_answer(&mut c, &format!("TOP {n} {lines}")).await;
        let want = expected_retr("+OK top of message follows", &top(&mbox[n - 1], lines));
        assert!(
            got == want,
            "TOP {n} {lines}: got\n{}\nwant\n{}",
            text(&got),
            text(&want)
        );
    }
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", delivered[1] + delivered[2])
    );
    assert_eq!(c.cmd("RSET").await, "+OK maildrop has 3 messages");
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 3 {}", delivered.iter().sum::<usize>())
    );
    assert_eq!(c.cmd("NOOP").await, "+OK noop");
    // CAPA: STLS and channel-binding mechanisms are not offered to the client.
    let capa = text(&multi_answer(&mut c, "CAPA").await);
    assert!(
        capa.contains("\r\nTOP\r\n") && capa.contains("\r\nUIDL\r\n"),
        "{capa}"
    );
    assert!(capa.contains("\r\nSASL PLAIN LOGIN\r\n"), "{capa}");
    assert!(!capa.contains("STLS") && !capa.contains("-PLUS"), "{capa}");
    assert!(!capa.contains("IMPLEMENTATION fake"), "{capa}");
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    assert!(
        c.read_to_close().await.is_empty(),
        "nothing after the QUIT answer"
    );

    let rec = server.wait_closed(1).await;
    let mut want: Vec<String> = vec![
        format!("USER {USER}"),
        format!("PASS {PASSWORD}"),
        "STAT".into(),
        "LIST".into(),
        "LIST 2".into(),
        "LIST 9".into(),
        "UIDL".into(),
        "UIDL 2".into(),
        "RETR 1".into(),
        "RETR 2".into(),
        "RETR 3".into(),
        "RETR 2".into(),
        "RETR 9".into(),
        "LIST".into(),
        "LIST 2".into(),
    ];
    for t in ["TOP 1 2", "TOP 1 0", "TOP 3 5", "TOP 2 100"] {
        want.push(t.into());
    }
    for t in ["DELE 1", "STAT", "RSET", "STAT", "NOOP", "CAPA", "QUIT"] {
        want.push(t.into());
    }
    assert_eq!(rec.lines, want);
    assert!(rec.got_quit());
    assert_eq!(
        server.conns().len(),
        2,
        "one upstream connection per session"
    );
}

// ------------------------------------------------------------------ 2

#[tokio::test(flavor = "multi_thread")]
async fn upstream_drop_mid_retr_never_completes_the_answer() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send(format!("{GREETING}\r\n")).await;
            while let Some(line) = c.read_line().await {
                match line.as_str() {
                    // Body under way, last line incomplete: then gone.
                    "RETR 1" => {
                        c.send(b"+OK 999 octets\r\nSubject: partial\r\n\r\nline one\r\n..dotted\r\nline tw")
                            .await;
                        return;
                    }
                    // Gone in the middle of the header block.
                    "RETR 2" => {
                        c.send(b"+OK 999 octets\r\nSubject: cut in headers\r\n").await;
                        return;
                    }
                    // A clean TLS close (close_notify) right after the status line.
                    "RETR 3" => {
                        c.send(b"+OK 999 octets\r\nSubject: x\r\n\r\nbody\r\n").await;
                        c.shutdown().await;
                        return;
                    }
                    _ => {
                        let out = st.answer(&line);
                        c.send(out).await;
                    }
                }
            }
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;

    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("RETR 1\r\n").await);
    let got = c.read_to_close().await;
    let want_prefix = format!(
        "+OK 999 octets\r\n{STATUS_HEADERS}Subject: partial\r\n\r\nline one\r\n..dotted\r\n"
    );
    assert!(text(&got).starts_with(&want_prefix), "got {:?}", text(&got));
    assert!(
        !has_terminator(&got),
        "a truncated message must never look complete: {:?}",
        text(&got)
    );
    assert!(
        !text(&got).contains("-ERR"),
        "no status after +OK was relayed: {:?}",
        text(&got)
    );
    let rec = server.wait_closed(0).await;
    assert!(!rec.got_quit());

    // Dropped before the header block was complete: nothing relayed yet,
    // so the client gets a clear -ERR instead of a +OK.
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("RETR 2\r\n").await);
    let got = c.read_to_close().await;
    assert!(
        text(&got).starts_with("-ERR [SYS/TEMP]"),
        "got {:?}",
        text(&got)
    );
    assert!(!has_terminator(&got));

    // A clean TLS close mid-answer is just as incomplete.
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("RETR 3\r\n").await);
    let got = c.read_to_close().await;
    assert!(
        text(&got).starts_with("+OK 999 octets\r\n"),
        "got {:?}",
        text(&got)
    );
    assert!(text(&got).contains("body\r\n"));
    assert!(!has_terminator(&got), "got {:?}", text(&got));
}

// ------------------------------------------------------------------ 3, 4

/// A server whose handshake must fail: it records, never serves.
async fn tls_server(cfg: std::sync::Arc<rustls::ServerConfig>) -> FakeServer {
    FakeServer::start(Transport::Implicit(cfg), |c| {
        serve_pop3(c, Pop3State::default(), true)
    })
    .await
}

async fn assert_tls_refused(server: &FakeServer, proxy: &ProxyHandle, needle: &str) {
    let mut c = proxy.client().await;
    let line = c.line().await;
    assert!(line.starts_with("-ERR [SYS/TEMP]"), "{line}");
    let lower = line.to_ascii_lowercase();
    assert!(
        lower.contains("tls") && lower.contains("certificate"),
        "{line}"
    );
    assert!(lower.contains(needle), "expected {needle:?} in {line}");
    assert!(
        c.read_to_close().await.is_empty(),
        "connection closes after the -ERR"
    );
    let n = server.conns().len();
    let rec = server.wait_closed(n - 1).await;
    assert!(
        rec.tls_error.is_some(),
        "handshake must fail server-side: {rec:?}"
    );
    assert!(!rec.tls_ok && !rec.handler_started, "{rec:?}");
    assert!(rec.lines.is_empty() && rec.bytes_received == 0, "{rec:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_or_expired_certificate_is_refused_before_any_command() {
    let trusted = TestCa::new("trusted CA");
    let rogue = TestCa::new("rogue CA");
    let server = tls_server(rogue.server_config(&["localhost", "127.0.0.1"])).await;
    let proxy = start_proxy(server.addr, &trusted.pem(), |_| {}).await;
    assert_tls_refused(&server, &proxy, "issuer").await;

    // A client that does not wait for the greeting: its USER/PASS must not
    // reach the server either.
    let mut c = proxy.client().await;
    assert!(c.send(format!("USER {USER}\r\nPASS {PASSWORD}\r\n")).await);
    let got = c.read_to_close().await;
    assert!(
        got.is_empty() || text(&got).starts_with("-ERR [SYS/TEMP]"),
        "{:?}",
        text(&got)
    );
    let rec = server.wait_closed(1).await;
    assert!(
        rec.tls_error.is_some() && rec.lines.is_empty() && rec.bytes_received == 0,
        "{rec:?}"
    );

    // Right CA, right name, but expired.
    let expired = trusted.issue_with(&["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let server = tls_server(server_config(expired)).await;
    let proxy = start_proxy(server.addr, &trusted.pem(), |_| {}).await;
    assert_tls_refused(&server, &proxy, "expired").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_hostname_is_refused() {
    let ca = TestCa::new("popcrypt test CA");
    let server = tls_server(ca.server_config(&["other.example"])).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    assert_tls_refused(&server, &proxy, "not valid for name").await;

    // The same certificate is fine when the expected name is configured.
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.upstream_server_name = Some("other.example".into())
    })
    .await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("QUIT").await, "+OK bye");

    // An IP address as upstream is checked against IP SANs, not DNS names.
    let by_ip = |addr: std::net::SocketAddr| {
        move |f: &mut popcrypt::config::FileConfig| {
            f.upstream = Some(format!("127.0.0.1:{}", addr.port()))
        }
    };
    let with_ip = tls_server(ca.server_config(&["localhost", "127.0.0.1"])).await;
    let proxy = start_proxy(with_ip.addr, &ca.pem(), by_ip(with_ip.addr)).await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let dns_only = tls_server(ca.server_config(&["localhost"])).await;
    let proxy = start_proxy(dns_only.addr, &ca.pem(), by_ip(dns_only.addr)).await;
    assert_tls_refused(&dns_only, &proxy, "not valid for name").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_and_tls12_only_servers() {
    let ca = TestCa::new("popcrypt test CA");
    let clients = TestCa::new("client CA");
    let mtls =
        |ca: &TestCa, clients: &TestCa| server_config_mtls(ca.issue(&["localhost"]), clients);
    let server = FakeServer::start(Transport::Implicit(mtls(&ca, &clients)), |c| {
        serve_pop3(c, Pop3State::default(), true)
    })
    .await;
    // With the client certificate: a normal session.
    let (_dir, cert, key) = client_cert_files(&clients, "popcrypt-client");
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.upstream_client_cert = Some(cert.clone());
        f.upstream_client_key = Some(key.clone());
    })
    .await;
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    // Without it: a temporary error, no credentials sent.
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    let line = c.line().await;
    assert!(line.starts_with("-ERR [SYS/TEMP]"), "{line}");
    assert!(c.read_to_close().await.is_empty());
    let rec = server.wait_closed(1).await;
    assert!(rec.lines.is_empty() && !rec.handler_started, "{rec:?}");

    // A server that only speaks TLS 1.2.
    let old = FakeServer::start(
        Transport::Implicit(server_config_tls12(ca.issue(&["localhost"]))),
        |c| serve_pop3(c, Pop3State::default(), true),
    )
    .await;
    let proxy = start_proxy(old.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_upstream_is_a_temporary_error() {
    let ca = TestCa::new("popcrypt test CA");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = start_proxy(closed, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    let line = c.line().await;
    c.expect_temp_error_then_close(&line, "connect").await;
}

// ------------------------------------------------------------------ 5

#[tokio::test(flavor = "multi_thread")]
async fn slow_server_within_timeouts_works() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send_slowly(format!("{GREETING}\r\n"), 3, Duration::from_millis(10))
                .await;
            while let Some(line) = c.read_line().await {
                let out = st.answer(&line);
                if line == "RETR 1" {
                    // Tiny pieces, and one long pause: every gap is under the
                    // 1 s limit, the whole answer takes longer than it.
                    let (a, b) = out.split_at(out.len() / 2);
                    c.send_slowly(a, 5, Duration::from_millis(10)).await;
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    c.send_slowly(b, 7, Duration::from_millis(10)).await;
                } else {
                    c.send_slowly(&out, 2, Duration::from_millis(5)).await;
                }
                if line == "QUIT" {
                    return;
                }
            }
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.timeouts.upstream_response = 1.0
    })
    .await;
    let mut c = proxy.client().await;
    c.login().await;
    let m1 = &sample_mailbox()[0];
    // The server's pieces together take longer than the 1 s limit; each
    // gap is shorter, so the answer must still arrive complete.
    let got = multi_answer(&mut c, "RETR 1").await;
    assert_eq!(
        text(&got),
        text(&expected_retr(&format!("+OK {} octets", m1.len()), m1))
    );
    assert_eq!(c.cmd("NOOP").await, "+OK noop");
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_server_times_out() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send(format!("{GREETING}\r\n")).await;
            while let Some(line) = c.read_line().await {
                match line.as_str() {
                    // No answer at all: wait for the proxy to give up.
                    "STAT" => return c.drain_until_closed().await,
                    // Part of a multi-line answer, then silence.
                    "LIST" => {
                        c.send(b"+OK scan listing follows\r\n1 100\r\n").await;
                        return c.drain_until_closed().await;
                    }
                    _ => {
                        let out = st.answer(&line);
                        c.send(out).await;
                    }
                }
            }
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.timeouts.upstream_response = 1.0
    })
    .await;

    let mut c = proxy.client().await;
    c.login().await;
    let line = c.cmd("STAT").await;
    c.expect_temp_error_then_close(&line, "in time").await;
    let rec = server.wait_closed(0).await;
    assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");

    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("LIST\r\n").await);
    let got = c.read_to_close().await;
    assert!(
        text(&got).starts_with("+OK scan listing follows\r\n1 "),
        "{:?}",
        text(&got)
    );
    assert!(!has_terminator(&got), "{:?}", text(&got));
    let rec = server.wait_closed(1).await;
    assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");

    // A server that completes TLS but never greets.
    let mute = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move { c.drain_until_closed().await },
    )
    .await;
    let proxy = start_proxy(mute.addr, &ca.pem(), |f| f.timeouts.handshake = 1.0).await;
    let mut c = proxy.client().await;
    let line = c.line().await;
    c.expect_temp_error_then_close(&line, "timed out").await;
}

// ------------------------------------------------------------------ 6

#[tokio::test(flavor = "multi_thread")]
async fn oversize_server_lines_end_the_session() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send(format!("{GREETING}\r\n")).await;
            while let Some(line) = c.read_line().await {
                let out = match line.as_str() {
                    // Exactly at the limit (1024 octets without CRLF): fine.
                    "USER exact" => format!("+OK {}\r\n", "x".repeat(1020)).into_bytes(),
                    "USER over" => format!("+OK {}\r\n", "x".repeat(1021)).into_bytes(),
                    "USER huge" => format!("+OK {}\r\n", "x".repeat(100_000)).into_bytes(),
                    "USER split" => {
                        c.send(format!("+OK {}\r", "x".repeat(1020))).await;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        b"\n".to_vec()
                    }
                    "RETR 1" => format!(
                        "+OK\r\nSubject: a\r\n\r\nshort\r\n{}\r\n.\r\n",
                        "y".repeat(2000)
                    )
                    .into_bytes(),
                    _ => st.answer(&line),
                };
                c.send(out).await;
            }
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.limits.max_response_line = 1024
    })
    .await;

    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("USER exact").await.len(), 1024);
    // The same length with CR and LF in separate records.
    assert_eq!(c.cmd("USER split").await.len(), 1024);
    c.cmd("QUIT").await;

    for user in ["over", "huge"] {
        let mut c = proxy.client().await;
        assert_eq!(c.line().await, GREETING);
        let line = c.cmd(&format!("USER {user}")).await;
        c.expect_temp_error_then_close(&line, "long").await;
    }

    // Over-long line inside a message: the answer is cut, never completed.
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("RETR 1\r\n").await);
    let got = c.read_to_close().await;
    assert!(
        text(&got).starts_with(&format!(
            "+OK\r\n{STATUS_HEADERS}Subject: a\r\n\r\nshort\r\n"
        )),
        "{:?}",
        text(&got)
    );
    assert!(
        !text(&got).contains("yyyy") && !has_terminator(&got),
        "{:?}",
        text(&got)
    );

    // An over-long greeting.
    let long_greeting = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            c.send(format!("+OK {}\r\n", "g".repeat(5000))).await;
            c.drain_until_closed().await;
        },
    )
    .await;
    let proxy = start_proxy(long_greeting.addr, &ca.pem(), |f| {
        f.limits.max_response_line = 1024
    })
    .await;
    let mut c = proxy.client().await;
    let line = c.line().await;
    assert!(
        line.starts_with("-ERR [SYS/TEMP]") && line.len() < 300,
        "{line}"
    );
    assert!(c.read_to_close().await.is_empty());
    let rec = long_greeting.wait_closed(0).await;
    assert!(rec.lines.is_empty(), "{rec:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_client_lines_are_refused_and_not_forwarded() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_command_line = 64).await;

    // Exactly at the limit: relayed.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let at_limit = format!("USER {}", "a".repeat(59));
    assert_eq!(at_limit.len(), 64);
    assert_eq!(c.cmd(&at_limit).await, "+OK user accepted");
    c.cmd("QUIT").await;
    let rec = server.wait_closed(0).await;
    assert_eq!(rec.lines, vec![at_limit.clone(), "QUIT".into()]);

    // One over, with CRLF; and a long line that never ends.
    let over = format!("USER {}\r\n", "a".repeat(60));
    let endless = "A".repeat(500);
    for (i, input) in [over, endless].into_iter().enumerate() {
        let mut c = proxy.client().await;
        assert_eq!(c.line().await, GREETING);
        assert!(c.send(&input).await);
        let line = c.line().await;
        assert!(line.starts_with("-ERR") && line.contains("64"), "{line}");
        assert!(c.read_to_close().await.is_empty());
        let rec = server.wait_closed(i + 1).await;
        assert!(
            rec.lines.is_empty() && rec.bytes_received == 0,
            "nothing may reach the server: {rec:?}"
        );
        assert!(rec.peer_closed);
    }
}

// ------------------------------------------------------------------ 7

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_the_server_is_a_temporary_error() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            c.send(format!("{GREETING}\r\n")).await;
            if c.read_line().await.is_some() {
                c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
            c.drain_until_closed().await;
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let line = c.cmd("USER alice").await;
    assert!(line.starts_with("-ERR [SYS/TEMP]"), "{line}");
    let rest = c.read_to_close().await;
    assert!(
        !text(&rest).contains("HTTP") && !text(&rest).contains("Content-Length"),
        "{:?}",
        text(&rest)
    );

    // An HTTP server instead of a POP3 one.
    let http = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            c.send(b"HTTP/1.1 200 OK\r\n\r\n").await;
            c.drain_until_closed().await;
        },
    )
    .await;
    let proxy = start_proxy(http.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    let line = c.line().await;
    assert!(line.starts_with("-ERR [SYS/TEMP]"), "{line}");
    assert!(!line.contains("HTTP/1.1"), "{line}");
    assert!(c.read_to_close().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_the_client_is_refused_and_the_session_survives() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;

    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    for junk in [
        b"\x00\x01\xff\xfe garbage \x80\r\n".as_slice(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
        b"\r\n",
        b"USER a\x00b\r\n",
        b"RETR 1\r\n",
        b"\xc3\x28 \xa0\xa1\r\n",
        b"lone\rcr\r\n",
    ] {
        assert!(c.send(junk).await);
        let line = c.line().await;
        assert!(line.starts_with("-ERR"), "{junk:?} -> {line}");
    }
    // Random bytes with embedded line ends, then a real command.
    let mut seed: u32 = 7;
    let blob: Vec<u8> = (0..4096)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as u8
        })
        .collect();
    assert!(c.send(&blob).await);
    assert!(c.send(b"\r\nUSER alice\r\n").await);
    loop {
        let Some(line) = c.try_line().await else {
            panic!("proxy closed the session on client garbage");
        };
        if line == "+OK user accepted" {
            break;
        }
        assert!(line.starts_with("-ERR"), "{line:?}");
    }
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(
        rec.lines,
        vec![
            "USER alice".to_string(),
            format!("PASS {PASSWORD}"),
            "STAT".into(),
            "QUIT".into()
        ],
        "garbage must never be forwarded"
    );

    // The proxy is still alive for new sessions.
    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
}

// ------------------------------------------------------------------ 8

fn starttls(ca: &TestCa, answer: &str, inject: &[u8]) -> Transport {
    Transport::Starttls {
        config: ca.server_config(&["localhost"]),
        greeting: "+OK plain greeting <777.888@stls>".into(),
        stls_answer: answer.into(),
        inject: inject.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_upgrade_relays_the_plain_greeting() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(starttls(&ca, "+OK begin TLS", b""), |c| {
        serve_pop3(c, Pop3State::default(), false)
    })
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.upstream_tls = Some(UpstreamTls::Starttls)
    })
    .await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, "+OK plain greeting <777.888@stls>");
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK user accepted");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(rec.plain_lines, vec!["STLS".to_string()]);
    assert!(rec.tls_ok);
    assert_eq!(
        rec.lines,
        vec![
            format!("USER {USER}"),
            format!("PASS {PASSWORD}"),
            "STAT".into(),
            "QUIT".into()
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_refused_or_injected_never_falls_back_to_plaintext() {
    let ca = TestCa::new("popcrypt test CA");
    for (answer, inject) in [
        ("-ERR STLS not available", b"".as_slice()),
        (
            "+OK begin TLS",
            b"+OK injected before the handshake\r\n".as_slice(),
        ),
    ] {
        let server = FakeServer::start(starttls(&ca, answer, inject), |c| {
            serve_pop3(c, Pop3State::default(), false)
        })
        .await;
        let proxy = start_proxy(server.addr, &ca.pem(), |f| {
            f.upstream_tls = Some(UpstreamTls::Starttls)
        })
        .await;
        let mut c = proxy.client().await;
        let line = c.line().await;
        assert!(
            line.starts_with("-ERR [SYS/TEMP]") && line.contains("STLS"),
            "{answer}: {line}"
        );
        // A client that ignores the error and tries to log in anyway.
        c.send(format!("USER {USER}\r\nPASS {PASSWORD}\r\n")).await;
        assert!(c.read_to_close().await.is_empty());
        let rec = server.wait_closed(0).await;
        assert_eq!(
            rec.plain_lines,
            vec!["STLS".to_string()],
            "{answer}: {rec:?}"
        );
        assert!(rec.lines.is_empty() && !rec.handler_started, "{rec:?}");
        assert!(!rec.got_prefix("USER") && !rec.got_prefix("PASS"));
    }
}

// ------------------------------------------------------------------ 9

#[tokio::test(flavor = "multi_thread")]
async fn dele_without_quit_is_never_committed() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;

    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    drop(c);
    let rec = server.wait_closed(0).await;
    assert!(rec.peer_closed, "{rec:?}");
    assert!(
        rec.lines.contains(&"DELE 1".to_string()) && !rec.got_quit(),
        "{rec:?}"
    );

    // DELE and an immediate disconnect, answer unread.
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.send("DELE 2\r\n").await);
    drop(c);
    let rec = server.wait_closed(1).await;
    assert!(!rec.got_quit(), "{rec:?}");

    // DELE, then gone in the middle of a large RETR.
    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert!(c.send("RETR 3\r\n").await);
    assert!(c.line().await.starts_with("+OK "));
    drop(c);
    let rec = server.wait_closed(2).await;
    assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_that_stops_reading_is_cut_off_by_the_write_timeout() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send(format!("{GREETING}\r\n")).await;
            while let Some(line) = c.read_line().await {
                let out = if line == "RETR 1" {
                    // 32 MB: more than the socket buffers hold.
                    let mut out = b"+OK\r\nSubject: big\r\n\r\n".to_vec();
                    let l = format!("{}\r\n", "z".repeat(998));
                    for _ in 0..32_000 {
                        out.extend_from_slice(l.as_bytes());
                    }
                    out.extend_from_slice(b".\r\n");
                    out
                } else {
                    st.answer(&line)
                };
                c.send(out).await;
            }
        },
    )
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.timeouts.write = 1.0).await;
    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted");
    assert!(c.send("RETR 1\r\n").await);
    // The client reads nothing more; the proxy gives up on it.
    let rec = server.wait_closed(0).await;
    assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_shutdown_ends_sessions_without_quit() {
    let ca = TestCa::new("popcrypt test CA");
    let server = FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost"])),
        |mut c| async move {
            let mut st = Pop3State::default();
            c.send(format!("{GREETING}\r\n")).await;
            while let Some(line) = c.read_line().await {
                if line == "RETR 3" {
                    // Half a message, then wait.
                    c.send(b"+OK\r\nSubject: slow\r\n\r\nfirst\r\n").await;
                    return c.drain_until_closed().await;
                }
                let out = st.answer(&line);
                c.send(out).await;
            }
        },
    )
    .await;
    let mut proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;

    let mut idle = proxy.client().await;
    idle.login().await;
    assert_eq!(idle.cmd("DELE 1").await, "+OK message 1 deleted");
    let mut busy = proxy.client().await;
    busy.login().await;
    assert!(busy.send("RETR 3\r\n").await);
    assert_eq!(busy.line().await, "+OK");
    // Wait until the partial body has been relayed.
    loop {
        if busy.line().await == "first" {
            break;
        }
    }

    assert!(
        proxy.shutdown().await,
        "Proxy::run must return after shutdown"
    );
    let line = idle.line().await;
    assert!(
        line.starts_with("-ERR [SYS/TEMP]") && line.contains("shutting down"),
        "{line}"
    );
    assert!(idle.read_to_close().await.is_empty());
    let rest = busy.read_to_close().await;
    assert!(
        !has_terminator(&rest) && !text(&rest).contains("+OK"),
        "{:?}",
        text(&rest)
    );
    for i in 0..2 {
        let rec = server.wait_closed(i).await;
        assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");
    }
    // Nobody listens any more.
    match tokio::net::TcpStream::connect(proxy.addr).await {
        Err(_) => {}
        Ok(s) => {
            let mut c = Client::from_stream(s);
            assert!(
                c.read_to_close().await.is_empty(),
                "no greeting after shutdown"
            );
        }
    }
}

// ------------------------------------------------------------------ 10

#[tokio::test(flavor = "multi_thread")]
async fn max_sessions_refuses_the_extra_client() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_sessions = 1).await;

    let mut a = proxy.client().await;
    assert_eq!(a.line().await, GREETING);
    let mut b = proxy.client().await;
    let line = b.line().await;
    assert!(
        line.starts_with("-ERR [SYS/TEMP]") && line.contains("too many sessions"),
        "{line}"
    );
    assert!(b.read_to_close().await.is_empty());
    tokio::time::sleep(SHORT).await;
    assert_eq!(
        server.conns().len(),
        1,
        "a refused client must not open an upstream connection"
    );
    // The first session is unaffected.
    a.send(format!("USER {USER}\r\nPASS {PASSWORD}\r\n")).await;
    assert_eq!(a.line().await, "+OK user accepted");
    assert_eq!(a.line().await, "+OK logged in");
    assert_eq!(a.cmd("QUIT").await, "+OK bye");
    assert!(a.read_to_close().await.is_empty());

    // The slot is free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = proxy.client().await;
        let line = c.line().await;
        if line == GREETING {
            break;
        }
        assert!(line.contains("too many sessions"), "{line}");
        assert!(
            Instant::now() < deadline,
            "the session slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------------ 11

#[tokio::test(flavor = "multi_thread")]
async fn idle_client_is_disconnected_without_quit() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.timeouts.client_idle = 1.0).await;

    // Activity keeps the session alive past the limit.
    let mut busy = proxy.client().await;
    busy.login().await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(busy.cmd("NOOP").await, "+OK noop");
    }

    // Silence ends it.
    let mut c = proxy.client().await;
    c.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    let line = c.line().await;
    c.expect_temp_error_then_close(&line, "idle").await;
    let rec = server.wait_closed(1).await;
    assert!(rec.peer_closed && !rec.got_quit(), "{rec:?}");

    // Also in the middle of a SASL exchange (the client's turn).
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    let line = c.line().await;
    c.expect_temp_error_then_close(&line, "idle").await;
    let rec = server.wait_closed(2).await;
    assert!(!rec.got_quit(), "{rec:?}");
}

// ------------------------------------------------------------------ 12

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_commands_are_answered_in_order() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mbox = sample_mailbox();
    let ov = overhead();
    let total: usize = mbox.iter().map(Vec::len).sum();
    let batch = format!("USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nNOOP\r\nRETR 1\r\nUIDL 2\r\nBOGUS\r\nQUIT\r\n");
    let mut want = format!(
        "{GREETING}\r\n+OK user accepted\r\n+OK logged in\r\n+OK 3 {}\r\n+OK scan listing follows\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n+OK noop\r\n",
        total + 3 * ov,
        mbox[0].len() + ov,
        mbox[1].len() + ov,
        mbox[2].len() + ov
    )
    .into_bytes();
    want.extend_from_slice(&expected_retr(
        &format!("+OK {} octets", mbox[0].len()),
        &mbox[0],
    ));
    want.extend_from_slice(b"+OK 2 uid-2\r\n-ERR popcrypt: unknown command\r\n+OK bye\r\n");

    // One write, and the same batch dribbled in 3-octet writes.
    for chunk in [batch.len(), 3] {
        let mut c = proxy.client().await;
        for piece in batch.as_bytes().chunks(chunk) {
            assert!(c.send(piece).await);
        }
        let got = c.read_to_close().await;
        assert_eq!(text(&got), text(&want), "chunk {chunk}");
    }
    // The `printf ... | nc` pattern: the batch, then the write side closed.
    // QUIT was sent, so it must reach the server.
    let mut c = proxy.client().await;
    assert!(c.send(&batch).await);
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    let got = c.read_to_close().await;
    assert_eq!(text(&got), text(&want), "half-closed client");
    for i in 0..3 {
        let rec = server.wait_closed(i).await;
        assert_eq!(
            rec.lines,
            vec![
                format!("USER {USER}"),
                format!("PASS {PASSWORD}"),
                "STAT".to_string(),
                "LIST".into(),
                "NOOP".into(),
                "RETR 1".into(),
                "UIDL 2".into(),
                "QUIT".into()
            ]
        );
    }

    // A batch far larger than one read (and than the line limit), written
    // while the answers are read concurrently.
    let mut batch = format!("USER {USER}\r\nPASS {PASSWORD}\r\n");
    for i in 0..20_000 {
        batch.push_str(if i % 2 == 0 { "NOOP\r\n" } else { "UIDL 2\r\n" });
    }
    batch.push_str("QUIT\r\n");
    let c = proxy.client().await;
    let (mut r, mut w) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut w, batch.as_bytes())
            .await
            .unwrap();
        w
    });
    let mut got = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got),
    )
    .await
    .expect("large pipelined batch timed out")
    .unwrap();
    let _w = writer.await.unwrap();
    let mut want = format!("{GREETING}\r\n+OK user accepted\r\n+OK logged in\r\n");
    for i in 0..20_000 {
        want.push_str(if i % 2 == 0 {
            "+OK noop\r\n"
        } else {
            "+OK 2 uid-2\r\n"
        });
    }
    want.push_str("+OK bye\r\n");
    assert!(
        text(&got) == want,
        "large batch: {} octets received, {} expected",
        got.len(),
        want.len()
    );
}

// ------------------------------------------------------------------ 13

#[tokio::test(flavor = "multi_thread")]
async fn sasl_plain_and_login_with_continuations_and_cancel() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let payload = plain_payload(USER, PASSWORD);

    // Mechanism list, then AUTH LOGIN cancelled with "*"; USER/PASS still allowed.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        text(&multi_answer(&mut c, "AUTH").await),
        "+OK mechanisms\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    );
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(c.cmd("*").await, "-ERR [AUTH] authentication cancelled");
    assert_eq!(c.cmd("STAT").await, "-ERR popcrypt: log in first");
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK user accepted");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(&rec.lines[..3], ["AUTH", "AUTH LOGIN", "*"]);

    // AUTH PLAIN with an empty challenge and a continuation.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd(&payload).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(1).await;
    assert_eq!(
        rec.lines,
        vec![
            "AUTH PLAIN".to_string(),
            payload.clone(),
            "STAT".into(),
            "QUIT".into()
        ]
    );

    // AUTH PLAIN with an initial response; AUTH LOGIN all the way; a
    // pipelined continuation.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {payload}")).await,
        "+OK logged in"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "-ERR popcrypt: not allowed after login"
    );
    c.cmd("QUIT").await;

    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(
        c.cmd(&b64(USER.as_bytes())).await,
        format!("+ {}", b64(b"Password:"))
    );
    assert_eq!(c.cmd(&b64(PASSWORD.as_bytes())).await, "+OK logged in");
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    c.cmd("QUIT").await;

    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert!(c.send(format!("AUTH PLAIN\r\n{payload}\r\nSTAT\r\n")).await);
    assert_eq!(c.line().await, "+ ");
    assert_eq!(c.line().await, "+OK logged in");
    assert!(c.line().await.starts_with("+OK 3 "));
    c.cmd("QUIT").await;

    // A wrong payload: -ERR, still unauthenticated.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(
        c.cmd(&plain_payload(USER, "wrong")).await,
        "-ERR [AUTH] authentication failed"
    );
    assert_eq!(c.cmd("STAT").await, "-ERR popcrypt: log in first");
}

// ------------------------------------------------------------------ 14

// Secrets in the logs: tests/secrets.rs.

// ------------------------------------------------------------------ regressions

/// Regression (found by this file; fixed in 0db4595, src/pop3/session.rs, now src/pop3/engine/
/// `Engine::wants_client_input`): a command of exactly `max_command_line`
/// octets whose CR and LF arrive in separate reads stalled the session until
/// the idle timeout. `LineBuffer` accepts max + 1 buffered octets when the
/// last one is a CR, but the engine stopped reading the client once more than
/// max octets were buffered, so the LF was never read.
#[tokio::test(flavor = "multi_thread")]
async fn max_length_command_with_crlf_split_across_reads_is_answered() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.limits.max_command_line = 64;
        f.timeouts.client_idle = 2.0;
    })
    .await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let at_limit = format!("USER {}", "a".repeat(59));
    assert_eq!(at_limit.len(), 64);
    assert!(c.send(format!("{at_limit}\r")).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.send("\n").await);
    assert_eq!(c.line().await, "+OK user accepted");
}

/// The same stall for a SASL response line (same cause, same fix).
#[tokio::test(flavor = "multi_thread")]
async fn max_length_sasl_response_with_crlf_split_across_reads_is_answered() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.limits.max_command_line = 64;
        f.timeouts.client_idle = 2.0;
    })
    .await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.send(format!("{}\r", "A".repeat(64))).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.send("\n").await);
    assert_eq!(c.line().await, "-ERR [AUTH] authentication failed");
}
