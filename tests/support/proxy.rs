//! The real `popcrypt` binary run as a child process in front of a server.
//!
//! [`ProxyProcess`] starts `popcrypt serve --listen 127.0.0.1:PORT ARGS...`
//! on a free loopback port, sends its stdout/stderr (the logs) to files in a
//! private temp dir, waits until it is listening, and kills it on drop.
//! [`ProxyProcess::implicit`] / [`ProxyProcess::starttls`] build the usual
//! arguments for a [`Dovecot`] upstream (`--log trace` included) and append
//! any extra ones (`--keys DIR`, `--config FILE`, `--log-format json`, ...).
//! clap rejects a flag given twice, so extra args must not repeat one of the
//! built-in flags; build the list with [`ProxyProcess::upstream_args`] and
//! [`ProxyProcess::start`] to change one of them (e.g. `--upstream-ca`).
//!
//! [`ProxyProcess::connect`] gives the raw POP3 test client
//! ([`super::pop3_client::Blocking`]) for tests that need exact control
//! over the wire (reading the greeting of a refused session, keeping a
//! session open while the proxy is signalled, ...).
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::dovecot::{free_port, Dovecot};
use super::pop3_client::Blocking;

/// Path of the popcrypt binary under test.
pub const POPCRYPT_BIN: &str = env!("CARGO_BIN_EXE_popcrypt");
/// How long [`ProxyProcess::start`] waits for the listener.
pub const PROXY_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the log-polling helpers wait.
pub const PROXY_LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// The two status headers popcrypt puts in front of every plain message.
pub const PLAIN_STATUS_HEADERS: &[u8] =
    b"X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\n";

/// A running `popcrypt serve` child process.
pub struct ProxyProcess {
    /// Temp dir holding the log files (removed on drop).
    pub dir: tempfile::TempDir,
    /// The loopback port popcrypt listens on for plain POP3.
    pub port: u16,
    /// File receiving popcrypt's stderr (its log).
    pub log_path: PathBuf,
    /// File receiving popcrypt's stdout.
    pub stdout_path: PathBuf,
    /// The arguments after `serve --listen ADDR`.
    pub args: Vec<OsString>,
    child: Child,
    exit: Option<ExitStatus>,
}

impl ProxyProcess {
    /// Run `popcrypt serve --listen 127.0.0.1:PORT <args>` and wait until it
    /// listens. Retries with another port if the chosen one was taken.
    /// Panics with the log if popcrypt exits or does not come up.
    pub fn start<I, S>(args: I) -> ProxyProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut last = String::new();
        for _attempt in 0..5 {
            match Self::try_start(&args) {
                Ok(p) => return p,
                Err(e) if e.contains("cannot listen") || e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}");
    }

