//! A private Dovecot POP3 server for end-to-end tests.
//!
//! Every [`Dovecot`] runs its own `dovecot -F -c CONF` master process with
//! its own temp dir (config, `base_dir`, `state_dir`, logs, Maildirs, certs)
//! and its own loopback ports, so any number of instances can run in parallel
//! (cargo runs tests in parallel threads) without touching the system
//! Dovecot. Dropping the value stops the server and removes the temp dir.
//!
//! Requirements: Dovecot 2.3 with the POP3 module (`dovecot-pop3d`), running
//! as root (Dovecot switches to uid/gid 65534 for mail access and to the
//! `dovecot`/`dovenull` users for its internal/login processes).
//!
//! Quirks worth knowing:
//! * Dovecot considers a 127.0.0.1 -> 127.0.0.1 connection "secured" even
//!   without TLS. To prove TLS was used, look at the `Login:` log line: it
//!   carries `, TLS,` for TLS sessions and `, secured,` for plaintext
//!   loopback ones (see [`Dovecot::wait_for_tls_login`]).
//! * CAPA: `TOP UIDL RESP-CODES PIPELINING AUTH-RESP-CODE USER SASL PLAIN LOGIN`
//!   (+ `STLS` on the plain port before TLS). No `LAST`, no APOP.
//! * A `DELE` is rolled back if the client disconnects without `QUIT`; with
//!   `QUIT` the files are gone from the Maildir by the time `+OK` is sent.
//! * Messages are served with CRLF line endings even though the Maildir files
//!   written by [`Dovecot::deliver`] may use LF.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{chown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::tls::TestCa;

/// Path of the Dovecot binary.
pub const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
/// uid/gid owning the Maildirs (`nobody`/`nogroup`).
pub const MAIL_UID: u32 = 65534;
/// How long [`Dovecot::start`] waits for the listeners.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the `wait_for_*` helpers poll the log.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);

static INSTANCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running private Dovecot POP3 server.
pub struct Dovecot {
    /// Temp dir holding everything (removed on drop).
    pub dir: tempfile::TempDir,
    /// Plaintext POP3 listener on 127.0.0.1; advertises and supports STLS.
    pub pop3_port: u16,
    /// Implicit-TLS POP3 listener (pop3s) on 127.0.0.1.
    pub pop3s_port: u16,
    /// PEM file of the CA that signed the server certificate.
    pub ca_pem_path: PathBuf,
    /// Name in the server certificate: `"localhost"` (the cert also has an
    /// IP SAN for 127.0.0.1).
    pub host_name: String,
    /// Server certificate / key PEM files.
    pub cert_pem_path: PathBuf,
    pub key_pem_path: PathBuf,
    /// `(user, password)` pairs known to this server.
    pub users: Vec<(String, String)>,
    ca: TestCa,
    child: Child,
    next_seq: AtomicU64,
}

