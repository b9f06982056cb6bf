//! The engine fed scripted sessions in chunks of every size.

use super::*;

/// Streams everything except messages with an `X-Transform: yes` header;
/// the "transform" upper-cases the message.
struct TestHook;

impl MessageHook for TestHook {
    fn classify(&self, block: &[u8]) -> Disposition {
        if block.windows(14).any(|w| w == b"X-Transform: y") {
            Disposition::Transform
        } else if block.windows(10).any(|w| w == b"X-Sniff: y") {
            Disposition::Sniff
        } else {
            Disposition::Stream
        }
    }
    fn sniff(&self, _block: &[u8], body: &[u8]) -> Option<bool> {
        let body = body.trim_ascii_start();
        match body.first() {
            Some(b'A') => Some(true),
            Some(_) => Some(false),
            None => None,
        }
    }
    fn stream_headers(&self, block: &[u8], note: Option<&str>) -> Vec<u8> {
        let mut v = format!("X-S: {}\r\n", note.unwrap_or("n")).into_bytes();
        // Like forged status headers, "X-Drop" fields are removed.
        for l in block.split_inclusive(|&b| b == b'\n') {
            if !l.starts_with(b"X-Drop") {
                v.extend_from_slice(l);
            }
        }
        v
    }
    fn size_overhead(&self) -> u64 {
        8
    }
}

struct Run {
    to_client: Vec<u8>,
    to_upstream: Vec<u8>,
    closed: Option<CloseReason>,
}

fn drive(engine: &mut Engine, run: &mut Run) {
    run.to_client.extend(engine.take_client_output());
    run.to_upstream
        .extend_from_slice(&engine.take_upstream_output());
    while let Some(ev) = engine.next_event() {
        match ev {
            Event::Transform(raw) => {
                engine.transform_done(raw.to_ascii_uppercase());
                run.to_client.extend(engine.take_client_output());
                run.to_upstream
                    .extend_from_slice(&engine.take_upstream_output());
            }
            Event::Close(r) => run.closed = Some(r),
        }
    }
}

/// Feed a client script and the server's answers in chunks of `chunk`
/// octets, interleaving the two sides, and collect what each side gets.
fn script(client: &[u8], server: &[u8], chunk: usize, limits: EngineLimits) -> Run {
    let mut e = Engine::new(limits, Arc::new(TestHook));
    e.greeting(b"+OK POP3 ready <1.2@host>");
    let mut run = Run {
        to_client: Vec::new(),
        to_upstream: Vec::new(),
        closed: None,
    };
    let mut c = client.chunks(chunk).peekable();
    let mut s = server.chunks(chunk).peekable();
    // The server speaks only when asked, as a real one does; the client
    // may run ahead (pipelining).
    loop {
        if e.awaiting_upstream() && s.peek().is_some() {
            e.upstream_data(s.next().unwrap_or_default());
        } else if let Some(a) = c.next() {
            e.client_data(a);
        } else if let Some(b) = s.next() {
            e.upstream_data(b);
        } else {
            break;
        }
        drive(&mut e, &mut run);
    }
    run
}

fn every_chunking(client: &[u8], server: &[u8], want_client: &[u8], want_upstream: &[u8]) {
    for chunk in 1..=client.len().max(server.len()) + 1 {
        let run = script(client, server, chunk, EngineLimits::default());
        assert_eq!(
            String::from_utf8_lossy(&run.to_client),
            String::from_utf8_lossy(want_client),
            "client side, chunk {chunk}"
        );
        assert_eq!(
            String::from_utf8_lossy(&run.to_upstream),
            String::from_utf8_lossy(want_upstream),
            "upstream side, chunk {chunk}"
        );
    }
}