    fn try_start(args: &[OsString]) -> Result<ProxyProcess, String> {
        let dir = tempfile::Builder::new()
            .prefix("popcrypt-proxy-")
            .tempdir()
            .expect("create proxy temp dir");
        let log_path = dir.path().join("popcrypt.log");
        let stdout_path = dir.path().join("popcrypt.stdout");
        let stderr = fs::File::create(&log_path).expect("create proxy log file");
        let stdout = fs::File::create(&stdout_path).expect("create proxy stdout file");
        let port = free_port();
        let child = Command::new(POPCRYPT_BIN)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {POPCRYPT_BIN}: {e}"));
        let mut proxy = ProxyProcess {
            dir,
            port,
            log_path,
            stdout_path,
            args: args.to_vec(),
            child,
            exit: None,
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    /// Ready once the log says "popcrypt listening"; if the log level hides
    /// that line, a TCP connect after a grace period decides (that probe
    /// makes popcrypt open one upstream session, which is harmless).
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(format!(
                    "popcrypt exited early ({status}), args {:?}\n--- log ---\n{}",
                    self.args,
                    self.log()
                ));
            }
            if self.log().contains("popcrypt listening") {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(3)
                && TcpStream::connect_timeout(
                    &([127, 0, 0, 1], self.port).into(),
                    Duration::from_millis(500),
                )
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > PROXY_START_TIMEOUT {
                panic!(
                    "popcrypt did not listen on port {} within {PROXY_START_TIMEOUT:?}, args {:?}\n--- log ---\n{}",
                    self.port,
                    self.args,
                    self.log()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// `--upstream HOST:PORT --upstream-tls MODE --upstream-ca CA
    /// --no-system-roots --log trace`.
    pub fn upstream_args(upstream: &str, tls_mode: &str, ca: &Path) -> Vec<OsString> {
        vec![
            "--upstream".into(),
            upstream.into(),
            "--upstream-tls".into(),
            tls_mode.into(),
            "--upstream-ca".into(),
            ca.as_os_str().to_owned(),
            "--no-system-roots".into(),
            "--log".into(),
            "trace".into(),
        ]
    }

    /// Arguments for an implicit-TLS upstream at `d` (verified against its
    /// CA only) with `--log trace`.
    pub fn implicit_args(d: &Dovecot) -> Vec<OsString> {
        let upstream = format!("{}:{}", d.host_name, d.pop3s_port);
        Self::upstream_args(&upstream, "implicit", &d.ca_pem_path)
    }

    /// Arguments for an STLS upstream at `d`'s plain port with `--log trace`.
    pub fn starttls_args(d: &Dovecot) -> Vec<OsString> {
        let upstream = format!("{}:{}", d.host_name, d.pop3_port);
        Self::upstream_args(&upstream, "starttls", &d.ca_pem_path)
    }

    /// A proxy in front of `d`'s implicit-TLS port; `extra` args appended
    /// (they must not repeat a flag of [`ProxyProcess::implicit_args`]).
    /// `implicit` with a keys directory and, if given, a passphrase file.
    pub fn with_keys(d: &Dovecot, keys: &Path, passphrase_file: Option<&Path>) -> ProxyProcess {
        let mut extra: Vec<&OsStr> = vec![OsStr::new("--keys"), keys.as_os_str()];
        if let Some(p) = passphrase_file {
            extra.push(OsStr::new("--keys-passphrase-file"));
            extra.push(p.as_os_str());
        }
        ProxyProcess::implicit(d, &extra)
    }

    pub fn implicit<S: AsRef<OsStr>>(d: &Dovecot, extra: &[S]) -> ProxyProcess {
        let mut args = Self::implicit_args(d);
        args.extend(extra.iter().map(|a| a.as_ref().to_owned()));
        Self::start(args)
    }

    /// A proxy in front of `d`'s plain port, upgrading with STLS.
    pub fn starttls<S: AsRef<OsStr>>(d: &Dovecot, extra: &[S]) -> ProxyProcess {
        let mut args = Self::starttls_args(d);
        args.extend(extra.iter().map(|a| a.as_ref().to_owned()));
        Self::start(args)
    }

    /// PID of the popcrypt process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT` of the listener.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// popcrypt's log (stderr) so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// popcrypt's stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stdout_path).unwrap_or_default()).into_owned()
    }

    /// Wait until the log contains `needle` at least `count` times; panics
    /// with the log on timeout.
    pub fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PROXY_LOG_TIMEOUT;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {count} x {needle:?} in the popcrypt log\n--- log ---\n{log}"
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Exit status if the process has ended.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
            }
        }
        self.exit
    }

    /// Wait up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_exit_status() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal (`"TERM"`, `"INT"`, ...) to this child with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{sig} {} failed", self.child.id());
    }

    /// SIGTERM, then wait (up to 15 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| {
            panic!(
                "popcrypt did not exit within 15 s of SIGTERM\n--- log ---\n{}",
                self.log()
            )
        })
    }

    /// Connect the raw POP3 test client to the proxy.
    pub fn connect(&self) -> Blocking {
        Blocking::connect(self.port)
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            // The tail only: rustls trace output is long.
            let log = self.log();
            let mut start = log.len().saturating_sub(16 * 1024);
            while !log.is_char_boundary(start) {
                start += 1;
            }
            eprintln!(
                "--- popcrypt log ({}, last {} of {} octets) ---\n{}",
                self.log_path.display(),
                log.len() - start,
                log.len(),
                &log[start..]
            );
        }
    }
}
