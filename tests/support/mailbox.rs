//! The standard fake POP3 mailbox: [`Pop3State`] answers USER/PASS/APOP,
//! SASL PLAIN and LOGIN, STAT/LIST/UIDL/RETR/TOP/DELE; [`serve_pop3`] runs
//! it over a [`ServerConn`], and [`standard_server`] is the usual
//! implicit-TLS server with the sample mailbox.
#![allow(dead_code)]

use super::fake_server::{FakeServer, ServerConn, Transport};
use super::tls::TestCa;

/// The two status headers popcrypt puts first in every RETR/TOP answer when
/// it did not decrypt or verify anything.
pub const STATUS_HEADERS: &str = "X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\n";

/// Octets popcrypt adds to every message size in STAT and LIST.
pub fn overhead() -> usize {
    STATUS_HEADERS.len()
}

/// The greeting of the standard fake server (with an APOP timestamp).
pub const GREETING: &str = "+OK fake POP3 server ready <123.456@fake>";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "open sesame 42";
/// The RFC 1939 APOP example.
pub const APOP_NAME: &str = "mrose";
pub const APOP_DIGEST: &str = "c4c9334bac560ecc979e58001b3e22fb";

/// Three messages (unstuffed, CRLF): dot lines, a forged status header, and
/// a large one that crosses many read-buffer boundaries.
pub fn sample_mailbox() -> Vec<Vec<u8>> {
    let m1 = b"From: sender@example.org\r\nTo: alice@example.org\r\nSubject: dots\r\nMessage-ID: <m1@example.org>\r\n\r\nfirst line\r\n.starts with a dot\r\n..two dots\r\n.\r\nafter the lone dot\r\n".to_vec();
    let m2 = b"From: mallory@example.org\r\nX-Popcrypt-Signature: openpgp; good; signer=FORGED\r\n continued forged line\r\nSubject: forged\r\n\r\nbody\r\n".to_vec();
    let mut m3 = b"From: big@example.org\r\nSubject: big\r\n\r\n".to_vec();
    let mut seed: u32 = 12345;
    for i in 0..12_000u32 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = (seed >> 16) as usize % 120;
        if i % 17 == 0 {
            m3.push(b'.');
        }
        if i % 101 == 0 {
            m3.extend_from_slice(b"\r\n.\r\n");
        }
        m3.extend(
            (0..len).map(|k| b"abcdefghijklmnopqrstuvwxyz0123456789 "[(k + i as usize) % 37]),
        );
        m3.extend_from_slice(b"\r\n");
    }
    vec![m1, m2, m3]
}

/// Dot-stuff a message (CRLF lines) without adding the terminator.
pub fn stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

/// The header block plus the first `n` body lines.
pub fn top(msg: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = None;
    for line in msg.split_inclusive(|&b| b == b'\n') {
        match body {
            None => {
                out.extend_from_slice(line);
                if line == b"\r\n" {
                    body = Some(0);
                }
            }
            Some(k) if k < n => {
                out.extend_from_slice(line);
                body = Some(k + 1);
            }
            Some(_) => break,
        }
    }
    out
}