#[test]
fn login_stat_list_retr_dele_quit_pipelined() {
    let client = b"USER bob\r\nPASS pw with space\r\nSTAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n";
    let server = b"+OK\r\n+OK Logged in.\r\n+OK 2 40\r\n+OK 1 messages\r\n1 40\r\n.\r\n+OK 1 40\r\n+OK\r\n1 abc\r\n.\r\n+OK 40 octets\r\nSubject: a\r\n\r\n..leading dot\r\n..\r\nbare\r\n.\r\n+OK Marked to be deleted.\r\n+OK\r\n+OK\r\n+OK Logging out.\r\n";
    let want_client = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK Logged in.\r\n+OK 2 56\r\n+OK 1 messages\r\n1 48\r\n.\r\n+OK 1 48\r\n+OK\r\n1 abc\r\n.\r\n+OK 40 octets\r\nX-S: n\r\nSubject: a\r\n\r\n..leading dot\r\n..\r\nbare\r\n.\r\n+OK Marked to be deleted.\r\n+OK\r\n+OK\r\n+OK Logging out.\r\n";
    let want_upstream = b"USER bob\r\nPASS pw with space\r\nSTAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n";
    every_chunking(client, server, want_client, want_upstream);
    let run = script(client, server, 7, EngineLimits::default());
    assert_eq!(run.closed, Some(CloseReason::Quit));
}

#[test]
fn bare_lf_and_lone_cr_from_server_do_not_desynchronise() {
    let client = b"USER a\r\nPASS b\r\nRETR 1\r\nNOOP\r\n";
    let server = b"+OK\n+OK\r\n+OK\nA: b\n\nx\ry\n.\n+OK\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\nx\ry\r\n.\r\n+OK\r\n";
    every_chunking(
        client,
        server,
        want,
        b"USER a\r\nPASS b\r\nRETR 1\r\nNOOP\r\n",
    );
}

#[test]
fn transform_path_and_top_turned_into_retr() {
    let client = b"USER a\r\nPASS b\r\nRETR 2\r\nTOP 2 1\r\nTOP 3 0\r\n";
    let server = b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n..l2\r\n.\r\n\
+OK\r\nX-Transform: yes\r\n\r\nl1\r\n.\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n..l2\r\n.\r\n\
+OK\r\nX-Other: 1\r\n\r\n.\r\n";
    let want_client = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n..L2\r\n.\r\n\
+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n.\r\n+OK\r\nX-S: n\r\nX-Other: 1\r\n\r\n.\r\n";
    let want_upstream = b"USER a\r\nPASS b\r\nRETR 2\r\nTOP 2 1\r\nRETR 2\r\nTOP 3 0\r\n";
    every_chunking(client, server, want_client, want_upstream);
}

#[test]
fn sizes_agree_with_what_retr_delivered() {
    let client = b"USER a\r\nPASS b\r\nRETR 2\r\nLIST 2\r\nSTAT\r\nDELE 2\r\nSTAT\r\nLIST 1\r\n";
    let server = b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n.\r\n+OK 2 24\r\n+OK 3 100\r\n+OK\r\n+OK 2 76\r\n+OK 1 30\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n.\r\n+OK 2 24\r\n+OK 3 116\r\n+OK\r\n+OK 2 92\r\n+OK 1 38\r\n";
    every_chunking(
        client,
        server,
        want,
        b"USER a\r\nPASS b\r\nRETR 2\r\nLIST 2\r\nSTAT\r\nDELE 2\r\nSTAT\r\nLIST 1\r\n",
    );
}

#[test]
fn sizes_follow_streamed_messages_with_forged_headers_removed() {
    // The hook adds 8 octets ("X-S: n") and removes "X-Drop: 1" (11).
    let client = b"USER a\r\nPASS b\r\nLIST 1\r\nRETR 1\r\nLIST 1\r\nLIST\r\n";
    let server = b"+OK\r\n+OK\r\n+OK 1 23\r\n+OK\r\nA: b\r\nX-Drop: 1\r\n\r\nxy\r\n.\r\n+OK 1 23\r\n+OK\r\n1 23\r\n.\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK 1 31\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\nxy\r\n.\r\n+OK 1 20\r\n+OK\r\n1 20\r\n.\r\n";
    every_chunking(
        client,
        server,
        want,
        b"USER a\r\nPASS b\r\nLIST 1\r\nRETR 1\r\nLIST 1\r\nLIST\r\n",
    );
}

