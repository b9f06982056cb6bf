//! The demo's built-in POP3-over-TLS server on loopback, serving the sample
//! mailbox to the proxy (DEMO-ONLY certificate).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{DEMO_CERT_PEM, DEMO_KEY_PEM, DEMO_PASSWORD, DEMO_USER};
use crate::pop3::command::Command;
use crate::pop3::line::LineBuffer;
use crate::pop3::response::{self, status_line};

/// The mailbox the demo server serves; QUIT commits deletions to it.
type Mailbox = Arc<Mutex<Vec<Vec<u8>>>>;

/// The demo's built-in POP3-over-TLS server.
pub struct DemoServer {
    /// Where it listens (127.0.0.1, random port).
    pub addr: SocketAddr,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mailbox: Mailbox,
}

impl DemoServer {
    /// Bind on 127.0.0.1 with a random port.
    pub async fn bind(mailbox: Mailbox) -> Result<DemoServer, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(DEMO_CERT_PEM)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::from_pem_slice(DEMO_KEY_PEM).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        Ok(DemoServer {
            addr: listener.local_addr().map_err(|e| e.to_string())?,
            listener,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
            mailbox,
        })
    }

    /// Serve forever.
    pub async fn run(self) {
        while let Ok((sock, _)) = self.listener.accept().await {
            let acceptor = self.acceptor.clone();
            let mailbox = self.mailbox.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(sock).await {
                    let _ = serve_demo_session(tls, mailbox).await;
                }
            });
        }
    }
}

async fn serve_demo_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    mailbox: Mailbox,
) -> std::io::Result<()> {
    s.write_all(b"+OK popcrypt demo server ready\r\n").await?;
    let mut lines = LineBuffer::new(4096);
    let mut session = DemoSession::default();
    loop {
        let Some(line) = read_line(&mut s, &mut lines).await? else {
            return Ok(()); // no QUIT (or an over-long line): nothing deleted
        };
        match session.answer(&line, &mailbox) {
            Step::Reply(out) => s.write_all(&out).await?,
            Step::Bye => {
                s.write_all(b"+OK bye\r\n").await?;
                return Ok(());
            }
        }
    }
}

/// The next command line; `None` when the client left or sent a line too long.
async fn read_line<S: AsyncRead + Unpin>(
    s: &mut S,
    lines: &mut LineBuffer,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    loop {
        match lines.next_line() {
            Ok(Some(l)) => return Ok(Some(l)),
            Ok(None) => {}
            Err(_) => return Ok(None),
        }
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        lines.push(&buf[..n]);
    }
}

/// What the session does after a command.
enum Step {
    /// Send this answer and read the next command.
    Reply(Vec<u8>),
    /// QUIT: say goodbye and end.
    Bye,
}

/// One demo session: login state, and the mailbox as it was at login.
#[derive(Default)]
struct DemoSession {
    user_ok: bool,
    logged_in: bool,
    msgs: Vec<Vec<u8>>,
    deleted: Vec<bool>,
}

const CAPA: &[u8] =
    b"+OK\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nIMPLEMENTATION popcrypt-demo\r\n.\r\n";

fn not_supported() -> Vec<u8> {
    status_line(false, "not supported by the demo server")
}

fn no_such_message() -> Vec<u8> {
    status_line(false, "no such message")
}

impl DemoSession {
    fn answer(&mut self, line: &[u8], mailbox: &Mailbox) -> Step {
        let Ok(cmd) = Command::parse(line) else {
            return Step::Reply(not_supported());
        };
        match cmd {
            Command::Capa => Step::Reply(CAPA.to_vec()),
            Command::Quit => {
                self.commit(mailbox);
                Step::Bye
            }
            c if !self.logged_in => Step::Reply(self.authorization(c, mailbox)),
            c => Step::Reply(self.transaction(c)),
        }
    }

    /// QUIT after login: the messages not deleted stay.
    fn commit(&self, mailbox: &Mailbox) {
        if !self.logged_in {
            return;
        }
        if let Ok(mut m) = mailbox.lock() {
            *m = self.live().map(|(_, m)| m.clone()).collect();
        }
    }

    /// The messages not deleted, with their index.
    fn live(&self) -> impl Iterator<Item = (usize, &Vec<u8>)> {
        self.msgs
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    /// Message number `n` if it exists and is not deleted, as an index.
    fn get(&self, n: u32) -> Option<usize> {
        let i = (n as usize).checked_sub(1)?;
        (i < self.deleted.len() && !self.deleted[i]).then_some(i)
    }

    fn authorization(&mut self, cmd: Command, mailbox: &Mailbox) -> Vec<u8> {
        match cmd {
            Command::User(u) => {
                self.user_ok = u == DEMO_USER;
                status_line(true, "send PASS")
            }
            Command::Pass(p) if self.user_ok && p.expose() == DEMO_PASSWORD.as_bytes() => {
                self.logged_in = true;
                self.msgs = mailbox.lock().map(|v| v.clone()).unwrap_or_default();
                self.deleted = vec![false; self.msgs.len()];
                status_line(true, "logged in")
            }
            Command::Pass(_) => status_line(false, "[AUTH] invalid user name or password"),
            _ => not_supported(),
        }
    }

    fn transaction(&mut self, cmd: Command) -> Vec<u8> {
        match cmd {
            Command::Stat => {
                let (count, size) = self
                    .live()
                    .fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.len()));
                status_line(true, &format!("{count} {size}"))
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(_));
                let mut out = status_line(true, "");
                for (i, m) in self.live() {
                    let v = if uidl {
                        format!("demo-{}", i + 1)
                    } else {
                        m.len().to_string()
                    };
                    out.extend_from_slice(format!("{} {v}\r\n", i + 1).as_bytes());
                }
                out.extend_from_slice(response::TERMINATOR);
                out
            }
            Command::List(Some(n)) => match self.get(n) {
                Some(i) => status_line(true, &format!("{n} {}", self.msgs[i].len())),
                None => no_such_message(),
            },
            Command::Uidl(Some(n)) => match self.get(n) {
                Some(_) => status_line(true, &format!("{n} demo-{n}")),
                None => no_such_message(),
            },
            Command::Retr(n) | Command::Top(n, _) => self.retr(&cmd, n),
            Command::Dele(n) => match self.get(n) {
                Some(i) => {
                    self.deleted[i] = true;
                    status_line(true, "deleted")
                }
                None => no_such_message(),
            },
            Command::Rset => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                status_line(true, "")
            }
            Command::Noop => status_line(true, ""),
            _ => not_supported(),
        }
    }

    /// RETR n, or TOP n l.
    fn retr(&self, cmd: &Command, n: u32) -> Vec<u8> {
        let Some(i) = self.get(n) else {
            return no_such_message();
        };
        let mut out = status_line(true, "message follows");
        let body = match cmd {
            Command::Top(_, l) => crate::pop3::engine::top_lines(&self.msgs[i], *l),
            _ => &self.msgs[i][..],
        };
        response::stuff_message(&mut out, body);
        out.extend_from_slice(response::TERMINATOR);
        out
    }
}