/// Remove `X-Popcrypt-*` fields (with continuation lines) from the header
/// block, as popcrypt must, and put its own status headers first.
pub fn expected_delivery(msg: &[u8]) -> Vec<u8> {
    let mut out = STATUS_HEADERS.as_bytes().to_vec();
    let mut in_headers = true;
    let mut dropping = false;
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if in_headers {
            if line == b"\r\n" {
                in_headers = false;
            } else {
                if line[0] != b' ' && line[0] != b'\t' {
                    dropping = line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"x-popcrypt-");
                }
                if dropping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// Standard base64 (for SASL payloads).
pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The AUTH PLAIN payload for `user`/`pass`.
pub fn plain_payload(user: &str, pass: &str) -> String {
    b64(format!("\0{user}\0{pass}").as_bytes())
}

/// One session's state in the standard fake server.
pub struct Pop3State {
    pub messages: Vec<Vec<u8>>,
    pub deleted: Vec<bool>,
    pub user: String,
    pub password: String,
    pub given_user: Option<String>,
    pub authed: bool,
}

impl Default for Pop3State {
    fn default() -> Self {
        Pop3State::new(sample_mailbox())
    }
}

impl Pop3State {
    pub fn new(messages: Vec<Vec<u8>>) -> Pop3State {
        Pop3State {
            deleted: vec![false; messages.len()],
            messages,
            user: USER.into(),
            password: PASSWORD.into(),
            given_user: None,
            authed: false,
        }
    }

    pub fn with_login(mut self, user: &str, password: &str) -> Pop3State {
        self.user = user.into();
        self.password = password.into();
        self
    }

    fn msg(&self, arg: Option<&str>) -> Option<usize> {
        let n: usize = arg?.parse().ok()?;
        let i = n.checked_sub(1)?;
        (i < self.messages.len() && !self.deleted[i]).then_some(i)
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Vec<u8>)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    /// The standard answer to one command line (SASL excluded).
    pub fn answer(&mut self, line: &str) -> Vec<u8> {
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let arg1 = words.next();
        let arg2 = words.next();
        let ok = |t: &str| format!("+OK {t}\r\n").into_bytes();
        let err = |t: &str| format!("-ERR {t}\r\n").into_bytes();
        match (verb.as_str(), self.authed) {
            ("CAPA", _) => b"+OK capabilities\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\nSASL PLAIN LOGIN SCRAM-SHA-256-PLUS\r\nRESP-CODES\r\nPIPELINING\r\nIMPLEMENTATION fake\r\n.\r\n".to_vec(),
            ("QUIT", _) => ok("bye"),
            ("USER", false) => {
                self.given_user = arg1.map(str::to_string);
                ok("user accepted")
            }
            ("PASS", false) => {
                let pass = line.get(5..).unwrap_or("");
                if self.given_user.as_deref() == Some(self.user.as_str()) && pass == self.password {
                    self.authed = true;
                    ok("logged in")
                } else {
                    err("[AUTH] invalid user name or password")
                }
            }
            ("APOP", false) => {
                if arg1 == Some(APOP_NAME) && arg2 == Some(APOP_DIGEST) {
                    self.authed = true;
                    ok("maildrop locked and ready")
                } else {
                    err("[AUTH] bad digest")
                }
            }
            ("STAT", true) => {
                let (n, size) = self.live().fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.len()));
                ok(&format!("{n} {size}"))
            }
            ("LIST", true) if arg1.is_none() => {
                let mut out = ok("scan listing follows");
                for (i, m) in self.live() {
                    out.extend_from_slice(format!("{} {}\r\n", i + 1, m.len()).as_bytes());
                }
                out.extend_from_slice(b".\r\n");
                out
            }
            ("LIST", true) => match self.msg(arg1) {
                Some(i) => ok(&format!("{} {}", i + 1, self.messages[i].len())),
                None => err("no such message"),
            },
            ("UIDL", true) if arg1.is_none() => {
                let mut out = ok("unique-id listing follows");
                for (i, _) in self.live() {
                    out.extend_from_slice(format!("{} uid-{}\r\n", i + 1, i + 1).as_bytes());
                }
                out.extend_from_slice(b".\r\n");
                out
            }
            ("UIDL", true) => match self.msg(arg1) {
                Some(i) => ok(&format!("{} uid-{}", i + 1, i + 1)),
                None => err("no such message"),
            },
            ("RETR", true) => match self.msg(arg1) {
                Some(i) => {
                    let mut out = ok(&format!("{} octets", self.messages[i].len()));
                    out.extend_from_slice(&stuff(&self.messages[i]));
                    out.extend_from_slice(b".\r\n");
                    out
                }
                None => err("no such message"),
            },
            ("TOP", true) => match (self.msg(arg1), arg2.and_then(|a| a.parse::<usize>().ok())) {
                (Some(i), Some(n)) => {
                    let mut out = ok("top of message follows");
                    out.extend_from_slice(&stuff(&top(&self.messages[i], n)));
                    out.extend_from_slice(b".\r\n");
                    out
                }
                _ => err("no such message"),
            },
            ("DELE", true) => match self.msg(arg1) {
                Some(i) => {
                    self.deleted[i] = true;
                    ok(&format!("message {} deleted", i + 1))
                }
                None => err("no such message"),
            },
            ("RSET", true) => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                ok(&format!("maildrop has {} messages", self.messages.len()))
            }
            ("NOOP", true) => ok("noop"),
            ("LAST", true) => err("unknown command"),
            _ => err("command not valid here"),
        }
    }
}