#[test]
fn sniffed_messages_stream_or_transform() {
    let client = b"USER a\r\nPASS b\r\nRETR 1\r\nRETR 2\r\nLIST 1\r\n";
    let server = b"+OK\r\n+OK\r\n+OK\r\nX-Sniff: y\r\n\r\n\r\nplain\r\n..dot\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nx\r\n.\r\n+OK 1 30\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n\r\nplain\r\n..dot\r\n.\r\n\
+OK\r\nX-SNIFF: Y\r\n\r\nARMOR\r\nX\r\n.\r\n+OK 1 38\r\n";
    every_chunking(
        client,
        server,
        want,
        b"USER a\r\nPASS b\r\nRETR 1\r\nRETR 2\r\nLIST 1\r\n",
    );
}

/// TestHook, but TOP peeks at 3 body lines.
struct PeekHook;

impl MessageHook for PeekHook {
    fn classify(&self, block: &[u8]) -> Disposition {
        TestHook.classify(block)
    }
    fn stream_headers(&self, block: &[u8], note: Option<&str>) -> Vec<u8> {
        TestHook.stream_headers(block, note)
    }
    fn size_overhead(&self) -> u64 {
        TestHook.size_overhead()
    }
    fn sniff(&self, block: &[u8], body: &[u8]) -> Option<bool> {
        TestHook.sniff(block, body)
    }
    fn top_peek_lines(&self) -> u32 {
        3
    }
}

#[test]
fn top_peeks_at_the_body_and_cuts_to_what_the_client_asked() {
    // TOP 1 0 of plain text: TOP 1 3 upstream, streamed, cut to 0 lines.
    // TOP 2 1 of an "armored" text: drained, RETR, transformed, cut.
    // TOP 3 1 of a multipart-like streamed message: cut to 1 line.
    let client = b"USER a\r\nPASS b\r\nTOP 1 0\r\nTOP 2 1\r\nTOP 3 1\r\nTOP 4 5\r\n";
    let server = b"+OK\r\n+OK\r\n\
+OK\r\nX-Sniff: y\r\n\r\nplain\r\nmore\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nb\r\nc\r\n.\r\n+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nb\r\nc\r\nd\r\n.\r\n\
+OK\r\nA: b\r\n\r\n1\r\n2\r\n3\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\n\r\n.\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n.\r\n\
+OK\r\nX-SNIFF: Y\r\n\r\nARMOR\r\n.\r\n\
+OK\r\nX-S: n\r\nA: b\r\n\r\n1\r\n.\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n\r\n.\r\n";
    let want_up = b"USER a\r\nPASS b\r\nTOP 1 3\r\nTOP 2 3\r\nRETR 2\r\nTOP 3 3\r\nTOP 4 5\r\n";
    for chunk in 1..=server.len() {
        let mut e = Engine::new(EngineLimits::default(), Arc::new(PeekHook));
        e.greeting(b"+OK POP3 ready <1.2@host>");
        let mut run = Run {
            to_client: Vec::new(),
            to_upstream: Vec::new(),
            closed: None,
        };
        e.client_data(client);
        drive(&mut e, &mut run);
        for c in server.chunks(chunk) {
            e.upstream_data(c);
            drive(&mut e, &mut run);
        }
        assert_eq!(
            String::from_utf8_lossy(&run.to_client),
            String::from_utf8_lossy(want),
            "chunk {chunk}"
        );
        assert_eq!(
            String::from_utf8_lossy(&run.to_upstream),
            String::from_utf8_lossy(want_up)
        );
    }
}

#[test]
fn capa_is_filtered() {
    let client = b"CAPA\r\n";
    let server = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN SCRAM-SHA-256-PLUS\r\nIMPLEMENTATION Dovecot\r\nUTF8 USER\r\n.\r\n";
    let want = format!(
        "+OK POP3 ready <1.2@host>\r\n+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\nPIPELINING\r\nIMPLEMENTATION popcrypt-{}\r\n.\r\n",
        env!("CARGO_PKG_VERSION")
    );
    every_chunking(client, server, want.as_bytes(), b"CAPA\r\n");
}

