//! Shared helpers for in-process proxy tests:
//!
//! * [`TestCa`]: a throw-away CA (rcgen) that issues server certificates.
//! * [`FakeServer`]: a scriptable POP3 server over implicit TLS, STLS or
//!   plain TCP that records everything it receives.
//! * [`Pop3State`] / [`serve_pop3`]: a small, standard POP3 mailbox that
//!   scripted handlers can fall back to.
//! * [`start_proxy`]: the real popcrypt proxy, in-process, on port 0.
//! * [`Client`]: a raw plain-POP3 client with bounded reads.
//! * [`capture_logs`]: a global tracing subscriber (TRACE) capturing into a
//!   buffer, `log` records included.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use popcrypt::config::{Config, FileConfig, UpstreamTls};
use popcrypt::message::Transformer;
use popcrypt::proxy::{Context, Proxy, SessionCount};

/// How long any single client read may take before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the fake server to reach an expected state.
pub const SERVER_WAIT: Duration = Duration::from_secs(10);

/// The two status headers popcrypt puts first in every RETR/TOP answer when
/// it did not decrypt or verify anything.
pub const STATUS_HEADERS: &str = "X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\n";

/// Octets popcrypt adds to every message size in STAT and LIST.
pub fn overhead() -> usize {
    STATUS_HEADERS.len()
}

// ------------------------------------------------------------------ TLS

