//! Real POP3 clients run as subprocesses: Python `poplib`, `curl`, `fetchmail`.
//!
//! All helpers verify the server certificate against the CA given in [`Tls`]
//! (hostname/IP checked against `host`), enforce a wall-clock timeout
//! ([`CLIENT_TIMEOUT`]) and panic with an install hint if the client binary is
//! missing. The `*_output` / `*_run` variants return the raw result instead of
//! panicking on failure, for negative tests.
//!
//! What each client hands back:
//! * poplib: message lines joined with CRLF plus a final CRLF, dot-unstuffed
//!   (i.e. exactly the message as sent on the wire, minus the terminator).
//! * curl: same bytes as poplib: CRLF line endings, dot-unstuffed, ends with
//!   the CRLF that preceded the terminating `.`. Note curl authenticates with
//!   SASL `AUTH` when CAPA lists SASL mechanisms, else APOP if the greeting
//!   has a `<timestamp>`, else USER/PASS.
//! * fetchmail: delivered through an MDA with `no stripcr`, so CRLF line
//!   endings are kept, BUT fetchmail prepends its own multi-line
//!   `Received: from HOST [IP] by ... with POP3 (fetchmail-6.4.x) ...` header
//!   (use [`strip_fetchmail_received`]). `no rewrite` keeps it from rewriting
//!   addresses in headers.
#![allow(dead_code)]

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for any single client run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How a client connects.
#[derive(Clone, Debug)]
pub enum Tls {
    /// Plain POP3, never attempts STLS.
    Plain,
    /// Implicit TLS (pop3s), server cert verified against `ca`.
    Implicit { ca: PathBuf },
    /// Plain connect, then mandatory STLS, cert verified against `ca`.
    Stls { ca: PathBuf },
}

impl Tls {
    pub fn implicit(ca: impl Into<PathBuf>) -> Tls {
        Tls::Implicit { ca: ca.into() }
    }

    pub fn stls(ca: impl Into<PathBuf>) -> Tls {
        Tls::Stls { ca: ca.into() }
    }

    fn ca(&self) -> Option<&Path> {
        match self {
            Tls::Plain => None,
            Tls::Implicit { ca } | Tls::Stls { ca } => Some(ca),
        }
    }
}

/// Run a command with a timeout, capturing stdout/stderr. Panics with
/// `install_hint` if the binary does not exist, and on timeout.
pub fn run_command(cmd: &mut Command, install_hint: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("{program} not found: install it with `{install_hint}`")
        }
        Err(e) => panic!("failed to run {program}: {e}"),
    };
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{program} timed out after {CLIENT_TIMEOUT:?}: {cmd:?}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Convert bare LF line endings to CRLF (CRLF stays CRLF): what a POP3 client
/// receives for a Maildir message stored with LF endings.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

// ---------------------------------------------------------------- poplib

/// Run `python3 -c <script> [args...]` (args are `sys.argv[1:]`). Does not
/// check the exit status.
pub fn python3(script: &str, args: &[&str]) -> Output {
    run_command(
        Command::new("python3").arg("-c").arg(script).args(args),
        "apt-get install -y python3",
    )
}

/// Run an inline Python script (for ad-hoc `poplib` sessions). Does not
/// check the exit status.
pub fn poplib(script: &str) -> Output {
    python3(script, &[])
}

/// Python prelude for poplib scripts: `connect(host, port, mode, ca)` with
/// `mode` one of `plain`, `implicit`, `stls`; raises poplib's line limit.
pub const POPLIB_PRELUDE: &str = r#"
import poplib, ssl, sys
poplib._MAXLINE = 16 * 1024 * 1024

def connect(host, port, mode, ca):
    if mode == "implicit":
        ctx = ssl.create_default_context(cafile=ca)
        return poplib.POP3_SSL(host, int(port), context=ctx, timeout=60)
    p = poplib.POP3(host, int(port), timeout=60)
    if mode == "stls":
        p.stls(context=ssl.create_default_context(cafile=ca))
    return p
"#;

const POPLIB_RETR_ALL: &str = r#"
host, port, user, password, mode, ca = sys.argv[1:7]
p = connect(host, port, mode, ca)
p.user(user)
p.pass_(password)
count, _size = p.stat()
out = sys.stdout.buffer
for i in range(1, count + 1):
    _resp, lines, _octets = p.retr(i)
    msg = b"\r\n".join(lines) + b"\r\n"
    out.write(b"%d\n" % len(msg))
    out.write(msg)
p.quit()
out.flush()
"#;

/// `sys.argv`-style args `[host, port, user, pass, mode, ca]` for scripts
/// built on [`POPLIB_PRELUDE`].
pub fn poplib_args(host: &str, port: u16, user: &str, pass: &str, tls: &Tls) -> Vec<String> {
    let (mode, ca) = match tls {
        Tls::Plain => ("plain", String::new()),
        Tls::Implicit { ca } => ("implicit", ca.display().to_string()),
        Tls::Stls { ca } => ("stls", ca.display().to_string()),
    };
    vec![
        host.to_string(),
        port.to_string(),
        user.to_string(),
        pass.to_string(),
        mode.to_string(),
        ca,
    ]
}