#[test]
fn sasl_exchange_with_continuations_and_cancel() {
    let client = b"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\nAUTH PLAIN\r\nAGFsaWNlAHB3\r\nSTAT\r\n";
    let server = b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR [AUTH] cancelled\r\n+ \r\n+OK Logged in.\r\n+OK 0 0\r\n";
    let want_client = b"+OK POP3 ready <1.2@host>\r\n+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR [AUTH] cancelled\r\n+ \r\n+OK Logged in.\r\n+OK 0 0\r\n";
    let want_upstream = b"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\nAUTH PLAIN\r\nAGFsaWNlAHB3\r\nSTAT\r\n";
    every_chunking(client, server, want_client, want_upstream);
}

#[test]
fn secrets_in_flight_are_redacted_and_relayed_exactly() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\n");
    e.upstream_data(b"+OK\r\n");
    e.client_data(b"PASS hunter2 x\r\n");
    let shown = format!("{:?}", e.pending);
    assert_eq!(shown, "Some(Single(Pass(Secret([REDACTED]))))");
    let up = e.take_upstream_output();
    assert_eq!(&up[..], b"USER a\r\nPASS hunter2 x\r\n");
    assert!(!format!("{up:?} {:?}", e.client_in).contains("hunter2"));
    e.upstream_data(b"-ERR [AUTH] no\r\n");
    e.client_data(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    assert!(!format!("{:?}", e.pending).contains("c4c9334b"));
    assert_eq!(
        &e.take_upstream_output()[..],
        b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
    );
}

#[test]
fn last_is_answered_locally_when_upstream_lacks_it() {
    let client = b"USER a\r\nPASS b\r\nRETR 2\r\nLAST\r\nLAST\r\nRSET\r\nLAST\r\n";
    let server = b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\n.\r\n-ERR Unknown command: LAST\r\n+OK\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\n.\r\n+OK 2\r\n+OK 2\r\n+OK\r\n+OK 0\r\n";
    every_chunking(
        client,
        server,
        want,
        b"USER a\r\nPASS b\r\nRETR 2\r\nLAST\r\nRSET\r\n",
    );
    // Relayed when the server supports it.
    let run = script(
        b"USER a\r\nPASS b\r\nLAST\r\n",
        b"+OK\r\n+OK\r\n+OK 7\r\n",
        3,
        EngineLimits::default(),
    );
    assert!(run.to_client.ends_with(b"+OK 7\r\n"));
}

#[test]
fn state_gate_and_local_errors() {
    let client = b"RETR 1\r\nSTLS\r\nXTND\r\nRETR x\r\nUSER a\r\nPASS b\r\nUSER c\r\nQUIT\r\n";
    let server = b"+OK\r\n+OK\r\n+OK bye\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n-ERR popcrypt: log in first\r\n-ERR popcrypt: STLS is not offered on this listener\r\n-ERR popcrypt: unknown command\r\n-ERR popcrypt: not a number\r\n+OK\r\n+OK\r\n-ERR popcrypt: not allowed after login\r\n+OK bye\r\n";
    every_chunking(client, server, want, b"USER a\r\nPASS b\r\nQUIT\r\n");
}

#[test]
fn responses_pass_unchanged_including_resp_codes() {
    let client = b"USER a\r\nPASS b\r\nPASS c\r\n";
    let server = b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR [IN-USE] locked\r\n";
    let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR [IN-USE] locked\r\n";
    every_chunking(client, server, want, b"USER a\r\nPASS b\r\nPASS c\r\n");
}

