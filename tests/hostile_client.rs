//! Hostile clients (issue 7): the real proxy, in-process, in front of the
//! standard fake server. Slowloris, connection bursts, overlong and binary
//! input, pipelined floods, commands in the wrong state and SASL abuse.
//! Each ends with a clear `-ERR` or a clean close, nothing the client did
//! not legitimately send reaches the server, and the live-session count
//! drops back to zero.

mod support;

use std::time::Duration;

use support::{fake_server::*, inproc::*, mailbox::*, pop3_client::*, tls::*};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tls(ca: &TestCa) -> Transport {
    Transport::Implicit(ca.server_config(&["localhost", "127.0.0.1"]))
}

/// A client that sends `data` one octet every `gap`, stopping when the
/// proxy closes (or after 40 octets: a proxy without a limit fails the
/// test instead of hanging it); returns everything the proxy sent.
async fn dribble(c: &mut Client, data: &[u8], gap: Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for b in data.iter().cycle().take(40) {
        if !c.send([*b]).await {
            break;
        }
        match tokio::time::timeout(gap, c.stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    if !got.is_empty() {
        got.extend(c.read_to_close().await);
    }
    got
}

// ------------------------------------------------------------ slowloris

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_is_ended_by_the_command_and_idle_timeouts() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.timeouts.client_idle = 2.0;
        f.timeouts.command = 2.5;
    })
    .await;
    // One octet every 0.5 s: never idle for 2 s, but the line never ends
    // (or ends too late): the command timeout closes the session.
    for (login, data) in [
        (false, &b"USER alice\r\n"[..]),
        (true, b"NOOP\r\n"),
        (true, b"RETR 1"),
    ] {
        let mut c = proxy.client().await;
        if login {
            c.login().await;
        } else {
            assert_eq!(c.line().await, GREETING);
        }
        let got = dribble(&mut c, data, Duration::from_millis(500)).await;
        assert!(
            text(&got).starts_with("-ERR [SYS/TEMP]")
                && text(&got).contains("not completed in time"),
            "{:?}",
            text(&got)
        );
    }
    // The same inside a SASL exchange (the client's turn).
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    let got = dribble(&mut c, b"AGFsaWNlAG9wZW4=", Duration::from_millis(500)).await;
    assert!(
        text(&got).contains("not completed in time"),
        "{:?}",
        text(&got)
    );
    // A slower dribble: the idle timeout ends it first.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let got = dribble(&mut c, b"NOOP\r\n", Duration::from_millis(3000)).await;
    assert!(text(&got).contains("idle"), "{:?}", text(&got));

    // No octet of a slow line was forwarded; no QUIT either.
    let recs = server.conns();
    assert_eq!(recs.len(), 5);
    for i in 0..recs.len() {
        let r = server.wait_closed(i).await;
        assert!(!r.got_quit(), "{r:?}");
        assert!(
            r.lines.iter().all(|l| l.starts_with("USER alice")
                || l.starts_with("PASS ")
                || l == "AUTH PLAIN"),
            "{r:?}"
        );
    }
    proxy.expect_no_sessions("slowloris").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn command_timeout_does_not_count_time_spent_serving_pipelined_commands() {
    let ca = TestCa::new("popcrypt test CA");
    // RETR 1 is answered after 3 s, longer than the 2 s command timeout.
    let server = FakeServer::start(tls(&ca), |mut c| async move {
        let mut st = Pop3State::default();
        c.send(format!("{GREETING}\r\n")).await;
        while let Some(line) = c.read_line().await {
            if line == "RETR 1" {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let out = st.answer(&line);
            c.send(out).await;
        }
    })
    .await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| {
        f.timeouts.command = 2.0;
        f.timeouts.upstream_response = 10.0;
    })
    .await;
    let mut c = proxy.client().await;
    c.login().await;
    // A pipelining client whose next command was cut between two writes.
    assert!(c.send("RETR 1\r\nNO").await);
    assert!(c.line().await.starts_with("+OK"));
    c.multi().await;
    assert!(c.send("OP\r\n").await);
    assert_eq!(c.line().await, "+OK noop");
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    proxy.expect_no_sessions("pipelined RETR").await;
}

// ------------------------------------------------------------ burst

fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this test process.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max.max(want),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                // Not allowed to raise the hard limit: take what there is.
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_connections_in_a_burst() {
    const ATTEMPTS: usize = 10_000;
    const MAX: usize = 8;
    // Each attempt costs two descriptors in this process (both ends).
    raise_nofile(4 * ATTEMPTS as u64);
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_sessions = MAX).await;
    let addr = proxy.addr;
    // Served clients hold their session until every attempt is decided.
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let waiting = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ATTEMPTS {
        let mut release = release_rx.clone();
        let waiting = waiting.clone();
        tasks.spawn(async move {
            let limit = Duration::from_secs(60);
            let s = match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
                Err(_) => return ("connect timed out", None),
                Ok(Err(_)) => return ("connect refused", None),
                Ok(Ok(s)) => s,
            };
            // The first line, read octet by octet (the Client helper's own
            // read timeout is shorter than a burst may need).
            let mut s = s;
            let mut first = Vec::new();
            let read_line = async {
                let mut b = [0u8; 1];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut s, &mut b).await {
                        Ok(1) if b[0] == b'\n' => return true,
                        Ok(1) => first.push(b[0]),
                        _ => return false,
                    }
                }
            };
            match tokio::time::timeout(limit, read_line).await {
                Err(_) => return ("no answer", None),
                Ok(false) => return ("closed", None),
                Ok(true) => {}
            }
            let line = text(&first).trim_end_matches('\r').to_string();
            let mut c = Client::from_stream(s);
            if line == GREETING {
                waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = release.wait_for(|r| *r).await;
                return ("served", Some(c));
            }
            if line.starts_with("-ERR [SYS/TEMP]") && line.contains("too many sessions") {
                // Refused cleanly: nothing more, then the close.
                let rest = c.read_to_close().await;
                return if rest.is_empty() {
                    ("refused", None)
                } else {
                    ("refused, then more data", None)
                };
            }
            ("unexpected line", None)
        });
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut served = Vec::new();
    let mut decided = 0;
    let mut released = false;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        // Served clients finish only once released: release them when
        // every other attempt is decided.
        let holding = waiting.load(std::sync::atomic::Ordering::SeqCst);
        if !released && decided + holding == ATTEMPTS {
            released = true;
            release_tx.send(true).unwrap();
        }
        match tokio::time::timeout(Duration::from_millis(200), tasks.join_next()).await {
            Ok(Some(r)) => {
                let (what, c) = r.expect("client task");
                *counts.entry(what).or_default() += 1;
                decided += 1;
                if let Some(c) = c {
                    served.push(c);
                }
            }
            Ok(None) => break,
            Err(_) => assert!(
                tokio::time::Instant::now() < give_up,
                "attempts hang: {decided} decided, {holding} served and holding, {counts:?}"
            ),
        }
    }
    eprintln!("burst of {ATTEMPTS}: {counts:?}");
    let n_served = counts.get("served").copied().unwrap_or(0);
    let n_refused = counts.get("refused").copied().unwrap_or(0)
        + counts.get("closed").copied().unwrap_or(0)
        + counts.get("connect refused").copied().unwrap_or(0);
    assert!((1..=MAX).contains(&n_served), "{counts:?}");
    assert_eq!(n_served + n_refused, ATTEMPTS, "{counts:?}");
    assert!(
        counts.get("refused").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    // A refused client never opened an upstream connection.
    assert_eq!(server.conns().len(), n_served);
    for mut c in served {
        assert_eq!(c.cmd("QUIT").await, "+OK bye");
    }
    proxy.expect_no_sessions("after the burst").await;
    // Serving normally again.
    let mut c = proxy.client().await;
    c.login().await;
    assert!(c.cmd("STAT").await.starts_with("+OK 3 "));
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    proxy
        .expect_no_sessions("after the burst and one session")
        .await;
}

// ------------------------------------------------------------ junk

/// Deterministic pseudo-random bytes.
fn junk(n: usize, seed: u32, with_lf: bool) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let b = (s >> 16) as u8;
            if !with_lf && b == b'\n' {
                b'n'
            } else {
                b
            }
        })
        .collect()
}

