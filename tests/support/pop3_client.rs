//! THE raw POP3 test client: plain TCP to the proxy, every read bounded by
//! [`CLIENT_TIMEOUT`], exact control over the wire (raw lines, pipelining,
//! reading until the close). Async tests use [`Client`]; synchronous tests
//! (the end-to-end suites with a `popcrypt serve` child process) drive the
//! same client through [`Blocking`].
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::mailbox::{PASSWORD, USER};

/// How long any single client read may take before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// [`Client`] driven from a synchronous test, on its own current-thread
/// runtime. Lines come without their CRLF, as from [`Client`].
pub struct Blocking {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Blocking {
    /// Connect to `127.0.0.1:port`.
    pub fn connect(port: u16) -> Blocking {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let client = rt.block_on(Client::connect(SocketAddr::from(([127, 0, 0, 1], port))));
        Blocking { rt, client }
    }

    /// The next line without its terminator, or `None` at EOF.
    pub fn line(&mut self) -> Option<String> {
        self.rt.block_on(self.client.try_line())
    }

    /// Send one command (CRLF added) and return the status line.
    pub fn cmd(&mut self, c: &str) -> String {
        self.rt.block_on(self.client.cmd(c))
    }

    /// The raw bytes of a multi-line body up to and including ".\r\n"
    /// (still dot-stuffed), as text.
    pub fn multi(&mut self) -> String {
        String::from_utf8_lossy(&self.rt.block_on(self.client.multi())).into_owned()
    }

    /// Write raw bytes; false if the proxy had closed.
    pub fn send(&mut self, data: &[u8]) -> bool {
        self.rt.block_on(self.client.send(data))
    }

    /// Everything until the proxy closes the connection (bounded).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        self.rt.block_on(self.client.read_to_close())
    }
}
