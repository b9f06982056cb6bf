//! The demo's built-in POP3 client: logs in through the proxy and fetches
//! every message once.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pop3::line::LineBuffer;
use crate::pop3::response;

struct Client<S> {
    s: S,
    lines: LineBuffer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    async fn line(&mut self) -> Result<Vec<u8>, String> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(l) = self.lines.next_line().map_err(|e| e.to_string())? {
                return Ok(l);
            }
            let n = tokio::time::timeout(Duration::from_secs(30), self.s.read(&mut buf))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.lines.push(&buf[..n]);
        }
    }

    async fn cmd(&mut self, c: &[u8]) -> Result<Vec<u8>, String> {
        self.s.write_all(c).await.map_err(|e| e.to_string())?;
        self.s.write_all(b"\r\n").await.map_err(|e| e.to_string())?;
        let l = self.line().await?;
        if response::status(&l) != Some(response::Status::Ok) {
            return Err(format!("server said: {}", String::from_utf8_lossy(&l)));
        }
        Ok(l)
    }

    async fn multiline(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await?;
            match response::unstuff(&l) {
                response::DataLine::End => return Ok(out),
                response::DataLine::Content(c) => {
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

/// Log in over plain POP3 and RETR every message (no deletion).
pub async fn fetch_all(addr: SocketAddr, user: &str, pass: &str) -> Result<Vec<Vec<u8>>, String> {
    let s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut c = Client {
        s,
        lines: LineBuffer::new(1 << 20),
    };
    let greeting = c.line().await?;
    if response::status(&greeting) != Some(response::Status::Ok) {
        return Err(format!(
            "proxy said: {}",
            String::from_utf8_lossy(&greeting)
        ));
    }
    c.cmd(format!("USER {user}").as_bytes()).await?;
    c.cmd(format!("PASS {pass}").as_bytes()).await?;
    let stat = c.cmd(b"STAT").await?;
    let count: usize = String::from_utf8_lossy(response::status_text(&stat))
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("bad STAT answer")?;
    let mut out = Vec::new();
    for i in 1..=count {
        c.cmd(format!("RETR {i}").as_bytes()).await?;
        out.push(c.multiline().await?);
    }
    c.cmd(b"QUIT").await?;
    Ok(out)
}