/// Write `data` while reading; returns what the proxy sent until it closed.
async fn send_while_reading(c: Client, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = tokio::io::AsyncWriteExt::write_all(&mut w, &data).await;
        w
    });
    let mut got = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got),
    )
    .await
    .expect("proxy never closed")
    .ok();
    drop(writer.await);
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn overlong_commands_and_binary_junk() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_command_line = 256).await;
    let mut i = 0;
    // 4 MiB of one line; 1 MiB of binary junk without a line end; a TLS
    // ClientHello (a client speaking TLS to the plain port); valid
    // commands, then an overlong one in the same write.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.extend(junk(500, 3, false));
    let mut mixed = b"NOOP\r\nNOOP\r\n".to_vec();
    mixed.extend(vec![b'X'; 100_000]);
    mixed.extend_from_slice(b"\r\nNOOP\r\n");
    for (login, data, answered) in [
        (false, vec![b'A'; 4 << 20], 0),
        (false, junk(1 << 20, 9, false), 0),
        (false, hello, 0),
        (true, mixed, 2),
    ] {
        let mut c = proxy.client().await;
        if login {
            c.login().await;
        } else {
            assert_eq!(c.line().await, GREETING);
        }
        let got = send_while_reading(c, data).await;
        let t = text(&got);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), answered + 1, "{t:?}");
        assert!(lines[..answered].iter().all(|l| *l == "+OK noop"), "{t:?}");
        assert!(
            lines[answered].starts_with("-ERR") && lines[answered].contains("256"),
            "{t:?}"
        );
        let rec = server.wait_closed(i).await;
        let want: Vec<String> = if login {
            vec![
                format!("USER {USER}"),
                format!("PASS {PASSWORD}"),
                "NOOP".into(),
                "NOOP".into(),
            ]
        } else {
            vec![]
        };
        assert_eq!(rec.lines, want, "nothing of it reached the server");
        assert!(!rec.got_quit());
        i += 1;
    }
    // Junk with line ends (an HTTP request among it): one -ERR per line,
    // nothing forwarded, and the session still works.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let mut data = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    data.extend(
        junk(64 * 1024, 5, true)
            .split(|&b| b == b'\n')
            .flat_map(|l| {
                let mut l = l[..l.len().min(200)].to_vec();
                l.push(b'\n');
                l
            }),
    );
    data.extend_from_slice(format!("\r\nUSER {USER}\r\n").as_bytes());
    assert!(c.send(&data).await);
    loop {
        let line = c.line().await;
        if line == "+OK user accepted" {
            break;
        }
        assert!(line.starts_with("-ERR popcrypt"), "{line:?}");
    }
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(i).await;
    assert_eq!(
        rec.lines,
        vec![
            format!("USER {USER}"),
            format!("PASS {PASSWORD}"),
            "QUIT".into()
        ]
    );
    proxy.expect_no_sessions("junk").await;
}

// ------------------------------------------------------------ floods

