//! End-to-end tests: a real Dovecot, the real `popcrypt` binary in front of
//! it (`popcrypt serve`, verified TLS upstream), and real POP3 clients
//! (Python poplib, curl, fetchmail) speaking plain POP3 to popcrypt.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::clients::{
    curl_list, curl_output, curl_retr, fetchmail_fetch, poplib_retr_all, python3,
    strip_fetchmail_received, to_crlf, Tls, POPLIB_PRELUDE,
};
use support::dovecot::{Dovecot, LOG_TIMEOUT};
use support::proxy::{ProxyProcess, PLAIN_STATUS_HEADERS as HDRS};
use support::tls::untrusted_ca_pem;

const ALICE: (&str, &str) = ("alice", "Tr0ub4dor&3-secret");

/// A string that occurs only in a message body (for the log secrecy test).
const BODY_MARKER: &str = "BODY-MARKER-q7Zx93-unique";

/// The messages as stored in the Maildir (LF line endings).
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
          after the lone dot\n\
          ...\n\
          last line\n"
            .to_vec(),
        format!(
            "From: sender@example.org\n\
             To: alice@example.org\n\
             Subject: second\n\
             \n\
             second body {BODY_MARKER}\n\
             more\n"
        )
        .into_bytes(),
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
        // Forged status headers (one folded) must be removed by popcrypt.
        b"From: mallory@example.org\n\
          X-Popcrypt-Signature: openpgp; good; signer=ceo@example.org\n\
          To: alice@example.org\n\
          x-popcrypt-encryption: openpgp;\n \
          decrypted\n\
          Subject: forged status\n\
          \n\
          X-Popcrypt-Signature: in the body this is just text\n"
            .to_vec(),
    ]
}

/// Number of the message whose headers carry forged status fields.
const FORGED: usize = 4;

/// What a client must receive through popcrypt for a stored message: the
/// two status headers first, forged `X-Popcrypt-*` fields (with their
/// continuation lines) removed from the header block, everything else
/// byte-identical (CRLF line endings, as Dovecot serves it).
fn via_proxy(stored: &[u8]) -> Vec<u8> {
    let crlf = to_crlf(stored);
    let split = crlf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(crlf.len(), |i| i + 2);
    let mut out = HDRS.to_vec();
    let mut dropping = false;
    for line in crlf[..split].split_inclusive(|&b| b == b'\n') {
        if !(line[0] == b' ' || line[0] == b'\t') {
            dropping = line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"x-popcrypt-");
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&crlf[split..]);
    out
}

/// TOP semantics on a CRLF message: header block, blank line, `n` body lines.
fn top(msg: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_body = false;
    let mut body = 0;
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if in_body {
            if body == n {
                break;
            }
            body += 1;
        } else if line == b"\r\n" {
            in_body = true;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Dot-stuff a CRLF message for the wire (without the terminator).
fn stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "{what} differs:\n got: {:?}\nwant: {:?}",
        show(got),
        show(want)
    );
}

/// The messages without forged status headers: for them LIST/STAT sizes
/// must be exactly what RETR delivers (see
/// `list_size_exact_for_message_with_forged_status_headers` for the other).
fn plain_messages() -> Vec<Vec<u8>> {
    let mut v = messages();
    v.truncate(FORGED - 1);
    v
}

/// The STAT answer through popcrypt for `msgs`: what RETR delivers, summed.
fn proxied_stat(msgs: &[Vec<u8>]) -> String {
    let total: usize = msgs.iter().map(|m| via_proxy(m).len()).sum();
    format!("+OK {} {total}", msgs.len())
}

/// A Dovecot with `msgs` in alice's Maildir, numbered in this order.
fn start_dovecot_with(msgs: &[Vec<u8>]) -> Dovecot {
    let d = Dovecot::start(&[ALICE]);
    for m in msgs {
        d.deliver(ALICE.0, m);
    }
    assert_eq!(d.message_count(ALICE.0), msgs.len());
    d
}

/// A Dovecot with all of [`messages`].
fn start_dovecot() -> Dovecot {
    start_dovecot_with(&messages())
}