/// A test certificate authority.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A server certificate chain and its key.
pub struct Issued {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    /// A fresh CA with the given common name.
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate as PEM (what the proxy is told to trust).
    pub fn pem(&self) -> Vec<u8> {
        self.cert.pem().into_bytes()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// A server certificate with extra tweaks (validity dates, ...).
    pub fn issue_with(
        &self,
        names: &[&str],
        tweak: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Issued {
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fake pop3 server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        tweak(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        Issued {
            chain: vec![cert.der().clone(), self.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A rustls server configuration for `names`.
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        server_config(self.issue(names))
    }
}

/// A client certificate for mutual TLS, as PEM files in a temporary
/// directory: (dir guard, certificate chain path, key path).
pub fn client_cert_files(
    ca: &TestCa,
    name: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().expect("client key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("client params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("client certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_path = dir.path().join("client.pem");
    let key_path = dir.path().join("client.key");
    std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.cert.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (dir, cert_path, key_path)
}

/// A server configuration that requires a client certificate from `clients`.
pub fn server_config_mtls(issued: Issued, clients: &TestCa) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(clients.cert.der().clone()).expect("client CA");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(issued.chain, issued.key)
        .expect("server certificate/key");
    Arc::new(cfg)
}

/// A server configuration limited to TLS 1.2.
pub fn server_config_tls12(issued: Issued) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_no_client_auth()
        .with_single_cert(issued.chain, issued.key)
        .expect("server certificate/key");
    Arc::new(cfg)
}

/// A rustls server configuration (ring provider) for an issued certificate.
pub fn server_config(issued: Issued) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(issued.chain, issued.key)
        .expect("server certificate/key");
    Arc::new(cfg)
}

// ------------------------------------------------------------ fake server

/// A byte stream the fake server talks over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the fake server secures its connections.
#[derive(Clone)]
pub enum Transport {
    /// TLS from the first byte; the handler sends the greeting.
    Implicit(Arc<rustls::ServerConfig>),
    /// Plain greeting, then the server expects `STLS`. It answers
    /// `stls_answer`, followed by `inject` in the same write. If the answer
    /// starts with `+OK` it runs the TLS handshake and then the handler (which
    /// must not send another greeting); otherwise it keeps reading and
    /// recording plaintext lines until the peer closes.
    Starttls {
        config: Arc<rustls::ServerConfig>,
        greeting: String,
        stls_answer: String,
        inject: Vec<u8>,
    },
    /// No TLS at all; the handler sends the greeting.
    Plain,
}

/// What one connection to the fake server saw.
#[derive(Debug, Clone, Default)]
pub struct ConnRecord {
    /// The TLS handshake failed with this error.
    pub tls_error: Option<String>,
    /// The TLS handshake completed.
    pub tls_ok: bool,
    /// The scripted handler ran.
    pub handler_started: bool,
    /// Lines received before TLS (STLS mode), terminator removed.
    pub plain_lines: Vec<String>,
    /// Lines received by the handler (inside TLS unless `Transport::Plain`).
    pub lines: Vec<String>,
    /// Raw bytes received by the handler.
    pub bytes_received: usize,
    /// The peer closed the connection (EOF or error) while the server read.
    pub peer_closed: bool,
    /// The handler returned.
    pub handler_done: bool,
}

impl ConnRecord {
    /// Whether a `QUIT` command arrived (in any case).
    pub fn got_quit(&self) -> bool {
        self.lines
            .iter()
            .chain(self.plain_lines.iter())
            .any(|l| l.eq_ignore_ascii_case("QUIT"))
    }

    /// Whether any line starts with `prefix` (ASCII case-insensitive).
    pub fn got_prefix(&self, prefix: &str) -> bool {
        self.lines
            .iter()
            .chain(self.plain_lines.iter())
            .any(|l| l.len() >= prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(prefix))
    }
}

type Records = Arc<Mutex<Vec<ConnRecord>>>;

/// One accepted connection, handed to the scripted handler.
pub struct ServerConn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    records: Records,
    idx: usize,
    /// The TCP socket under `io` (for [`ServerConn::reset`]).
    fd: std::os::fd::RawFd,
}

impl ServerConn {
    fn update(&self, f: impl FnOnce(&mut ConnRecord)) {
        let mut r = self.records.lock().unwrap();
        f(&mut r[self.idx]);
    }

    /// Send bytes (flushed). Returns false (and records the peer as gone)
    /// if the write failed.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> bool {
        let data = data.as_ref();
        let ok = self.io.write_all(data).await.is_ok() && self.io.flush().await.is_ok();
        if !ok {
            self.update(|r| r.peer_closed = true);
        }
        ok
    }

    /// Send bytes in pieces of `chunk` octets with `delay` between them.
    pub async fn send_slowly(
        &mut self,
        data: impl AsRef<[u8]>,
        chunk: usize,
        delay: Duration,
    ) -> bool {
        for piece in data.as_ref().chunks(chunk.max(1)) {
            if !self.send(piece).await {
                return false;
            }
            tokio::time::sleep(delay).await;
        }
        true
    }

    /// The next line (terminator removed, lossy UTF-8), recorded. `None`
    /// once the peer closed or the connection failed (also recorded).
    pub async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let line = String::from_utf8_lossy(&line).into_owned();
                let l = line.clone();
                self.update(|r| r.lines.push(l));
                return Some(line);
            }
            let mut chunk = vec![0u8; 16 * 1024];
            match self.io.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.update(|r| r.peer_closed = true);
                    return None;
                }
                Ok(n) => {
                    self.update(|r| r.bytes_received += n);
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// Up to `max` raw bytes (what is buffered first, else one read); empty
    /// once the peer closed. Counted in `bytes_received`, not in `lines`.
    pub async fn read_some(&mut self, max: usize) -> Vec<u8> {
        if self.buf.is_empty() {
            let mut chunk = vec![0u8; max.max(1)];
            match self.io.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.update(|r| r.peer_closed = true);
                    return Vec::new();
                }
                Ok(n) => {
                    self.update(|r| r.bytes_received += n);
                    return chunk[..n].to_vec();
                }
            }
        }
        let n = max.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Abort the connection with a TCP reset (SO_LINGER 0, then close):
    /// the peer sees ECONNRESET, not an orderly end. Recorded as the
    /// handler being done.
    pub fn reset(self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `fd` is the socket owned by `self.io`, still open here;
        // the option only changes how the close below ends the connection.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(self);
    }

    /// Read (and record) lines until the peer closes.
    pub async fn drain_until_closed(&mut self) {
        while self.read_line().await.is_some() {}
    }