impl Dovecot {
    /// Start a Dovecot with the given `(user, password)` accounts and empty
    /// Maildirs. Returns once both listeners accept connections. Panics (never
    /// skips) if Dovecot is missing or fails to start.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        if !Path::new(DOVECOT_BIN).exists() {
            panic!("dovecot not found: install it with `apt-get install -y dovecot-pop3d`");
        }
        if !Path::new("/usr/lib/dovecot/pop3").exists() {
            panic!(
                "dovecot pop3 module not found: install it with `apt-get install -y dovecot-pop3d`"
            );
        }
        for (u, p) in users {
            assert!(
                !u.is_empty()
                    && !u.contains([':', '\n', '\r', '/'])
                    && !p.contains([':', '\n', '\r']),
                "unsupported user/password for passwd-file: {u:?}/{p:?}"
            );
        }
        // Picking a free port and handing it to Dovecot is racy against other
        // tests doing the same; retry with fresh ports on "address in use".
        let mut last_err = String::new();
        for _attempt in 0..5 {
            match Self::try_start(users) {
                Ok(d) => return d,
                Err(e) if e.contains("Address already in use") => last_err = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last_err}");
    }

    fn try_start(users: &[(&str, &str)]) -> Result<Dovecot, String> {
        let dir = tempfile::Builder::new()
            .prefix("popcrypt-dovecot-")
            .tempdir()
            .expect("create temp dir");
        let root = dir.path().to_path_buf();
        // Dovecot's unprivileged processes (auth as `dovecot`, mail as 65534)
        // must be able to traverse into the temp dir.
        set_mode(&root, 0o755);

        // TLS material.
        let ca = TestCa::new("popcrypt test CA");
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        let ca_pem_path = root.join("ca.pem");
        let cert_pem_path = root.join("server-cert.pem");
        let key_pem_path = root.join("server-key.pem");
        write_file(&ca_pem_path, &ca.pem(), 0o644);
        write_file(&cert_pem_path, issued.cert_pem.as_bytes(), 0o644);
        write_file(&key_pem_path, issued.key_pem.as_bytes(), 0o600);

        // Users and Maildirs.
        let mail_root = root.join("mail");
        fs::create_dir(&mail_root).expect("mkdir mail");
        chown(&mail_root, Some(MAIL_UID), Some(MAIL_UID)).expect("chown mail");
        let mut passwd = String::new();
        for (user, pass) in users {
            let maildir = mail_root.join(user);
            for sub in ["", "cur", "new", "tmp"] {
                let d = maildir.join(sub);
                fs::create_dir_all(&d).expect("mkdir maildir");
                set_mode(&d, 0o700);
                chown(&d, Some(MAIL_UID), Some(MAIL_UID)).expect("chown maildir");
            }
            passwd.push_str(&format!(
                "{user}:{{PLAIN}}{pass}:{MAIL_UID}:{MAIL_UID}::{}::\n",
                maildir.display()
            ));
        }
        let passwd_path = root.join("passwd");
        write_file(&passwd_path, passwd.as_bytes(), 0o644);

        let pop3_port = free_port();
        let mut pop3s_port = free_port();
        while pop3s_port == pop3_port {
            pop3s_port = free_port();
        }
        let instance = format!(
            "popcrypt-test-{}-{}",
            std::process::id(),
            INSTANCE_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let log_path = root.join("dovecot.log");
        let r = root.display();
        let conf = format!(
            r#"# generated by tests/support/dovecot.rs
instance_name = {instance}
base_dir = {r}/run
state_dir = {r}/state
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_verbose = yes
login_trusted_networks =
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = {MAIL_UID}
mail_gid = {MAIL_UID}
mail_location = maildir:{r}/mail/%u
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s_port}
    ssl = yes
  }}
}}
"#,
            log = log_path.display(),
            cert = cert_pem_path.display(),
            key = key_pem_path.display(),
            passwd = passwd_path.display(),
        );
        let conf_path = root.join("dovecot.conf");
        write_file(&conf_path, conf.as_bytes(), 0o644);

        let stderr_path = root.join("dovecot.stderr");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let stdout = stderr.try_clone().expect("clone stderr file");
        let child = Command::new(DOVECOT_BIN)
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "failed to run {DOVECOT_BIN}: {e}; install it with `apt-get install -y dovecot-pop3d`"
                )
            });

        let mut dovecot = Dovecot {
            dir,
            pop3_port,
            pop3s_port,
            ca_pem_path,
            host_name: "localhost".to_string(),
            cert_pem_path,
            key_pem_path,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            ca,
            child,
            next_seq: AtomicU64::new(1),
        };
        dovecot.wait_ready()?;
        Ok(dovecot)
    }

    /// Poll until the plain port sends a `+OK` greeting and the pop3s port
    /// accepts TCP connections.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut plain_ok = false;
        let mut tls_ok = false;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "dovecot exited early ({status}).\n--- stderr ---\n{}\n--- log ---\n{}",
                    self.stderr(),
                    self.log()
                ));
            }
            if !plain_ok {
                plain_ok = greeting_ok(self.pop3_port);
            }
            if !tls_ok {
                tls_ok = TcpStream::connect_timeout(
                    &([127, 0, 0, 1], self.pop3s_port).into(),
                    Duration::from_secs(1),
                )
                .is_ok();
            }
            if plain_ok && tls_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                // Drop (run below by the caller's panic) stops the process.
                panic!(
                    "dovecot did not become ready within {START_TIMEOUT:?} \
                     (pop3 {}: {plain_ok}, pop3s {}: {tls_ok}).\n--- stderr ---\n{}\n--- log ---\n{}",
                    self.pop3_port,
                    self.pop3s_port,
                    self.stderr(),
                    self.log()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The CA that signed the server certificate (can issue more certs, e.g.
    /// for a proxy's own listener).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The CA certificate PEM bytes.
    pub fn ca_pem(&self) -> Vec<u8> {
        fs::read(&self.ca_pem_path).expect("read CA PEM")
    }

    /// PID of the Dovecot master process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Password of a configured user.
    pub fn password(&self, user: &str) -> &str {
        &self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .unwrap_or_else(|| panic!("unknown dovecot test user {user:?}"))
            .1
    }

    /// Root of `user`'s Maildir (contains `cur`, `new`, `tmp`).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.password(user); // panics on unknown users
        self.dir.path().join("mail").join(user)
    }

    /// Put a message (stored verbatim; LF or CRLF line endings both work)
    /// into `user`'s `Maildir/new`. File names sort in delivery order, so
    /// POP3 message numbers follow delivery order (for messages delivered
    /// before the session that first sees them). Returns the file path.
    pub fn deliver(&self, user: &str, raw: &[u8]) -> PathBuf {
        let maildir = self.maildir(user);
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        // Dovecot assigns UIDs to new files sorted by the leading timestamp
        // part of the name, so use a strictly increasing fake timestamp.
        let name = format!(
            "{}.M{seq}P{}Q{seq}.popcrypt-test",
            1_600_000_000 + seq,
            std::process::id()
        );
        let tmp = maildir.join("tmp").join(&name);
        let new = maildir.join("new").join(&name);
        write_file(&tmp, raw, 0o600);
        chown(&tmp, Some(MAIL_UID), Some(MAIL_UID)).expect("chown message");
        fs::rename(&tmp, &new).expect("move message into new/");
        new
    }

    /// Number of messages in `user`'s Maildir (`cur` + `new`).
    pub fn message_count(&self, user: &str) -> usize {
        let maildir = self.maildir(user);
        ["cur", "new"]
            .iter()
            .map(|sub| {
                fs::read_dir(maildir.join(sub))
                    .expect("read maildir")
                    .filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .sum()
    }

    /// Contents of Dovecot's log file.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.path().join("dovecot.log")).unwrap_or_default())
            .into_owned()
    }

    /// Dovecot's stdout/stderr (early startup errors end up here).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(
            &fs::read(self.dir.path().join("dovecot.stderr")).unwrap_or_default(),
        )
        .into_owned()
    }

    /// Log lines matching `pred`.
    pub fn log_lines(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| pred(l))
            .map(str::to_owned)
            .collect()
    }

    /// Wait (up to [`LOG_TIMEOUT`]) until at least `min_count` log lines
    /// match `pred`, and return them. Dovecot writes its log asynchronously,
    /// so a line may show up shortly after the client is done. Panics with
    /// the log on timeout; `what` describes the expectation.
    pub fn wait_for_log_lines(
        &self,
        what: &str,
        min_count: usize,
        pred: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            let lines = self.log_lines(&pred);
            if lines.len() >= min_count {
                return lines;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {min_count} dovecot log line(s): {what} \
                     (found {}).\n--- log ---\n{}",
                    lines.len(),
                    self.log()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// `Login:` log lines of `user` (TLS or not).
    pub fn login_lines(&self, user: &str) -> Vec<String> {
        let needle = format!("Login: user=<{user}>");
        self.log_lines(|l| l.contains(&needle))
    }

    /// Wait for a `Login:` line of `user` that says `TLS` and return it.
    pub fn wait_for_tls_login(&self, user: &str) -> String {
        let needle = format!("Login: user=<{user}>");
        self.wait_for_log_lines(&format!("TLS login of {user}"), 1, |l| {
            l.contains(&needle) && l.contains(", TLS")
        })
        .remove(0)
    }

    /// Number of finished POP3 sessions of `user` ("Disconnected" lines of
    /// the `pop3(user)` process).
    pub fn disconnect_count(&self, user: &str) -> usize {
        let needle = format!("pop3({user})");
        self.log_lines(|l| l.contains(&needle) && l.contains("Disconnected"))
            .len()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM lets the master stop its children (login, auth, pop3).
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = self.child.kill(); // SIGKILL
                        let _ = self.child.wait();
                        break;
                    }
                    Ok(None) => sleep(Duration::from_millis(20)),
                }
            }
        }
        // `dir` (a TempDir) is removed after this when the fields drop.
    }
}

/// A currently free TCP port on 127.0.0.1 (bind :0, read, drop).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn greeting_ok(port: u16) -> bool {
    let Ok(stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let ok = BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("+OK");
    if ok {
        let _ = (&stream).write_all(b"QUIT\r\n");
    }
    ok
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