/// Run `POPLIB_PRELUDE + body` with [`poplib_args`]; does not check status.
pub fn poplib_session(
    body: &str,
    host: &str,
    port: u16,
    user: &str,
    pass: &str,
    tls: &Tls,
) -> Output {
    let script = format!("{POPLIB_PRELUDE}\n{body}");
    let args = poplib_args(host, port, user, pass, tls);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python3(&script, &args)
}

/// Log in with poplib (USER/PASS), RETR every message, QUIT. Returns the
/// messages in order, CRLF line endings, dot-unstuffed, each ending in CRLF.
pub fn poplib_retr_all(host: &str, port: u16, user: &str, pass: &str, tls: Tls) -> Vec<Vec<u8>> {
    let out = poplib_session(POPLIB_RETR_ALL, host, port, user, pass, &tls);
    assert_success(&format!("poplib RETR all ({tls:?})"), &out);
    parse_length_prefixed(&out.stdout)
}

fn parse_length_prefixed(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut msgs = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').expect("length line");
        let len: usize = std::str::from_utf8(&data[..nl])
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("message length");
        let rest = &data[nl + 1..];
        msgs.push(rest[..len].to_vec());
        data = &rest[len..];
    }
    msgs
}

// ---------------------------------------------------------------- curl

fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Run curl against `pop3[s]://host:port/<path>` (`path` empty = LIST,
/// a number = RETR n) with `-u user:pass`. `extra` args are appended.
/// Does not check the exit status.
pub fn curl_output(
    host: &str,
    port: u16,
    user: &str,
    pass: &str,
    path: &str,
    tls: &Tls,
    extra: &[&str],
) -> Output {
    let scheme = match tls {
        Tls::Implicit { .. } => "pop3s",
        _ => "pop3",
    };
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "--connect-timeout", "10"])
        .arg("-u")
        .arg(format!("{user}:{pass}"))
        .arg(format!("{scheme}://{}:{port}/{path}", url_host(host)));
    if let Tls::Stls { .. } = tls {
        cmd.arg("--ssl-reqd");
    }
    if let Some(ca) = tls.ca() {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.args(extra);
    run_command(&mut cmd, "apt-get install -y curl")
}

/// RETR message `n` with curl. curl writes the message exactly like poplib
/// returns it: CRLF endings, dot-unstuffed, final CRLF.
pub fn curl_retr(host: &str, port: u16, user: &str, pass: &str, n: usize, tls: Tls) -> Vec<u8> {
    let out = curl_output(host, port, user, pass, &n.to_string(), &tls, &[]);
    assert_success(&format!("curl RETR {n} ({tls:?})"), &out);
    out.stdout
}

/// LIST with curl: `(message number, size in octets)`.
pub fn curl_list(host: &str, port: u16, user: &str, pass: &str, tls: Tls) -> Vec<(usize, usize)> {
    let out = curl_output(host, port, user, pass, "", &tls, &[]);
    assert_success(&format!("curl LIST ({tls:?})"), &out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let n = it.next().and_then(|s| s.parse().ok());
            let size = it.next().and_then(|s| s.parse().ok());
            match (n, size) {
                (Some(n), Some(size)) => (n, size),
                _ => panic!("unexpected curl LIST line {l:?}"),
            }
        })
        .collect()
}

// ---------------------------------------------------------------- fetchmail

/// Result of a fetchmail run.
pub struct FetchmailRun {
    pub output: Output,
    /// Delivered messages in delivery order (fetchmail's `Received:` header
    /// included, CRLF line endings).
    pub messages: Vec<Vec<u8>>,
}

impl FetchmailRun {
    /// fetchmail exit 0 = mail delivered, 1 = no mail: both are success.
    pub fn ok(&self) -> bool {
        matches!(self.output.status.code(), Some(0) | Some(1))
    }
}