/// Which commands have a multi-line answer when it is +OK.
fn multi_line(cmd: &str) -> bool {
    let words: Vec<&str> = cmd.split(' ').collect();
    match words[0] {
        "LIST" | "UIDL" => words.len() == 1,
        "RETR" | "TOP" | "CAPA" => true,
        "AUTH" => words.len() == 1,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_floods_of_every_command() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    const COPIES: usize = 300;
    const BATCH: usize = 50;

    // Before login: every transaction command is refused locally.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    let before = [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL", "LAST",
    ];
    for cmd in before {
        for _ in 0..COPIES / BATCH {
            assert!(c.send(format!("{cmd}\r\n").repeat(BATCH)).await);
            for _ in 0..BATCH {
                assert_eq!(c.line().await, "-ERR popcrypt: log in first", "{cmd}");
            }
        }
    }
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(rec.lines, vec!["QUIT".to_string()]);

    // After login: floods of each command, answered in order.
    let mut c = proxy.client().await;
    c.login().await;
    let after = [
        "STAT",
        "LIST",
        "LIST 1",
        "UIDL",
        "UIDL 2",
        "RETR 1",
        "TOP 2 1",
        "NOOP",
        "DELE 1",
        "RSET",
        "LAST",
        "CAPA",
        "USER x",
        "PASS x",
        "APOP a b",
        "AUTH PLAIN",
        "STLS",
        "BOGUS",
        "",
    ];
    let mut forwarded = std::collections::BTreeMap::<&str, usize>::new();
    for cmd in after {
        let mut answers = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..COPIES / BATCH {
            assert!(c.send(format!("{cmd}\r\n").repeat(BATCH)).await);
            for _ in 0..BATCH {
                let status = c.line().await;
                if status.starts_with("+OK") && multi_line(cmd) {
                    let body = c.multi().await;
                    assert!(body.ends_with(b".\r\n"), "{cmd}");
                }
                let key = status.split(' ').take(2).collect::<Vec<_>>().join(" ");
                *answers.entry(key).or_default() += 1;
            }
        }
        let local = answers.keys().all(|k| k.starts_with("-ERR popcrypt"));
        if cmd == "LAST" {
            // Asked once; the server has no LAST, so popcrypt answers.
            forwarded.insert(cmd, 1);
        } else if !local {
            forwarded.insert(cmd, COPIES);
        }
        // DELE 1 succeeds once, then the message is gone.
        if cmd == "DELE 1" {
            assert_eq!(answers.get("+OK message"), Some(&1), "{answers:?}");
        } else {
            assert_eq!(answers.len(), 1, "{cmd}: {answers:?}");
        }
    }
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(1).await;
    for cmd in after {
        let n = rec.lines.iter().filter(|l| l.as_str() == cmd).count();
        assert_eq!(
            n,
            forwarded.get(cmd).copied().unwrap_or(0),
            "{cmd} upstream"
        );
    }
    for local in [
        "USER x",
        "PASS x",
        "APOP a b",
        "AUTH PLAIN",
        "STLS",
        "BOGUS",
        "",
    ] {
        assert!(
            !forwarded.contains_key(local),
            "{local} must be refused locally"
        );
    }

    // A flood with QUIT in the middle: nothing after QUIT is forwarded.
    let mut c = proxy.client().await;
    c.login().await;
    let mut flood = "NOOP\r\n".repeat(1000);
    flood.push_str("QUIT\r\n");
    flood.push_str(&"DELE 1\r\n".repeat(1000));
    let got = send_while_reading(c, flood.into_bytes()).await;
    let t = text(&got);
    assert_eq!(t, format!("{}+OK bye\r\n", "+OK noop\r\n".repeat(1000)));
    let rec = server.wait_closed(2).await;
    assert!(
        !rec.got_prefix("DELE"),
        "{:?}",
        &rec.lines[rec.lines.len() - 3..]
    );
    assert_eq!(rec.lines.last().map(String::as_str), Some("QUIT"));
    proxy.expect_no_sessions("floods").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_in_the_wrong_state_never_reach_the_server() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |_| {}).await;
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    for cmd in [
        "STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 0", "UIDL", "LAST",
    ] {
        assert_eq!(c.cmd(cmd).await, "-ERR popcrypt: log in first", "{cmd}");
    }
    assert!(c.cmd("STLS").await.starts_with("-ERR popcrypt"));
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK user accepted");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, "+OK logged in");
    // The counter sees this session while it lives.
    assert_eq!(proxy.sessions.get(), 1);
    for cmd in [
        "USER alice".to_string(),
        format!("PASS {PASSWORD}"),
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb".into(),
        "AUTH".into(),
        "AUTH PLAIN".into(),
        format!("AUTH PLAIN {}", plain_payload(USER, PASSWORD)),
        "STLS".into(),
    ] {
        assert!(c.cmd(&cmd).await.starts_with("-ERR popcrypt"), "{cmd}");
    }
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(
        rec.lines,
        vec![
            format!("USER {USER}"),
            format!("PASS {PASSWORD}"),
            "QUIT".into()
        ]
    );
    proxy.expect_no_sessions("wrong state").await;
}

// ------------------------------------------------------------ SASL

