//! `proxy_protocol = true`: the real proxy, in-process (started as `serve`
//! starts it), behind a simulated load balancer that sends PROXY protocol
//! headers, in front of the fake POP3 server. A valid header (v1 TCP4 and
//! TCP6, v2 TCP4 and TCP6, LOCAL, UNKNOWN) gets the greeting, the session
//! works to a RETR, and the client address the header carries is the one
//! logged; no header, garbage, an over-long line or a truncated header
//! close the connection without a greeting and without connecting
//! upstream.

mod support;

use std::net::{Ipv6Addr, SocketAddr};

use support::fake_server::SERVER_WAIT;
use support::logs::captured_logs;
use support::{fake_server::*, inproc::*, mailbox::*, pop3_client::*, tls::*};
use tokio::io::AsyncWriteExt;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A version 2 header: `command` 0 (LOCAL) or 1 (PROXY), `family` byte.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn v2_tcp4(src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(&[127, 0, 0, 1]);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&110u16.to_be_bytes());
    v2(1, 0x11, &p)
}

fn v2_tcp6(src: &str, sport: u16) -> Vec<u8> {
    let mut p = src.parse::<Ipv6Addr>().unwrap().octets().to_vec();
    p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&110u16.to_be_bytes());
    v2(1, 0x21, &p)
}

/// The proxy with `proxy_protocol = true` (and the command timeout, which
/// bounds the wait for the header, at `command` seconds).
async fn proxied(server: &FakeServer, ca: &TestCa, command: f64) -> ProxyHandle {
    start_proxy(server.addr, &ca.pem(), |f| {
        f.proxy_protocol = Some(true);
        f.timeouts.command = command;
    })
    .await
}