/// Quote a string for a fetchmailrc. The lexer ends a quoted string at the
/// next quote char (no `\"`), but unescapes `\\` and `\xNN` inside it.
fn rc_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\x22"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Run fetchmail once against `host_name:port` (the name must match the
/// server certificate for TLS modes, e.g. `"localhost"`). Uses a private rc
/// file (0600), `HOME`/`FETCHMAILHOME` and pid/lock and id files in a fresh
/// temp dir, `--nosyslog`, `fetchall`, `no rewrite`, `no stripcr`, and an MDA
/// writing each message to its own numbered file. `keep = false` makes
/// fetchmail DELE what it fetched. Modes:
/// * `Plain`: `sslproto ''` — never STLS (fetchmail 6.4 otherwise tries STLS
///   opportunistically when the server advertises it);
/// * `Implicit`: `ssl sslcertck sslcertfile CA`;
/// * `Stls`: `sslcertck sslcertfile CA sslproto 'tls1.2+'` without `ssl`,
///   which makes STLS mandatory.
///
/// Does not check the exit status (see [`FetchmailRun::ok`]).
pub fn fetchmail_run(
    host_name: &str,
    port: u16,
    user: &str,
    pass: &str,
    tls: Tls,
    keep: bool,
) -> FetchmailRun {
    let dir = tempfile::Builder::new()
        .prefix("popcrypt-fetchmail-")
        .tempdir()
        .expect("fetchmail temp dir");
    let root = dir.path();
    let out_dir = root.join("out");
    fs::create_dir(&out_dir).expect("mkdir out");

    // fetchmail delivers sequentially, so numbering by current file count
    // preserves delivery order.
    let mda = root.join("mda.sh");
    let mda_script = format!(
        "#!/bin/sh\nn=$(ls '{out}' | wc -l)\nexec cat > '{out}'/$(printf %06d \"$n\")\n",
        out = out_dir.display()
    );
    fs::write(&mda, mda_script).expect("write mda");
    fs::set_permissions(&mda, fs::Permissions::from_mode(0o755)).expect("chmod mda");

    let tls_opts = match &tls {
        Tls::Plain => "sslproto ''".to_string(),
        Tls::Implicit { ca } => format!(
            "ssl sslcertck sslcertfile {} sslproto 'tls1.2+'",
            rc_quote(&ca.display().to_string())
        ),
        Tls::Stls { ca } => format!(
            "sslcertck sslcertfile {} sslproto 'tls1.2+'",
            rc_quote(&ca.display().to_string())
        ),
    };
    let rc = format!(
        "set no syslog\nset no bouncemail\nset pidfile {pidfile}\nset idfile {idfile}\n\
         poll {host} protocol pop3 port {port} auth password timeout 30\n  \
         user {user} there with password {pass}\n  \
         options {keep} fetchall no rewrite no stripcr {tls_opts}\n  \
         mda {mda}\n",
        host = rc_quote(host_name),
        user = rc_quote(user),
        pass = rc_quote(pass),
        keep = if keep { "keep" } else { "no keep" },
        mda = rc_quote(&mda.display().to_string()),
        // As root fetchmail locks /var/run/fetchmail.pid regardless of
        // FETCHMAILHOME, which makes parallel runs fail ("another
        // foreground fetchmail is running"): keep the lock private.
        pidfile = rc_quote(&root.join("fetchmail.pid").display().to_string()),
        idfile = rc_quote(&root.join("fetchids").display().to_string()),
    );
    let rc_path = root.join("fetchmailrc");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&rc_path)
        .expect("create fetchmailrc");
    f.write_all(rc.as_bytes()).expect("write fetchmailrc");
    drop(f);

    let output = run_command(
        Command::new("fetchmail")
            .arg("--nosyslog")
            .arg("-v")
            .arg("-f")
            .arg(&rc_path)
            .env("HOME", root)
            .env("FETCHMAILHOME", root),
        "apt-get install -y fetchmail",
    );

    let mut files: Vec<PathBuf> = fs::read_dir(&out_dir)
        .expect("read fetchmail out dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let messages = files
        .iter()
        .map(|p| fs::read(p).expect("read delivered message"))
        .collect();
    FetchmailRun { output, messages }
}

/// [`fetchmail_run`], asserting success; returns the delivered messages in
/// order (each starting with fetchmail's own `Received:` header).
pub fn fetchmail_fetch(
    host_name: &str,
    port: u16,
    user: &str,
    pass: &str,
    tls: Tls,
    keep: bool,
) -> Vec<Vec<u8>> {
    let desc = format!("fetchmail ({tls:?}, keep={keep})");
    let run = fetchmail_run(host_name, port, user, pass, tls, keep);
    assert!(
        run.ok(),
        "{desc} failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.output.status,
        String::from_utf8_lossy(&run.output.stdout),
        String::from_utf8_lossy(&run.output.stderr)
    );
    run.messages
}

/// Remove the leading `Received:` header field (with its continuation
/// lines) that fetchmail prepends; returns the message unchanged otherwise.
pub fn strip_fetchmail_received(msg: &[u8]) -> &[u8] {
    if !msg.starts_with(b"Received:") {
        return msg;
    }
    let mut pos = 0;
    loop {
        let Some(nl) = msg[pos..].iter().position(|&b| b == b'\n') else {
            return msg;
        };
        pos += nl + 1;
        // A header field continues while the next line starts with WSP.
        if !matches!(msg.get(pos), Some(b' ') | Some(b'\t')) {
            break;
        }
    }
    let field = &msg[..pos];
    if field.windows(9).any(|w| w == b"fetchmail") {
        &msg[pos..]
    } else {
        msg
    }
}