    /// Close cleanly (TLS close_notify, then TCP FIN).
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

/// A scriptable POP3 server on 127.0.0.1 with a random port.
pub struct FakeServer {
    pub addr: SocketAddr,
    records: Records,
    task: JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Start serving; `handler` runs once per connection after the
    /// transport is set up.
    pub async fn start<F, Fut>(transport: Transport, handler: F) -> FakeServer
    where
        F: Fn(ServerConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake server");
        let addr = listener.local_addr().unwrap();
        let records: Records = Arc::new(Mutex::new(Vec::new()));
        let recs = records.clone();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                let idx = {
                    let mut r = recs.lock().unwrap();
                    r.push(ConnRecord::default());
                    r.len() - 1
                };
                let recs = recs.clone();
                let handler = handler.clone();
                let transport = transport.clone();
                tokio::spawn(async move {
                    let Some(conn) = setup(sock, transport, recs.clone(), idx).await else {
                        return;
                    };
                    recs.lock().unwrap()[idx].handler_started = true;
                    handler(conn).await;
                    recs.lock().unwrap()[idx].handler_done = true;
                });
            }
        });
        FakeServer {
            addr,
            records,
            task,
        }
    }

    /// A snapshot of every connection's record so far.
    pub fn conns(&self) -> Vec<ConnRecord> {
        self.records.lock().unwrap().clone()
    }

    /// Wait (bounded) until `pred` holds for the records; panics with
    /// `what` and the records otherwise.
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[ConnRecord]) -> bool,
    ) -> Vec<ConnRecord> {
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            let snap = self.conns();
            if pred(&snap) {
                return snap;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("fake server: timed out waiting until {what}; records: {snap:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until connection `i` exists and the peer closed it (or the
    /// handler finished); returns its record.
    pub async fn wait_closed(&self, i: usize) -> ConnRecord {
        let recs = self
            .wait_until(&format!("connection {i} is closed"), |r| {
                r.get(i)
                    .is_some_and(|c| c.peer_closed || c.handler_done || c.tls_error.is_some())
            })
            .await;
        recs[i].clone()
    }
}

async fn setup(
    sock: TcpStream,
    transport: Transport,
    recs: Records,
    idx: usize,
) -> Option<ServerConn> {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    match transport {
        Transport::Plain => Some(ServerConn {
            io: Box::new(sock),
            buf: Vec::new(),
            records: recs,
            idx,
            fd,
        }),
        Transport::Implicit(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            match acceptor.accept(sock).await {
                Ok(tls) => {
                    recs.lock().unwrap()[idx].tls_ok = true;
                    Some(ServerConn {
                        io: Box::new(tls),
                        buf: Vec::new(),
                        records: recs,
                        idx,
                        fd,
                    })
                }
                Err(e) => {
                    recs.lock().unwrap()[idx].tls_error = Some(e.to_string());
                    None
                }
            }
        }
        Transport::Starttls {
            config,
            greeting,
            stls_answer,
            inject,
        } => {
            let mut sock = sock;
            if sock
                .write_all(format!("{greeting}\r\n").as_bytes())
                .await
                .is_err()
            {
                return None;
            }
            // Read plaintext lines one byte at a time so no TLS bytes are consumed.
            loop {
                let Some(line) = read_plain_line(&mut sock).await else {
                    recs.lock().unwrap()[idx].peer_closed = true;
                    return None;
                };
                recs.lock().unwrap()[idx].plain_lines.push(line.clone());
                if !line.eq_ignore_ascii_case("STLS") {
                    let _ = sock.write_all(b"-ERR [SYS/PERM] send STLS first\r\n").await;
                    continue;
                }
                let mut out = format!("{stls_answer}\r\n").into_bytes();
                out.extend_from_slice(&inject);
                if sock.write_all(&out).await.is_err() {
                    return None;
                }
                if stls_answer.starts_with("+OK") {
                    break;
                }
            }
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match acceptor.accept(sock).await {
                Ok(tls) => {
                    recs.lock().unwrap()[idx].tls_ok = true;
                    Some(ServerConn {
                        io: Box::new(tls),
                        buf: Vec::new(),
                        records: recs,
                        idx,
                        fd,
                    })
                }
                Err(e) => {
                    recs.lock().unwrap()[idx].tls_error = Some(e.to_string());
                    None
                }
            }
        }
    }
}

async fn read_plain_line(sock: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match sock.read(&mut b).await {
            Ok(1) => {
                if b[0] == b'\n' {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
                line.push(b[0]);
                if line.len() > 64 * 1024 {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

// ------------------------------------------------------------- mailbox

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

// ---------------------------------------------------------------- proxy

/// The proxy running in-process.
pub struct ProxyHandle {
    pub addr: SocketAddr,
    /// The proxy's live-session counter.
    pub sessions: SessionCount,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Start popcrypt in front of `upstream` (reached as `localhost:PORT`),
/// trusting only `ca_pem`; `tune` adjusts the file configuration.
pub async fn start_proxy(
    upstream: SocketAddr,
    ca_pem: &[u8],
    tune: impl FnOnce(&mut FileConfig),
) -> ProxyHandle {
    start_proxy_with(upstream, ca_pem, Transformer::new(), tune).await
}

/// [`start_proxy`] with the OpenPGP and S/MIME keys of `tests/golden`
/// loaded (the passphrase-protected OpenPGP key unlocked), so held
/// messages really go through decryption and verification.
pub async fn start_keyed_proxy(
    upstream: SocketAddr,
    ca_pem: &[u8],
    tune: impl FnOnce(&mut FileConfig),
) -> ProxyHandle {
    start_proxy_with(upstream, ca_pem, keyed_transformer(1 << 20), tune).await
}

/// A transformer with every golden test key loaded, into a merged keys
/// directory (openpgp/ from the OpenPGP suite, smime/ and trust/ from the
/// S/MIME suite).
pub fn keyed_transformer(max_plaintext: usize) -> Transformer {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let dir = tempfile::tempdir().expect("temp keys dir");
    let copy = |from: std::path::PathBuf, to: &str| {
        let to = dir.path().join(to);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    };
    copy(golden.join("openpgp/keys/openpgp"), "openpgp");
    copy(golden.join("smime/keys/smime"), "smime");
    copy(golden.join("smime/keys/trust"), "trust");
    let pass = popcrypt::keys::PassphraseSource {
        file: Some(golden.join("openpgp/keys/pp-user.passphrase")),
        env: None,
    };
    let ring =
        popcrypt::keys::Keyring::load_with(dir.path(), &pass, false).expect("load test keys");
    assert!(!ring.is_empty(), "test keys loaded");
    Transformer::with_keys(ring, max_plaintext)
}

/// [`start_proxy`] with a given transformer.
pub async fn start_proxy_with(
    upstream: SocketAddr,
    ca_pem: &[u8],
    transformer: Transformer,
    tune: impl FnOnce(&mut FileConfig),
) -> ProxyHandle {
    capture_logs();
    count_panics();
    let mut file = FileConfig {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("localhost:{}", upstream.port())),
        upstream_tls: Some(UpstreamTls::Implicit),
        use_system_roots: Some(false),
        ..FileConfig::default()
    };
    tune(&mut file);
    let mut config = Config::from_file_config(file).expect("valid test configuration");
    config.upstream_ca_pem = Some(ca_pem.to_vec());
    let ctx = Context::new(config, transformer).expect("proxy context");
    let proxy = Proxy::bind(ctx).await.expect("bind proxy");
    let addr = proxy.local_addr().expect("proxy address");
    let sessions = proxy.sessions();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(proxy.run(async move {
        let _ = rx.await;
    }));
    ProxyHandle {
        addr,
        sessions,
        stop: Some(tx),
        task: Some(task),
    }
}

impl ProxyHandle {
    /// A new client connection (greeting not yet read).
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Wait (bounded by [`SERVER_WAIT`]) until no session task is alive;
    /// panics naming `what` if one still is (a leaked task).
    /// Also fails if any runtime worker thread panicked so far (proxy or
    /// fake server code: the tests' own assertions run on the test thread).
    pub async fn expect_no_sessions(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + SERVER_WAIT;
        loop {
            let n = self.sessions.get();
            if n == 0 {
                assert_eq!(worker_panics(), 0, "{what}: a runtime worker panicked");
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: {n} session task(s) still alive");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Complete the shutdown future and wait (bounded) for `run` to
    /// return. Returns whether it did.
    pub async fn shutdown(&mut self) -> bool {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => matches!(
                tokio::time::timeout(Duration::from_secs(15), t).await,
                Ok(Ok(()))
            ),
            None => true,
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

// ---------------------------------------------------------------- client

/// A raw plain-POP3 client; every read is bounded by [`CLIENT_TIMEOUT`].
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(CLIENT_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect to proxy timed out")
            .expect("connect to proxy");
        Client::from_stream(stream)
    }

    /// Wrap an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout(CLIENT_TIMEOUT, self.stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "client: timed out waiting for data; buffered: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next line with its terminator; `None` at EOF (a trailing
    /// partial line stays buffered, see [`Client::read_to_close`]).
    pub async fn raw_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=i).collect());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next line without its terminator, or `None` at EOF.
    pub async fn try_line(&mut self) -> Option<String> {
        let l = self.raw_line().await?;
        let s = String::from_utf8_lossy(&l);
        Some(s.trim_end_matches('\n').trim_end_matches('\r').to_string())
    }

    /// The next line; panics at EOF.
    pub async fn line(&mut self) -> String {
        match self.try_line().await {
            Some(l) => l,
            None => panic!("client: connection closed, expected a line"),
        }
    }

    /// Write raw bytes (errors ignored: the proxy may have closed).
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> bool {
        self.stream.write_all(data.as_ref()).await.is_ok()
    }

    /// Send one command (CRLF added) and return the status line.
    pub async fn cmd(&mut self, c: &str) -> String {
        assert!(
            self.send(format!("{c}\r\n")).await,
            "client: write of {c:?} failed"
        );
        self.line().await
    }

    /// The raw bytes of a multi-line body up to and including ".\r\n".
    pub async fn multi(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let Some(l) = self.raw_line().await else {
                panic!(
                    "client: connection closed inside a multi-line answer; got {:?}",
                    String::from_utf8_lossy(&out)
                );
            };
            out.extend_from_slice(&l);
            if l == b".\r\n" {
                return out;
            }
        }
    }

    /// Everything until the proxy closes the connection (bounded).
    /// Assert that `line` is a `-ERR [SYS/TEMP]` naming `why`, and that the
    /// proxy then closes the connection without sending anything more.
    pub async fn expect_temp_error_then_close(&mut self, line: &str, why: &str) {
        assert!(
            line.starts_with("-ERR [SYS/TEMP]") && line.contains(why),
            "want -ERR [SYS/TEMP] about {why:?}, got {line:?}"
        );
        assert!(self.read_to_close().await.is_empty());
    }

    /// Bytes already read from the socket but not yet handed out (before
    /// reading `stream` directly).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    pub async fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Log in with the standard credentials.
    pub async fn login(&mut self) {
        let g = self.line().await;
        assert!(g.starts_with("+OK"), "greeting: {g}");
        let r = self.cmd(&format!("USER {USER}")).await;
        assert!(r.starts_with("+OK"), "USER: {r}");
        let r = self.cmd(&format!("PASS {PASSWORD}")).await;
        assert!(r.starts_with("+OK"), "PASS: {r}");
    }
}

// ---------------------------------------------------------------- panics

static WORKER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Install (once per test binary) a panic hook that counts panics on tokio
/// runtime threads (session tasks, transforms, fake servers) and then runs
/// the default hook. A panicking session task is otherwise invisible: the
/// proxy only drops that session.
pub fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // "tokio-rt-worker" (tokio >= 1.50) or "tokio-runtime-worker".
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-r"))
            {
                WORKER_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            prev(info);
        }));
    });
}

/// Panics counted on runtime threads so far (see [`count_panics`]).
pub fn worker_panics() -> usize {
    WORKER_PANICS.load(std::sync::atomic::Ordering::SeqCst)
}

// --------------------------------------------------------------- logging

#[derive(Clone)]
struct LogWriter {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.lock().unwrap().extend_from_slice(data);
        if self.echo {
            eprint!("{}", String::from_utf8_lossy(data));
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install (once per test binary) a global TRACE subscriber that writes
/// into a buffer (and to stderr if `POPCRYPT_TEST_LOG` is set); `log`
/// records (rustls) are captured too. Returns the buffer.
pub fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter {
            buf: buf.clone(),
            echo: std::env::var_os("POPCRYPT_TEST_LOG").is_some(),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        subscriber
            .try_init()
            .expect("install the global tracing subscriber");
        buf
    })
    .clone()
}

/// Everything logged so far in this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned()
}