/// Serve the standard mailbox (greeting first unless `greet` is false),
/// SASL PLAIN and LOGIN included, until QUIT or the peer closes.
pub async fn serve_pop3(mut c: ServerConn, mut st: Pop3State, greet: bool) {
    if greet && !c.send(format!("{GREETING}\r\n")).await {
        return;
    }
    while let Some(line) = c.read_line().await {
        if line.len() >= 4 && line[..4].eq_ignore_ascii_case("AUTH") && !st.authed {
            if !sasl(&mut c, &mut st, &line).await {
                return;
            }
            continue;
        }
        let out = st.answer(&line);
        if !c.send(&out).await {
            return;
        }
        if line.eq_ignore_ascii_case("QUIT") {
            c.shutdown().await;
            return;
        }
    }
}

/// One SASL exchange; false if the peer went away.
pub async fn sasl(c: &mut ServerConn, st: &mut Pop3State, line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    let mech = words.get(1).map(|m| m.to_ascii_uppercase());
    let cancelled = b"-ERR [AUTH] authentication cancelled\r\n";
    let failed = b"-ERR [AUTH] authentication failed\r\n";
    let success = b"+OK logged in\r\n";
    match mech.as_deref() {
        None => c.send(b"+OK mechanisms\r\nPLAIN\r\nLOGIN\r\n.\r\n").await,
        Some("PLAIN") => {
            let payload = match words.get(2) {
                Some(p) => p.to_string(),
                None => {
                    if !c.send(b"+ \r\n").await {
                        return false;
                    }
                    match c.read_line().await {
                        Some(p) => p,
                        None => return false,
                    }
                }
            };
            if payload == "*" {
                c.send(cancelled).await
            } else if payload == plain_payload(&st.user, &st.password) {
                st.authed = true;
                c.send(success).await
            } else {
                c.send(failed).await
            }
        }
        Some("LOGIN") => {
            if !c.send(format!("+ {}\r\n", b64(b"Username:"))).await {
                return false;
            }
            let Some(u) = c.read_line().await else {
                return false;
            };
            if u == "*" {
                return c.send(cancelled).await;
            }
            if !c.send(format!("+ {}\r\n", b64(b"Password:"))).await {
                return false;
            }
            let Some(p) = c.read_line().await else {
                return false;
            };
            if p == "*" {
                return c.send(cancelled).await;
            }
            if u == b64(st.user.as_bytes()) && p == b64(st.password.as_bytes()) {
                st.authed = true;
                c.send(success).await
            } else {
                c.send(failed).await
            }
        }
        Some(_) => c.send(b"-ERR [AUTH] unsupported mechanism\r\n").await,
    }
}

/// A standard server over implicit TLS with the sample mailbox.
pub async fn standard_server(ca: &TestCa) -> FakeServer {
    FakeServer::start(
        Transport::Implicit(ca.server_config(&["localhost", "127.0.0.1"])),
        |c| serve_pop3(c, Pop3State::default(), true),
    )
    .await
}