/// Wait (bounded) until one captured log line contains every one of
/// `parts`; returns it.
async fn log_line(parts: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + SERVER_WAIT;
    loop {
        let logs = captured_logs();
        if let Some(l) = logs.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return l.to_string();
        }
        if tokio::time::Instant::now() > deadline {
            panic!("no log line with {parts:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Connect as the load balancer would and send `header`; returns the
/// client and the `via` the proxy sees (this socket's address).
async fn connect_with(proxy: &ProxyHandle, header: &[u8]) -> (Client, String) {
    let mut c = proxy.client().await;
    let via = format!("via={}", c.stream.local_addr().unwrap());
    assert!(c.send(header).await, "send the header");
    (c, via)
}

/// A valid header: the greeting, a login, a RETR relayed as without the
/// option, QUIT; the log names `client` as the session's peer.
async fn accepted(proxy: &ProxyHandle, server: &FakeServer, header: &[u8], client: Option<&str>) {
    let before = server.conns().len();
    let (mut c, via) = connect_with(proxy, header).await;
    let local = c.stream.local_addr().unwrap().to_string();
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK user accepted");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    let status = c.cmd("RETR 1").await;
    assert!(status.starts_with("+OK"), "RETR: {status}");
    let mut want = stuff(&expected_delivery(&sample_mailbox()[0]));
    want.extend_from_slice(b".\r\n");
    assert_eq!(c.multi().await, want);
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    assert!(c.read_to_close().await.is_empty());
    let rec = server.wait_closed(before).await;
    assert!(rec.got_prefix("RETR 1") && rec.got_quit());
    // LOCAL and UNKNOWN: the socket's peer stands for the client.
    let peer = format!("peer={}", client.unwrap_or(&local));
    log_line(&[&via, &peer, "client connected"]).await;
    log_line(&[&via, &peer, "session ended by QUIT"]).await;
}

/// A refused header: no greeting, the connection closed, nothing
/// upstream, and a warning naming `why` (without the bytes sent).
async fn refused(c: &mut Client, via: &str, server: &FakeServer, why: &str) {
    let before = server.conns().len();
    let got = c.read_to_close().await;
    assert!(
        got.is_empty(),
        "no greeting: {:?}",
        String::from_utf8_lossy(&got)
    );
    let line = log_line(&[via, "closing the connection without a greeting", why]).await;
    assert!(line.contains("WARN"), "{line}");
    assert!(!line.contains("peer="), "no client address: {line}");
    assert!(!line.contains("MARKER"), "the bytes are not logged: {line}");
    assert_eq!(server.conns().len(), before, "nothing connected upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_headers_get_the_greeting_and_the_address_they_carry_is_logged() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = proxied(&server, &ca, 60.0).await;
    accepted(
        &proxy,
        &server,
        b"PROXY TCP4 192.0.2.41 127.0.0.1 40041 110\r\n",
        Some("192.0.2.41:40041"),
    )
    .await;
    accepted(
        &proxy,
        &server,
        b"PROXY TCP6 2001:db8::42 ::1 40042 110\r\n",
        Some("[2001:db8::42]:40042"),
    )
    .await;
    accepted(
        &proxy,
        &server,
        &v2_tcp4([198, 51, 100, 43], 40043),
        Some("198.51.100.43:40043"),
    )
    .await;
    accepted(
        &proxy,
        &server,
        &v2_tcp6("2001:db8::44", 40044),
        Some("[2001:db8::44]:40044"),
    )
    .await;
    accepted(&proxy, &server, &v2(0, 0x00, &[]), None).await;
    accepted(&proxy, &server, b"PROXY UNKNOWN\r\n", None).await;
    proxy.expect_no_sessions("after the proxied sessions").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_or_missing_headers_close_the_connection_without_a_greeting() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = proxied(&server, &ca, 60.0).await;

    // A client that speaks POP3 straight away (no balancer in front).
    let (mut c, via) = connect_with(&proxy, b"USER MARKER\r\n").await;
    refused(&mut c, &via, &server, "does not start with a PROXY").await;

    // Garbage after a v1 start.
    let (mut c, via) = connect_with(&proxy, b"PROXY TCP4 MARKER 127.0.0.1 1 2\r\n").await;
    refused(&mut c, &via, &server, "malformed PROXY protocol header").await;

    // Binary garbage.
    let (mut c, via) = connect_with(&proxy, &[0u8, 0xff, 0x13, 0x37, b'\r', b'\n']).await;
    refused(&mut c, &via, &server, "does not start with a PROXY").await;

    // A v1 line longer than 107 octets, never ended.
    let long = format!("PROXY TCP4 {}", "1".repeat(200));
    let (mut c, via) = connect_with(&proxy, long.as_bytes()).await;
    refused(&mut c, &via, &server, "too long").await;

    // A truncated v2 header: the addresses cut short, then the write side
    // closed.
    let header = v2_tcp4([192, 0, 2, 45], 40045);
    let (mut c, via) = connect_with(&proxy, &header[..header.len() - 3]).await;
    c.stream.shutdown().await.unwrap();
    refused(
        &mut c,
        &via,
        &server,
        "before the PROXY protocol header was complete",
    )
    .await;

    // A v2 header whose addresses do not fit its family.
    let (mut c, via) = connect_with(&proxy, &v2(1, 0x21, &[0u8; 12])).await;
    refused(&mut c, &via, &server, "shorter than their family").await;

    proxy.expect_no_sessions("after the refusals").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_is_closed_at_the_command_timeout() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = proxied(&server, &ca, 0.3).await;
    let (mut c, via) = connect_with(&proxy, b"").await;
    refused(
        &mut c,
        &via,
        &server,
        "no complete PROXY protocol header within",
    )
    .await;
    // A header started but not finished in time.
    let (mut c, via) = connect_with(&proxy, b"PROXY TCP4 192.0.2.46").await;
    refused(
        &mut c,
        &via,
        &server,
        "no complete PROXY protocol header within",
    )
    .await;
    proxy.expect_no_sessions("after the timeouts").await;
}

/// Off (the default), nothing is expected first: the greeting comes at
/// once, and the log names the socket's peer.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_option_nothing_changes() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    let local: SocketAddr = c.stream.local_addr().unwrap();
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let line = log_line(&[&format!("peer={local}"), "client connected"]).await;
    assert!(!line.contains("via="), "{line}");
}

/// The `popcrypt serve` binary with `proxy_protocol = true` from its
/// configuration file, in front of a real Dovecot: v1 and v2 headers get
/// the session (a RETR of the delivered message), the addresses they carry
/// are logged, and a connection without a header or with a garbled one is
/// closed without a greeting and never reaches Dovecot.
#[test]
fn serve_behind_a_balancer_with_a_real_dovecot() {
    use support::dovecot::Dovecot;
    use support::proxy::ProxyProcess;
    const ALICE: (&str, &str) = ("alice", "Tr0ub4dor&3-secret");
    let d = Dovecot::start(&[ALICE]);
    d.deliver(ALICE.0, b"From: a@example.org\nSubject: pp\n\nbody line\n");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("popcrypt.toml");
    std::fs::write(&config, "proxy_protocol = true\n").unwrap();
    let p = ProxyProcess::implicit(&d, &[std::ffi::OsStr::new("--config"), config.as_os_str()]);

    let headers: [(Vec<u8>, &str); 2] = [
        (
            b"PROXY TCP4 203.0.113.51 127.0.0.1 40051 110\r\n".to_vec(),
            "peer=203.0.113.51:40051",
        ),
        (v2_tcp6("2001:db8::52", 40052), "peer=[2001:db8::52]:40052"),
    ];
    for (i, (header, peer)) in headers.iter().enumerate() {
        let mut c = p.connect();
        assert!(c.send(header));
        let greeting = c.line().unwrap();
        assert!(greeting.starts_with("+OK"), "{greeting}");
        assert!(c.cmd(&format!("USER {}", ALICE.0)).starts_with("+OK"));
        assert!(c.cmd(&format!("PASS {}", ALICE.1)).starts_with("+OK"));
        assert!(c.cmd("RETR 1").starts_with("+OK"));
        let body = c.multi();
        assert!(
            body.contains("Subject: pp\r\n") && body.contains("body line\r\n"),
            "{body}"
        );
        assert!(c.cmd("QUIT").starts_with("+OK"));
        let log = p.wait_for_log("session ended by QUIT", i + 1);
        assert!(
            log.lines()
                .any(|l| l.contains(peer) && l.contains("client connected")),
            "{peer} not logged"
        );
    }
    let upstream_sessions = p.log().matches("upstream connected").count();
    for (i, bad) in [&b"CAPA\r\n"[..], b"PROXY TCP4 not-an-address\r\n"]
        .iter()
        .enumerate()
    {
        let mut c = p.connect();
        assert!(c.send(bad));
        assert!(c.read_to_close().is_empty(), "no greeting");
        p.wait_for_log("closing the connection without a greeting", i + 1);
    }
    assert_eq!(
        p.log().matches("upstream connected").count(),
        upstream_sessions
    );
    assert_eq!(d.message_count(ALICE.0), 1);
}