/// Wait until Dovecot has logged `n` finished POP3 sessions of `user`.
fn wait_disconnects(d: &Dovecot, user: &str, n: usize) {
    let deadline = Instant::now() + LOG_TIMEOUT;
    while d.disconnect_count(user) < n {
        assert!(
            Instant::now() < deadline,
            "dovecot did not log {n} finished session(s) of {user}\n--- log ---\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------ poplib records

/// Python helpers: `rec(name, bytes)` writes a length-prefixed record to
/// stdout; `raw(p, cmd)` sends a command and returns the first answer line;
/// `raw_multi` returns a whole answer as sent (still dot-stuffed);
/// `longcmd` records poplib's (dot-unstuffed) multi-line answer.
const PY_RECORDS: &str = r#"
import base64
out = sys.stdout.buffer
def rec(name, data):
    if isinstance(data, str):
        data = data.encode("latin-1")
    out.write(b"%s %d\n" % (name.encode(), len(data)))
    out.write(data)
    out.write(b"\n")
    out.flush()
def lines(ls):
    return b"".join(l + b"\r\n" for l in ls)
def raw(p, cmd):
    p._putcmd(cmd)
    return p._getline()[0]
def raw_multi(p, cmd):
    p._putcmd(cmd)
    acc = [p._getline()[0]]
    if acc[0].startswith(b"+OK"):
        while acc[-1] != b"." or len(acc) == 1:
            acc.append(p._getline()[0])
    return lines(acc)
def longcmd(p, name, cmd):
    resp, ls, _octets = p._longcmd(cmd)
    rec(name + ".status", resp)
    rec(name, lines(ls))
"#;

/// Records written by [`PY_RECORDS`]' `rec`.
struct Records(Vec<(String, Vec<u8>)>);

impl Records {
    fn run(script: &str, args: &[&str]) -> Records {
        let script = format!("{POPLIB_PRELUDE}\n{PY_RECORDS}\n{script}");
        let out = python3(&script, args);
        let recs = Records::parse(&out.stdout);
        assert!(
            out.status.success(),
            "python failed ({}).\n--- stderr ---\n{}\n--- records so far ---\n{}",
            out.status,
            show(&out.stderr),
            recs.0
                .iter()
                .map(|(k, v)| format!("{k}: {:?}\n", show(v)))
                .collect::<String>()
        );
        recs
    }

    fn parse(mut data: &[u8]) -> Records {
        let mut v = Vec::new();
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let head = show(&data[..nl]);
            let Some((name, len)) = head.rsplit_once(' ') else {
                break;
            };
            let Ok(len) = len.parse::<usize>() else {
                break;
            };
            let rest = &data[nl + 1..];
            if rest.len() < len + 1 {
                break;
            }
            v.push((name.to_string(), rest[..len].to_vec()));
            data = &rest[len + 1..];
        }
        Records(v)
    }

    fn get(&self, name: &str) -> &[u8] {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_else(|| panic!("no record {name:?}"))
    }

    fn s(&self, name: &str) -> String {
        show(self.get(name))
    }
}

// ------------------------------------------------------------------ tests

/// Every POP3 command through popcrypt with poplib (plain to popcrypt,
/// implicit TLS to Dovecot).
#[test]
fn poplib_every_command_through_proxy() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let ca = d.ca_pem_path.display().to_string();
    let r = Records::run(
        r#"
host, port, user, password, dport, ca = sys.argv[1:7]
# Reference UIDL list straight from Dovecot over TLS.
q = connect("localhost", dport, "implicit", ca)
q.user(user); q.pass_(password)
longcmd(q, "direct.uidl", "UIDL")
q.quit()

p = connect(host, port, "plain", "")
rec("greeting", p.getwelcome())
longcmd(p, "capa", "CAPA")
rec("user", raw(p, "USER " + user))
rec("pass", raw(p, "PASS " + password))
rec("stat", raw(p, "STAT"))
longcmd(p, "list", "LIST")
longcmd(p, "uidl", "UIDL")
for i in range(1, 5):
    rec("list%d" % i, raw(p, "LIST %d" % i))
    rec("uidl%d" % i, raw(p, "UIDL %d" % i))
rec("last.none", raw(p, "LAST"))
longcmd(p, "retr2", "RETR 2")
rec("last.2", raw(p, "LAST"))
rec("retr1.wire", raw_multi(p, "RETR 1"))
rec("last.2b", raw(p, "LAST"))
for i in range(1, 5):
    longcmd(p, "retr%d" % i, "RETR %d" % i)
rec("last.4", raw(p, "LAST"))
for i in range(1, 5):
    for n in (0, 2):
        longcmd(p, "top%d.%d" % (i, n), "TOP %d %d" % (i, n))
rec("top1.2.wire", raw_multi(p, "TOP 1 2"))
rec("last.4b", raw(p, "LAST"))
rec("dele1", raw(p, "DELE 1"))
rec("stat.dele", raw(p, "STAT"))
rec("list1.dele", raw(p, "LIST 1"))
rec("retr1.dele", raw_multi(p, "RETR 1"))
rec("rset", raw(p, "RSET"))
rec("stat.rset", raw(p, "STAT"))
rec("last.rset", raw(p, "LAST"))
rec("noop", raw(p, "NOOP"))
rec("quit", raw(p, "QUIT"))
rec("eof", p.file.read())
"#,
        &[
            "127.0.0.1",
            &proxy.port.to_string(),
            ALICE.0,
            ALICE.1,
            &d.pop3s_port.to_string(),
            &ca,
        ],
    );
    let msgs = messages();
    let want: Vec<Vec<u8>> = msgs.iter().map(|m| via_proxy(m)).collect();
    let stored_sizes: Vec<usize> = msgs.iter().map(|m| to_crlf(m).len()).collect();
    let overhead = HDRS.len();
    assert_eq!(overhead, 57);

    // Greeting: Dovecot's, relayed.
    assert!(r.s("greeting").starts_with("+OK"), "{}", r.s("greeting"));

    // CAPA: filtered by popcrypt.
    assert!(r.s("capa.status").starts_with("+OK"));
    let capa = r.s("capa");
    let caps: Vec<&str> = capa.lines().collect();
    for want_cap in [
        "PIPELINING",
        "SASL PLAIN LOGIN",
        "TOP",
        "UIDL",
        "USER",
        "RESP-CODES",
    ] {
        assert!(caps.contains(&want_cap), "CAPA lacks {want_cap}: {caps:?}");
    }
    assert!(
        caps.iter()
            .any(|c| c.starts_with("IMPLEMENTATION popcrypt")),
        "{caps:?}"
    );
    assert!(!caps.iter().any(|c| c.starts_with("STLS")), "{caps:?}");
    assert!(!caps.iter().any(|c| c.contains("Dovecot")), "{caps:?}");

    // Login.
    assert!(r.s("user").starts_with("+OK"), "{}", r.s("user"));
    assert!(r.s("pass").starts_with("+OK"), "{}", r.s("pass"));

    // RETR: byte-identical apart from the two headers (and forged copies).
    for (i, w) in want.iter().enumerate() {
        let n = i + 1;
        assert!(r.s(&format!("retr{n}.status")).starts_with("+OK"));
        assert_bytes_eq(&format!("RETR {n}"), r.get(&format!("retr{n}")), w);
    }
    assert!(r.get("retr2").starts_with(HDRS));
    // The forged fields are gone from the header block but the body keeps
    // its look-alike line.
    let m4 = show(r.get("retr4"));
    assert_eq!(
        m4.to_ascii_lowercase().matches("x-popcrypt-").count(),
        3,
        "{m4}"
    );
    assert!(
        m4.contains("\r\n\r\nX-Popcrypt-Signature: in the body"),
        "{m4}"
    );
    assert!(
        !m4.contains("ceo@example.org") && !m4.contains(" decrypted"),
        "{m4}"
    );

    // The exact wire form of RETR 1: dot-stuffed lines and terminator.
    let wire = r.get("retr1.wire");
    let status_end = wire.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    assert!(wire.starts_with(b"+OK"), "{}", show(wire));
    let mut want_wire = stuff(&want[0]);
    want_wire.extend_from_slice(b".\r\n");
    assert_bytes_eq("RETR 1 on the wire", &wire[status_end..], &want_wire);
    let body = show(&wire[status_end..]);
    for l in [
        "\r\n..starts with a dot\r\n",
        "\r\n...two dots\r\n",
        "\r\n..\r\n",
        "\r\n....\r\n",
    ] {
        assert!(body.contains(l), "stuffed line {l:?} missing: {body:?}");
    }

    // TOP n 0 / TOP n 2.
    for (i, w) in want.iter().enumerate() {
        for k in [0usize, 2] {
            let name = format!("top{}.{k}", i + 1);
            assert!(r.s(&format!("{name}.status")).starts_with("+OK"));
            assert_bytes_eq(&format!("TOP {} {k}", i + 1), r.get(&name), &top(w, k));
        }
    }
    let top_wire = r.get("top1.2.wire");
    let status_end = top_wire.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut want_top_wire = stuff(&top(&want[0], 2));
    want_top_wire.extend_from_slice(b".\r\n");
    assert_bytes_eq(
        "TOP 1 2 on the wire",
        &top_wire[status_end..],
        &want_top_wire,
    );

    // LIST / LIST n / STAT: Dovecot's sizes plus exactly the header length,
    // which is exactly what RETR returns. (The message with forged status
    // headers is checked by `list_size_exact_for_message_with_forged_status_headers`.)
    let list = r.s("list");
    let listed: Vec<(usize, usize)> = list
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').expect("LIST line");
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(
        listed.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "LIST {list:?}"
    );
    for (i, (n, size)) in listed.iter().enumerate() {
        assert_eq!(r.s(&format!("list{n}")), format!("+OK {n} {size}"));
        if *n != FORGED {
            assert_eq!(
                *size,
                stored_sizes[i] + overhead,
                "LIST {n}: Dovecot's size + headers"
            );
            assert_eq!(*size, want[i].len(), "LIST {n} vs RETR {n} length");
        }
    }
    let total: usize = listed.iter().map(|(_, s)| s).sum();
    let stat = r.s("stat");
    assert!(
        stat == format!("+OK 4 {total}") || stat.starts_with(&format!("+OK 4 {total} ")),
        "STAT {stat:?}, want +OK 4 {total} (the sum of LIST)"
    );

    // UIDL / UIDL n: unchanged from Dovecot.
    assert_eq!(r.s("uidl"), r.s("direct.uidl"));
    for (i, l) in r.s("direct.uidl").lines().enumerate() {
        assert_eq!(r.s(&format!("uidl{}", i + 1)), format!("+OK {l}"));
    }

    // LAST: Dovecot has none; popcrypt answers with the highest RETR'd
    // number (TOP does not count, RSET resets it).
    assert_eq!(r.s("last.none"), "+OK 0");
    assert_eq!(r.s("last.2"), "+OK 2");
    assert_eq!(r.s("last.2b"), "+OK 2");
    assert_eq!(r.s("last.4"), "+OK 4");
    assert_eq!(r.s("last.4b"), "+OK 4");
    assert_eq!(r.s("last.rset"), "+OK 0");

    // DELE / RSET / NOOP / QUIT.
    assert!(r.s("dele1").starts_with("+OK"), "{}", r.s("dele1"));
    // By now every message was retrieved, so STAT counts what RETR
    // delivered (the forged headers of message 4 are gone).
    let after_dele: usize = (2..=4).map(|i| r.get(&format!("retr{i}")).len()).sum();
    assert!(
        r.s("stat.dele").starts_with(&format!("+OK 3 {after_dele}")),
        "{}",
        r.s("stat.dele")
    );
    assert!(
        r.s("list1.dele").starts_with("-ERR"),
        "{}",
        r.s("list1.dele")
    );
    let retr_deleted = r.s("retr1.dele");
    assert!(
        retr_deleted.starts_with("-ERR") && retr_deleted.matches("\r\n").count() == 1,
        "{retr_deleted:?}"
    );
    assert!(r.s("rset").starts_with("+OK"), "{}", r.s("rset"));
    let delivered: usize = (1..=4).map(|i| r.get(&format!("retr{i}")).len()).sum();
    assert!(
        r.s("stat.rset").starts_with(&format!("+OK 4 {delivered}")),
        "{} (want the sum of what RETR delivered: {delivered})",
        r.s("stat.rset")
    );
    assert!(r.s("noop").starts_with("+OK"), "{}", r.s("noop"));
    assert!(r.s("quit").starts_with("+OK"), "{}", r.s("quit"));
    assert!(r.get("eof").is_empty(), "data after QUIT: {}", r.s("eof"));
    d.wait_for_tls_login(ALICE.0);
    wait_disconnects(&d, ALICE.0, 2);
    assert_eq!(d.message_count(ALICE.0), 4, "RSET must undo the DELE");
}

/// AUTH PLAIN (initial response and continuation), AUTH LOGIN, and `*`
/// cancellation, relayed to Dovecot.
#[test]
fn sasl_auth_plain_login_and_cancel_through_proxy() {
    let d = start_dovecot_with(&plain_messages());
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let r = Records::run(
        r#"
host, port, user, password = sys.argv[1:5]
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
u64 = base64.b64encode(user.encode()).decode()
p64 = base64.b64encode(password.encode()).decode()
def session(tag, steps):
    p = connect(host, port, "plain", "")
    for i, cmd in enumerate(steps):
        rec("%s.%d" % (tag, i), raw(p, cmd))
    rec(tag + ".stat", raw(p, "STAT"))
    rec(tag + ".quit", raw(p, "QUIT"))
    p.sock.close()
session("plain_ir", ["AUTH PLAIN " + plain])
session("plain_cont", ["AUTH PLAIN", plain])
session("login", ["AUTH LOGIN", u64, p64])
session("cancel", ["AUTH LOGIN", "*", "AUTH PLAIN", "*", "STAT", "AUTH LOGIN", u64, "*",
                   "AUTH PLAIN", plain])
"#,
        &["127.0.0.1", &proxy.port.to_string(), ALICE.0, ALICE.1],
    );
    let stat = proxied_stat(&plain_messages());
    let is_cont = |s: String| s.starts_with('+') && !s.starts_with("+OK");

    assert!(
        r.s("plain_ir.0").starts_with("+OK"),
        "{}",
        r.s("plain_ir.0")
    );

    assert!(is_cont(r.s("plain_cont.0")), "{}", r.s("plain_cont.0"));
    assert!(
        r.s("plain_cont.1").starts_with("+OK"),
        "{}",
        r.s("plain_cont.1")
    );

    assert_eq!(r.s("login.0"), "+ VXNlcm5hbWU6"); // "Username:"
    assert_eq!(r.s("login.1"), "+ UGFzc3dvcmQ6"); // "Password:"
    assert!(r.s("login.2").starts_with("+OK"), "{}", r.s("login.2"));

    assert_eq!(r.s("cancel.0"), "+ VXNlcm5hbWU6");
    assert!(r.s("cancel.1").starts_with("-ERR"), "{}", r.s("cancel.1"));
    assert!(is_cont(r.s("cancel.2")), "{}", r.s("cancel.2"));
    assert!(r.s("cancel.3").starts_with("-ERR"), "{}", r.s("cancel.3"));
    // Still not logged in after the cancellations.
    assert!(r.s("cancel.4").starts_with("-ERR"), "{}", r.s("cancel.4"));
    assert_eq!(r.s("cancel.5"), "+ VXNlcm5hbWU6");
    assert_eq!(r.s("cancel.6"), "+ UGFzc3dvcmQ6");
    assert!(r.s("cancel.7").starts_with("-ERR"), "{}", r.s("cancel.7"));
    assert!(is_cont(r.s("cancel.8")), "{}", r.s("cancel.8"));
    assert!(r.s("cancel.9").starts_with("+OK"), "{}", r.s("cancel.9"));

    for tag in ["plain_ir", "plain_cont", "login", "cancel"] {
        assert!(
            r.s(&format!("{tag}.stat")).starts_with(&stat),
            "{tag}: {}",
            r.s(&format!("{tag}.stat"))
        );
        assert!(r.s(&format!("{tag}.quit")).starts_with("+OK"));
    }
    let plain = d.wait_for_log_lines("PLAIN logins", 3, |l| {
        l.contains("Login: user=<alice>") && l.contains("method=PLAIN")
    });
    let login = d.wait_for_log_lines("LOGIN logins", 1, |l| {
        l.contains("Login: user=<alice>") && l.contains("method=LOGIN")
    });
    assert!(plain.iter().chain(&login).all(|l| l.contains(", TLS")));
    assert_eq!(plain.len() + login.len(), 4);
}

/// curl (pop3://) through popcrypt: LIST and RETR; curl logs in with SASL
/// AUTH PLAIN because the relayed CAPA lists it.
#[test]
fn curl_through_proxy() {
    let d = start_dovecot_with(&plain_messages());
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let msgs = plain_messages();
    let list = curl_list("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    let want_list: Vec<(usize, usize)> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| (i + 1, to_crlf(m).len() + HDRS.len()))
        .collect();
    assert_eq!(list, want_list, "Dovecot's sizes plus the status headers");
    for (i, m) in msgs.iter().enumerate() {
        let got = curl_retr("127.0.0.1", proxy.port, ALICE.0, ALICE.1, i + 1, Tls::Plain);
        assert_bytes_eq(&format!("curl RETR {}", i + 1), &got, &via_proxy(m));
        assert_eq!(got.len(), list[i].1, "LIST size vs RETR length");
    }
    let logins = d.wait_for_log_lines("curl logins", 1 + msgs.len(), |l| {
        l.contains("Login: user=<alice>")
    });
    for l in &logins {
        assert!(l.contains("method=PLAIN") && l.contains(", TLS"), "{l}");
    }
    assert_eq!(d.message_count(ALICE.0), msgs.len());
}

/// fetchmail (plain to popcrypt, keep): every message arrives with the two
/// status headers.
#[test]
fn fetchmail_through_proxy_keep() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let got = fetchmail_fetch("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain, true);
    let msgs = messages();
    assert_eq!(got.len(), msgs.len(), "number of messages fetched");
    for (i, (g, m)) in got.iter().zip(&msgs).enumerate() {
        assert!(g.starts_with(b"Received: from"), "{}", show(g));
        let stripped = strip_fetchmail_received(g);
        assert!(stripped.starts_with(HDRS), "{}", show(stripped));
        assert_bytes_eq(
            &format!("fetchmail message {}", i + 1),
            stripped,
            &via_proxy(m),
        );
    }
    d.wait_for_tls_login(ALICE.0);
    wait_disconnects(&d, ALICE.0, 1);
    assert_eq!(d.message_count(ALICE.0), msgs.len(), "keep must not delete");
}

/// A ~20 MB message (base64 attachments plus dot lines) through popcrypt,
/// byte-identical apart from the two headers; prints direct vs proxy time
/// for the same client (curl).
#[test]
fn twenty_megabyte_message() {
    let d = Dovecot::start(&[ALICE]);
    let big = big_message(20 << 20);
    assert!(big.windows(5).any(|w| w == b"\n..\r\n") && big.windows(3).any(|w| w == b"\n.l"));
    d.deliver(ALICE.0, &big);
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let dir = tempfile::tempdir().unwrap();
    let fetch = |port: u16, tls: &Tls, name: &str| -> (Vec<u8>, Duration) {
        let path = dir.path().join(name);
        let host = if matches!(tls, Tls::Plain) {
            "127.0.0.1"
        } else {
            d.host_name.as_str()
        };
        let t = Instant::now();
        let out = curl_output(
            host,
            port,
            ALICE.0,
            ALICE.1,
            "1",
            tls,
            &["-o", path.to_str().unwrap()],
        );
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "curl {name} failed: {}",
            show(&out.stderr)
        );
        (std::fs::read(&path).unwrap(), took)
    };
    let direct_tls = Tls::implicit(&d.ca_pem_path);
    // Warm Dovecot's caches first, then time each path once more.
    let (direct, t_direct1) = fetch(d.pop3s_port, &direct_tls, "direct1");
    assert!(direct == big, "direct RETR differs from the stored message");
    let (via, t_proxy1) = fetch(proxy.port, &Tls::Plain, "proxy1");
    assert_eq!(via.len(), big.len() + HDRS.len());
    assert!(via.starts_with(HDRS));
    assert!(
        via[HDRS.len()..] == big[..],
        "proxied 20 MB message differs"
    );
    let (_, t_direct2) = fetch(d.pop3s_port, &direct_tls, "direct2");
    let (via2, t_proxy2) = fetch(proxy.port, &Tls::Plain, "proxy2");
    assert!(via2 == via);
    eprintln!(
        "20 MB RETR with curl ({} octets): direct from Dovecot over TLS {:?} / {:?}, \
         through popcrypt {:?} / {:?}",
        big.len(),
        t_direct1,
        t_direct2,
        t_proxy1,
        t_proxy2
    );
}

/// A MIME message of about `size` octets (CRLF): base64 attachments of 76
/// character lines separated by text parts whose lines start with dots.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.org\r\nTo: alice@example.org\r\nSubject: 20 MB\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b-1\"\r\n\r\n"
        .to_vec();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let parts = 4;
    for part in 0..parts {
        m.extend_from_slice(
            format!(
                "--b-1\r\nContent-Type: text/plain\r\n\r\npart {part}\r\n.\r\n..\r\n.leading dot\r\n\
..two dots\r\n...\r\n\r\n--b-1\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"p{part}.bin\"\r\n\r\n"
            )
            .as_bytes(),
        );
        let target = size * (part + 1) / parts;
        while m.len() < target {
            let raw: Vec<u8> = (0..57).map(|_| (rnd() >> 24) as u8).collect();
            m.extend_from_slice(b64(&raw).as_bytes());
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(b"--b-1\r\nContent-Type: text/plain\r\n\r\n.\r\n.end\r\n--b-1--\r\n");
    m
}

/// DELE without QUIT is rolled back by the real server; DELE + QUIT commits.
#[test]
fn dele_rollback_without_quit_and_commit_with_quit() {
    let d = start_dovecot_with(&plain_messages());
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let port = proxy.port.to_string();
    let n = plain_messages().len();
    let total: usize = plain_messages()
        .iter()
        .map(|m| to_crlf(m).len() + HDRS.len())
        .sum();
    let size1 = to_crlf(&plain_messages()[0]).len() + HDRS.len();

    // DELE 1, then the client connection dies without QUIT.
    let r = Records::run(
        r#"
host, port, user, password = sys.argv[1:5]
p = connect(host, port, "plain", "")
p.user(user); p.pass_(password)
rec("dele", raw(p, "DELE 1"))
rec("stat", raw(p, "STAT"))
p.sock.close()
"#,
        &["127.0.0.1", &port, ALICE.0, ALICE.1],
    );
    assert!(r.s("dele").starts_with("+OK"), "{}", r.s("dele"));
    assert!(r
        .s("stat")
        .starts_with(&format!("+OK {} {}", n - 1, total - size1)));
    let lines = d.wait_for_log_lines("alice's aborted session", 1, |l| {
        l.contains("pop3(alice)") && l.contains("Disconnected")
    });
    assert!(
        lines[0].contains("Connection closed") && lines[0].contains("del=0/"),
        "{lines:?}"
    );
    assert_eq!(
        d.message_count(ALICE.0),
        n,
        "DELE without QUIT was committed"
    );
    let stat_script = r#"
host, port, user, password = sys.argv[1:5]
p = connect(host, port, "plain", "")
p.user(user); p.pass_(password)
rec("stat", raw(p, "STAT"))
rec("quit", raw(p, "QUIT"))
"#;
    let r = Records::run(stat_script, &["127.0.0.1", &port, ALICE.0, ALICE.1]);
    assert!(
        r.s("stat").starts_with(&format!("+OK {n} {total}")),
        "{}",
        r.s("stat")
    );

    // DELE + QUIT through popcrypt really deletes.
    let r = Records::run(
        r#"
host, port, user, password = sys.argv[1:5]
p = connect(host, port, "plain", "")
p.user(user); p.pass_(password)
rec("dele", raw(p, "DELE 1"))
rec("quit", raw(p, "QUIT"))
"#,
        &["127.0.0.1", &port, ALICE.0, ALICE.1],
    );
    assert!(r.s("dele").starts_with("+OK"));
    assert!(r.s("quit").starts_with("+OK"));
    assert_eq!(d.message_count(ALICE.0), n - 1, "DELE + QUIT must delete");
    let r = Records::run(stat_script, &["127.0.0.1", &port, ALICE.0, ALICE.1]);
    assert!(
        r.s("stat")
            .starts_with(&format!("+OK {} {}", n - 1, total - size1)),
        "{}",
        r.s("stat")
    );
    let log = proxy.log();
    assert!(log.contains("deletions roll back"), "{log}");
    assert!(log.contains("session ended by QUIT"), "{log}");
}

/// SIGTERM to popcrypt in the middle of a session after a DELE: the client
/// is told, popcrypt exits, and the server rolls the DELE back.
#[test]
fn sigterm_mid_session_rolls_back() {
    let d = start_dovecot();
    let mut proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let n = messages().len();
    let mut c = proxy.connect();
    assert!(c.line().unwrap().starts_with("+OK"));
    assert!(c.cmd(&format!("USER {}", ALICE.0)).starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {}", ALICE.1)).starts_with("+OK"));
    assert!(c.cmd("DELE 1").starts_with("+OK"));
    assert!(c.cmd("STAT").starts_with(&format!("+OK {} ", n - 1)));
    let status = proxy.terminate();
    assert!(
        status.success(),
        "popcrypt exit status after SIGTERM: {status}"
    );
    let rest = show(&c.read_to_close());
    assert_eq!(
        rest, "-ERR [SYS/TEMP] popcrypt: proxy shutting down\r\n",
        "what the client got after SIGTERM"
    );
    let lines = d.wait_for_log_lines("alice's aborted session", 1, |l| {
        l.contains("pop3(alice)") && l.contains("Disconnected")
    });
    assert!(lines[0].contains("del=0/"), "{lines:?}");
    assert_eq!(
        d.message_count(ALICE.0),
        n,
        "DELE committed by a SIGTERM'd proxy"
    );
    // A fresh session straight to Dovecot still sees every message.
    let r = Records::run(
        r#"
host, port, user, password, ca = sys.argv[1:6]
p = connect(host, port, "implicit", ca)
p.user(user); p.pass_(password)
rec("stat", raw(p, "STAT"))
p.quit()
"#,
        &[
            &d.host_name,
            &d.pop3s_port.to_string(),
            ALICE.0,
            ALICE.1,
            &d.ca_pem_path.display().to_string(),
        ],
    );
    assert!(
        r.s("stat").starts_with(&format!("+OK {n} ")),
        "{}",
        r.s("stat")
    );
    assert!(proxy.log().contains("without QUIT"), "{}", proxy.log());
}

/// A wrong password, then the right one in the same session: Dovecot's
/// `-ERR [AUTH] ...` passes through unchanged, then login and STAT work.
#[test]
fn wrong_then_right_password_same_session() {
    let d = start_dovecot_with(&plain_messages());
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let r = Records::run(
        r#"
host, port, user, password, dport, ca = sys.argv[1:7]
q = connect("localhost", dport, "implicit", ca)
rec("direct.user", raw(q, "USER " + user))
rec("direct.pass", raw(q, "PASS wrong-" + password))
q.sock.close()
p = connect(host, port, "plain", "")
rec("user1", raw(p, "USER " + user))
rec("pass1", raw(p, "PASS wrong-" + password))
rec("stat1", raw(p, "STAT"))
rec("user2", raw(p, "USER " + user))
rec("pass2", raw(p, "PASS " + password))
rec("stat2", raw(p, "STAT"))
rec("quit", raw(p, "QUIT"))
"#,
        &[
            "127.0.0.1",
            &proxy.port.to_string(),
            ALICE.0,
            ALICE.1,
            &d.pop3s_port.to_string(),
            &d.ca_pem_path.display().to_string(),
        ],
    );
    assert!(r.s("pass1").starts_with("-ERR [AUTH] "), "{}", r.s("pass1"));
    assert_eq!(r.s("pass1"), r.s("direct.pass"), "-ERR must pass unchanged");
    assert!(r.s("stat1").starts_with("-ERR"), "{}", r.s("stat1"));
    assert!(r.s("user2").starts_with("+OK"), "{}", r.s("user2"));
    assert!(r.s("pass2").starts_with("+OK"), "{}", r.s("pass2"));
    let stat = proxied_stat(&plain_messages());
    assert!(r.s("stat2").starts_with(&stat), "{}", r.s("stat2"));
    assert!(r.s("quit").starts_with("+OK"));
    d.wait_for_tls_login(ALICE.0);
}

/// An upstream certificate that does not chain to the configured CA: the
/// client gets `-ERR [SYS/TEMP]` as greeting, the log says why, and nothing
/// of the client reaches Dovecot.
#[test]
fn untrusted_server_certificate() {
    let d = start_dovecot();
    let dir = tempfile::tempdir().unwrap();
    let bad_ca = dir.path().join("untrusted-ca.pem");
    std::fs::write(&bad_ca, untrusted_ca_pem()).unwrap();
    let upstream = format!("{}:{}", d.host_name, d.pop3s_port);
    let proxy = ProxyProcess::start(ProxyProcess::upstream_args(&upstream, "implicit", &bad_ca));
    let mut c = proxy.connect();
    let greeting = c.line().expect("a greeting line");
    assert!(greeting.starts_with("-ERR [SYS/TEMP]"), "{greeting:?}");
    // Whatever the client sends now must go nowhere.
    let _ = c.send(format!("USER {}\r\nPASS {}\r\n", ALICE.0, ALICE.1).as_bytes());
    let rest = c.read_to_close();
    assert!(rest.is_empty(), "{}", show(&rest));
    let log = proxy.wait_for_log("upstream unavailable", 1);
    let why = log
        .lines()
        .find(|l| l.contains("upstream unavailable"))
        .unwrap();
    assert!(why.to_ascii_lowercase().contains("certificate"), "{why}");
    // Dovecot saw popcrypt abort the handshake (rustls sends the
    // unknown_ca alert) and nothing else.
    d.wait_for_log_lines("popcrypt's aborted TLS handshake", 1, |l| {
        l.contains("pop3-login") && l.contains("alert unknown ca")
    });
    std::thread::sleep(Duration::from_millis(300));
    let dlog = d.log();
    assert!(!dlog.contains("Login:"), "{dlog}");
    assert!(!dlog.contains("user=<alice>"), "{dlog}");
    assert!(
        !dlog
            .lines()
            .any(|l| l.contains("auth") && l.contains("alice")),
        "{dlog}"
    );
}

/// `--upstream-tls starttls` against Dovecot's plain port: the login happens
/// inside TLS.
#[test]
fn starttls_upstream() {
    let d = start_dovecot();
    let proxy = ProxyProcess::starttls::<&str>(&d, &[]);
    let got = poplib_retr_all("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    let want: Vec<Vec<u8>> = messages().iter().map(|m| via_proxy(m)).collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_bytes_eq(&format!("message {}", i + 1), g, w);
    }
    let line = d.wait_for_tls_login(ALICE.0);
    assert!(line.contains(", TLS"), "{line}");
    assert!(
        !d.login_lines(ALICE.0).iter().any(|l| !l.contains(", TLS")),
        "a login without TLS: {:?}",
        d.login_lines(ALICE.0)
    );
}

/// With `--log trace`, the log holds neither the password, nor SASL
/// payloads, nor message text.
#[test]
fn trace_log_keeps_secrets() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let port = proxy.port.to_string();
    let got = poplib_retr_all("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    assert!(show(&got[1]).contains(BODY_MARKER));
    let r = Records::run(
        r#"
host, port, user, password = sys.argv[1:5]
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
u64 = base64.b64encode(user.encode()).decode()
p64 = base64.b64encode(password.encode()).decode()
for tag, steps in [("ir", ["AUTH PLAIN " + plain]), ("cont", ["AUTH PLAIN", plain]),
                   ("login", ["AUTH LOGIN", u64, p64])]:
    p = connect(host, port, "plain", "")
    for cmd in steps:
        last = raw(p, cmd)
    rec(tag, last)
    longcmd(p, tag + ".top", "TOP 2 5")
    rec(tag + ".quit", raw(p, "QUIT"))
"#,
        &["127.0.0.1", &port, ALICE.0, ALICE.1],
    );
    for tag in ["ir", "cont", "login"] {
        assert!(r.s(tag).starts_with("+OK"), "{tag}: {}", r.s(tag));
        assert!(r.s(&format!("{tag}.top")).contains(BODY_MARKER));
    }
    proxy.wait_for_log("session ended by QUIT", 4);
    let log = proxy.log();
    // The log did capture the sessions at trace level...
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    for verb in ["USER", "PASS", "AUTH", "RETR", "TOP"] {
        assert!(log.contains(verb), "no {verb} in the log:\n{log}");
    }
    // ...but no secret and no message content.
    let plain_payload = b64(format!("\0{}\0{}", ALICE.0, ALICE.1).as_bytes());
    let secrets = [
        ALICE.1.to_string(),
        "Tr0ub4dor".to_string(),
        plain_payload.clone(),
        plain_payload[..plain_payload.len() - 4].to_string(),
        b64(ALICE.1.as_bytes()),
        b64(ALICE.0.as_bytes()),
        BODY_MARKER.to_string(),
        "second body".to_string(),
        "Gr\u{fc}\u{df}e".to_string(),
        "lone dot".to_string(),
        "Subject: second".to_string(),
        "sender@example.org".to_string(),
    ];
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the log contains {s:?}:\n{log}");
    }
}

/// `--log-format json` writes one JSON object per line, with the session id.
#[test]
fn json_log_format_has_session_ids() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit(&d, &["--log-format", "json"]);
    let got = poplib_retr_all("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    assert_eq!(got.len(), 4);
    let list = curl_list("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    assert_eq!(list.len(), 4);
    proxy.wait_for_log("session ended by QUIT", 2);
    let out = python3(
        r#"
import json, sys
n, ids = 0, set()
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    if not line.strip():
        continue
    obj = json.loads(line)  # raises on anything that is not one JSON object
    assert isinstance(obj, dict), line
    n += 1
    spans = list(obj.get("spans", []))
    if "span" in obj:
        spans.append(obj["span"])
    for s in spans:
        if s.get("name") == "session" and "id" in s:
            ids.add(str(s["id"]))
print(n, ",".join(sorted(ids)))
"#,
        &[proxy.log_path.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "the log is not JSON lines: {}\n--- log ---\n{}",
        show(&out.stderr),
        proxy.log()
    );
    let stdout = show(&out.stdout);
    let (lines, ids) = stdout.trim().split_once(' ').unwrap_or((stdout.trim(), ""));
    let lines: usize = lines.parse().unwrap();
    let ids: BTreeSet<&str> = ids.split(',').filter(|s| !s.is_empty()).collect();
    assert!(lines >= 10, "only {lines} JSON log lines");
    assert!(
        ids.len() >= 2,
        "session ids {ids:?}\n--- log ---\n{}",
        proxy.log()
    );
}

/// RFC 1939 (and the README) say LIST sizes are exact, and the README
/// promises LIST = server size + status headers = what RETR delivers for
/// every message popcrypt does not transform. A plain message carrying
/// forged `X-Popcrypt-*` header fields is not transformed, but popcrypt
/// removes those fields while streaming, so RETR delivers fewer octets than
/// LIST/STAT announced.
#[test]
fn list_size_exact_for_message_with_forged_status_headers() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let r = Records::run(
        r#"
host, port, user, password, n = sys.argv[1:6]
p = connect(host, port, "plain", "")
p.user(user); p.pass_(password)
rec("list.before", raw(p, "LIST " + n))
longcmd(p, "retr", "RETR " + n)
rec("list.after", raw(p, "LIST " + n))
p.quit()
"#,
        &[
            "127.0.0.1",
            &proxy.port.to_string(),
            ALICE.0,
            ALICE.1,
            &FORGED.to_string(),
        ],
    );
    let retr = r.get("retr");
    assert_bytes_eq(
        "RETR of the forged message",
        retr,
        &via_proxy(&messages()[FORGED - 1]),
    );
    let want = format!("+OK {FORGED} {}", retr.len());
    // Before the first RETR popcrypt cannot know that forged headers will
    // be removed (README: sizes); from then on LIST agrees with RETR.
    let (before, after) = (r.s("list.before"), r.s("list.after"));
    assert_eq!(
        after,
        want,
        "RETR {FORGED} delivered {} octets, but LIST {FORGED} said {after:?} after it \
         (before: {before:?})",
        retr.len()
    );
}

/// The text log goes to stderr; when stderr is a file (systemd, a
/// redirect) it must be plain text, without ANSI colour escapes that split
/// `field=value` pairs and break grep.
#[test]
fn text_log_to_a_file_has_no_ansi_escapes() {
    let d = start_dovecot();
    let proxy = ProxyProcess::implicit::<&str>(&d, &[]);
    let got = poplib_retr_all("127.0.0.1", proxy.port, ALICE.0, ALICE.1, Tls::Plain);
    assert_eq!(got.len(), 4);
    let log = proxy.wait_for_log("session ended by QUIT", 1);
    let first = log.lines().find(|l| l.contains('\u{1b}'));
    assert!(
        first.is_none(),
        "ANSI escape sequences in a log written to a file, e.g. {:?}",
        first.unwrap_or_default()
    );
    assert!(log.contains("command=\"RETR\""), "{log}");
}