#[tokio::test(flavor = "multi_thread")]
async fn auth_abuse() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_command_line = 1024).await;
    let cancelled = "-ERR [AUTH] authentication cancelled";

    // "*" at every step, then more "continuations" nobody asked for: they
    // are commands now, refused locally, never forwarded.
    let mut c = proxy.client().await;
    assert_eq!(c.line().await, GREETING);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("*").await, cancelled);
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(c.cmd("*").await, cancelled);
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}", b64(b"Username:"))
    );
    assert_eq!(
        c.cmd(&b64(USER.as_bytes())).await,
        format!("+ {}", b64(b"Password:"))
    );
    assert_eq!(c.cmd("*").await, cancelled);
    assert_eq!(c.cmd("AUTH PLAIN *").await, cancelled);
    assert!(c.cmd("*").await.starts_with("-ERR popcrypt"));
    let extra = format!("{}\r\n", plain_payload(USER, "guess")).repeat(2000);
    assert!(c.send(&extra).await);
    for _ in 0..2000 {
        assert!(c.line().await.starts_with("-ERR popcrypt"));
    }
    // Still usable.
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd(&plain_payload(USER, PASSWORD)).await, "+OK logged in");
    assert_eq!(c.cmd("QUIT").await, "+OK bye");
    let rec = server.wait_closed(0).await;
    assert_eq!(
        rec.lines,
        vec![
            "AUTH PLAIN".to_string(),
            "*".into(),
            "AUTH LOGIN".into(),
            "*".into(),
            "AUTH LOGIN".into(),
            b64(USER.as_bytes()),
            "*".into(),
            "AUTH PLAIN *".into(),
            "AUTH PLAIN".into(),
            plain_payload(USER, PASSWORD),
            "QUIT".into(),
        ]
    );

    // Huge base64: as the initial response, as a continuation, and one
    // without end. The -ERR comes, the session ends, none of it is sent.
    let huge = b64(&vec![0xA5u8; 200_000]);
    for (i, (first, then)) in [
        (format!("AUTH PLAIN {huge}\r\n"), None),
        ("AUTH PLAIN\r\n".to_string(), Some(format!("{huge}\r\n"))),
        ("AUTH LOGIN\r\n".to_string(), Some(huge.repeat(20))),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = proxy.client().await;
        assert_eq!(c.line().await, GREETING);
        let data = match then {
            None => first.clone().into_bytes(),
            Some(t) => {
                let challenge = c.cmd(first.trim_end()).await;
                assert!(challenge.starts_with("+ "), "{challenge}");
                t.into_bytes()
            }
        };
        let got = send_while_reading(c, data).await;
        let t = text(&got);
        assert!(
            t.starts_with("-ERR") && t.contains("1024") && t.lines().count() == 1,
            "{t:?}"
        );
        let rec = server.wait_closed(1 + i).await;
        assert!(
            rec.bytes_received < 100,
            "{} octets reached the server",
            rec.bytes_received
        );
        assert!(!rec.got_quit());
    }
    proxy.expect_no_sessions("AUTH abuse").await;
}

/// Regression: the proxy closed the client socket with the client's input
/// still unread, so the kernel sent a reset and threw away what was still
/// queued for the client: the end of the last answer and the `-ERR` saying
/// why. Fixed in src/proxy/session.rs `close_client` (FIN first, then read
/// and discard the client's input for a moment before closing).
#[tokio::test(flavor = "multi_thread")]
async fn the_last_answer_and_the_error_survive_a_client_still_sending() {
    let ca = TestCa::new("popcrypt test CA");
    let server = standard_server(&ca).await;
    let proxy = start_proxy(server.addr, &ca.pem(), |f| f.limits.max_command_line = 256).await;
    let big = sample_mailbox()[2].clone();
    let mut want = format!("+OK {} octets\r\n", big.len()).into_bytes();
    want.extend_from_slice(&stuff(&expected_delivery(&big)));
    want.extend_from_slice(b".\r\n");
    for _ in 0..3 {
        let mut c = proxy.client().await;
        c.login().await;
        let (mut r, mut w) = c.stream.into_split();
        // A large answer, then an overlong line the client keeps sending.
        let writer = tokio::spawn(async move {
            let mut data = b"RETR 3\r\nRETR 3\r\nRETR 3\r\n".to_vec();
            data.extend(vec![b'A'; 8 << 20]);
            let _ = tokio::io::AsyncWriteExt::write_all(&mut w, &data).await;
            w
        });
        // The client is slow to read: the answers queue up in the proxy.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got),
        )
        .await
        .expect("proxy never closed");
        drop(writer.await);
        let t = text(&got);
        let ans = text(&want);
        assert!(
            t.starts_with(&ans.repeat(3))
                && t[3 * ans.len()..].starts_with("-ERR popcrypt: command line longer than 256"),
            "got {} octets, ending {:?}",
            got.len(),
            &t[t.len().saturating_sub(80)..]
        );
    }
    proxy.expect_no_sessions("client still sending").await;
}