#[test]
fn upstream_drop_mid_message_never_sends_terminator() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\nPASS b\r\nRETR 1\r\n");
    e.upstream_data(b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\npartial body\r\n");
    e.upstream_eof();
    let out = e.take_client_output();
    assert!(out.ends_with(b"partial body\r\n"));
    assert!(!out.ends_with(b".\r\n"));
    assert!(matches!(
        e.next_event(),
        Some(Event::Close(CloseReason::Upstream(_)))
    ));
    // Before any byte of the answer: a clear -ERR.
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\n");
    e.upstream_eof();
    let out = e.take_client_output();
    assert!(
        out.starts_with(b"-ERR [SYS/TEMP]"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn garbage_and_oversize_lines_close_cleanly() {
    let limits = EngineLimits {
        max_response_line: 16,
        max_command_line: 16,
        ..Default::default()
    };
    let run = script(
        b"USER a\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
        3,
        limits.clone(),
    );
    assert!(run
        .to_client
        .ends_with(b"-ERR [SYS/TEMP] popcrypt: the mail server sent an over-long line\r\n"));
    let run = script(b"USER a\r\n", b"garbage\r\n", 3, limits.clone());
    assert!(run
        .to_client
        .ends_with(b"-ERR [SYS/TEMP] popcrypt: the mail server sent an invalid response\r\n"));
    assert!(matches!(run.closed, Some(CloseReason::Upstream(_))));
    let run = script(
        b"USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        b"",
        3,
        limits.clone(),
    );
    assert!(run
        .to_client
        .ends_with(b"-ERR popcrypt: command line longer than 16 octets\r\n"));
    assert!(run.to_upstream.is_empty());
    assert!(matches!(run.closed, Some(CloseReason::Client(_))));
    let run = script(
        b"USER a\r\nPASS b\r\nRETR 1\r\n",
        b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\n0123456789012345678\r\n.\r\n",
        5,
        limits,
    );
    assert!(!run.to_client.ends_with(b".\r\n"));
    assert!(matches!(run.closed, Some(CloseReason::Upstream(_))));
}

#[test]
fn oversize_transform_falls_back_to_streaming_without_loss() {
    let limits = EngineLimits {
        max_message_size: 40,
        ..Default::default()
    };
    let body: Vec<u8> = (0..10)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    let server = [
        b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\n".as_slice(),
        &body,
        b".\r\n",
    ]
    .concat();
    for chunk in [1, 3, 64] {
        let run = script(
            b"USER a\r\nPASS b\r\nRETR 1\r\n",
            &server,
            chunk,
            limits.clone(),
        );
        let want = [
            b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: message larger than the 40 octet limit, not processed\r\nX-Transform: yes\r\n\r\n".as_slice(),
            &body,
            b".\r\n",
        ]
        .concat();
        assert_eq!(
            String::from_utf8_lossy(&run.to_client),
            String::from_utf8_lossy(&want)
        );
    }
}

#[test]
fn forged_status_headers_after_header_limit_are_dropped() {
    let limits = EngineLimits {
        max_header_block: 20,
        ..Default::default()
    };
    let server = b"+OK\r\n+OK\r\n+OK\r\nA: 0123456789\r\nB: 0123456789\r\nX-Popcrypt-Signature: good\r\n folded\r\nC: d\r\n\r\nX-Popcrypt-Body: stays\r\n.\r\n";
    let run = script(b"USER a\r\nPASS b\r\nRETR 1\r\n", server, 4, limits);
    let out = String::from_utf8_lossy(&run.to_client);
    assert!(out.ends_with("+OK\r\nX-S: header block too large to classify\r\nA: 0123456789\r\nB: 0123456789\r\nC: d\r\n\r\nX-Popcrypt-Body: stays\r\n.\r\n"), "{out}");
}

#[test]
fn forged_status_continuations_cut_by_the_header_limit_are_dropped() {
    let limits = EngineLimits {
        max_header_block: 40,
        ..Default::default()
    };
    let server = b"+OK\r\n+OK\r\n+OK\r\nA: 1\r\nX-Popcrypt-Signature: x\r\n 0123456789\r\n ; good\r\nC: d\r\n\r\nbody\r\n.\r\n";
    let run = script(b"USER a\r\nPASS b\r\nRETR 1\r\n", server, 3, limits);
    let out = String::from_utf8_lossy(&run.to_client);
    assert!(!out.contains("good"), "{out}");
    assert!(out.contains("C: d\r\n\r\nbody\r\n.\r\n"), "{out}");
}

#[test]
fn absurd_sizes_from_the_server_do_not_overflow() {
    let client = b"USER a\r\nPASS b\r\nRETR 1\r\nSTAT\r\nLIST 1\r\n";
    let server = b"+OK\r\n+OK\r\n+OK\r\nX-Drop: 1\r\n\r\n.\r\n+OK 9223372036854775807 18446744073709551615\r\n+OK 1 18446744073709551615\r\n";
    let run = script(client, server, 5, EngineLimits::default());
    let out = String::from_utf8_lossy(&run.to_client);
    assert!(
        out.contains("+OK 9223372036854775807 9223372036854775807\r\n"),
        "{out}"
    );
}

#[test]
fn top_lines_cuts_body() {
    assert_eq!(
        top_lines(b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2),
        b"A: b\r\n\r\n1\r\n2\r\n"
    );
    assert_eq!(top_lines(b"A: b\r\n\r\n1\r\n", 0), b"A: b\r\n\r\n");
    assert_eq!(top_lines(b"A: b\r\n\r\n1\r\n", 9), b"A: b\r\n\r\n1\r\n");
    assert_eq!(top_lines(b"A: b\r\n", 0), b"A: b\r\n");
}

/// The close reason the engine reports, and what the client was told.
fn ended(e: &mut Engine) -> (Vec<u8>, Vec<CloseReason>) {
    let out = e.take_client_output();
    let mut reasons = Vec::new();
    while let Some(ev) = e.next_event() {
        if let Event::Close(r) = ev {
            reasons.push(r);
        }
    }
    (out, reasons)
}

#[test]
fn shutdown_is_not_the_clients_doing() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\n");
    e.upstream_data(b"+OK\r\n");
    let _ = e.take_client_output();
    e.shutdown();
    e.shutdown();
    e.abort("idle timeout, closing");
    let (out, reasons) = ended(&mut e);
    assert_eq!(out, b"-ERR [SYS/TEMP] popcrypt: proxy shutting down\r\n");
    assert_eq!(reasons, vec![CloseReason::Shutdown]);
    assert!(e.is_closed());
}

#[test]
fn every_ending_names_its_side() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.abort("idle timeout, closing");
    let (out, reasons) = ended(&mut e);
    assert_eq!(out, b"-ERR [SYS/TEMP] popcrypt: idle timeout, closing\r\n");
    assert_eq!(
        reasons,
        vec![CloseReason::Client("idle timeout, closing".into())]
    );

    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.upstream_unasked();
    let (out, reasons) = ended(&mut e);
    assert_eq!(
        out,
        b"-ERR [SYS/TEMP] popcrypt: the mail server sent data nobody asked for, closing\r\n"
    );
    assert!(
        matches!(reasons[..], [CloseReason::Upstream(_)]),
        "{reasons:?}"
    );

    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.internal_error("test failure");
    let (out, reasons) = ended(&mut e);
    assert_eq!(
        out,
        b"-ERR [SYS/TEMP] popcrypt: internal error, closing\r\n"
    );
    assert_eq!(reasons, vec![CloseReason::Internal("test failure".into())]);
}

#[test]
fn a_transform_result_nobody_waits_for_is_an_internal_error() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\n");
    e.upstream_data(b"+OK\r\n");
    let _ = e.take_client_output();
    e.transform_done(b"A: b\r\n\r\nforged\r\n".to_vec());
    let (out, reasons) = ended(&mut e);
    assert!(!String::from_utf8_lossy(&out).contains("forged"));
    assert!(
        matches!(reasons[..], [CloseReason::Internal(_)]),
        "{reasons:?}"
    );
    // After the close, a late result changes nothing.
    e.transform_done(b"late".to_vec());
    assert_eq!(ended(&mut e), (Vec::new(), Vec::new()));
}

#[test]
fn shutdown_mid_answer_sends_no_error_into_the_message() {
    let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
    e.client_data(b"USER a\r\nPASS b\r\nRETR 1\r\n");
    e.upstream_data(b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\npartial\r\n");
    e.shutdown();
    let (out, reasons) = ended(&mut e);
    assert!(
        out.ends_with(b"partial\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(reasons, vec![CloseReason::Shutdown]);
}
