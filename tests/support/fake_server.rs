//! A scriptable POP3 server on loopback, for fault injection: implicit TLS,
//! STLS (with injected bytes after the answer) or plain TCP, recording
//! everything each connection received ([`ConnRecord`]). The standard
//! mailbox it can fall back to is in [`super::mailbox`].
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long to wait for the fake server to reach an expected state.
pub const SERVER_WAIT: Duration = Duration::from_secs(10);

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
