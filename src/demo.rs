//! `popcrypt demo`: a built-in POP3-over-TLS server on loopback with a
//! sample mailbox (DEMO-ONLY keys from `keys/demo/`), the proxy in front of
//! it, and a built-in client that fetches the mailbox once through the proxy.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{Config, FileConfig, UpstreamTls};
use crate::message::Transformer;
use crate::pop3::command::Command;
use crate::pop3::line::LineBuffer;
use crate::pop3::response::{self, status_line};
use crate::proxy::{Context, Proxy};

/// DEMO ONLY: the demo CA, published with the source.
pub const DEMO_CA_PEM: &[u8] = include_bytes!("../keys/demo/ca.pem");
const DEMO_CERT_PEM: &[u8] = include_bytes!("../keys/demo/server.pem");
const DEMO_KEY_PEM: &[u8] = include_bytes!("../keys/demo/server.key");

/// The demo account.
pub const DEMO_USER: &str = "demo";
/// The demo password (it protects nothing real).
pub const DEMO_PASSWORD: &str = "demo-password";

/// DEMO ONLY OpenPGP keys: the demo user's secret key and correspondents'
/// certificates (file name, bytes).
const DEMO_OPENPGP: &[(&str, &[u8])] = &[
    (
        "demo-recipient.sec.asc",
        include_bytes!("../keys/demo/openpgp/demo-recipient.sec.asc"),
    ),
    (
        "alice.pub.asc",
        include_bytes!("../keys/demo/openpgp/alice.pub.asc"),
    ),
    (
        "bob-rsa.pub.asc",
        include_bytes!("../keys/demo/openpgp/bob-rsa.pub.asc"),
    ),
];

/// DEMO ONLY S/MIME identity (certificate + key) and trusted CA.
const DEMO_SMIME_IDENTITY: &[u8] = include_bytes!("../keys/demo/smime/demo.pem");
const DEMO_SMIME_TRUST: &[u8] = include_bytes!("../keys/demo/trust/demo-smime-root-ca.pem");

/// Encrypted and signed samples (made with GnuPG and openssl from the demo keys).
const DEMO_SAMPLES: &[&[u8]] = &[
    include_bytes!("../keys/demo/samples/openpgp-encrypted.eml"),
    include_bytes!("../keys/demo/samples/openpgp-signed.eml"),
    include_bytes!("../keys/demo/samples/openpgp-tampered.eml"),
    include_bytes!("../keys/demo/samples/smime-encrypted.eml"),
    include_bytes!("../keys/demo/samples/smime-signed.eml"),
    include_bytes!("../keys/demo/samples/smime-tampered.eml"),
];

/// The demo keyring, built from the embedded DEMO-ONLY keys.
pub fn demo_keyring() -> Result<crate::keys::Keyring, String> {
    let mut ring = crate::keys::Keyring::default();
    for (name, bytes) in DEMO_OPENPGP {
        ring.openpgp
            .add_bytes(std::path::Path::new(name), bytes, None)
            .map_err(|e| e.to_string())?;
    }
    ring.smime.add_pem_identity(DEMO_SMIME_IDENTITY)?;
    ring.smime.add_trust_pem(DEMO_SMIME_TRUST)?;
    Ok(ring)
}

/// The sample mailbox, CRLF line ends.
pub fn sample_mailbox() -> Vec<Vec<u8>> {
    let msgs: [&str; 3] = [
        "From: popcrypt <demo@popcrypt.invalid>\nTo: you <demo@popcrypt.invalid>\nSubject: Welcome to popcrypt\nDate: Thu, 26 Nov 2026 12:00:00 +0000\nMessage-ID: <welcome@popcrypt.invalid>\nContent-Type: text/plain; charset=utf-8\n\nThis message travelled over TLS from the demo server to popcrypt,\nand in plain POP3 from popcrypt to your client on this machine.\n\nLook at the X-Popcrypt-Encryption and X-Popcrypt-Signature headers.\n",
        "From: Dot Tester <dots@popcrypt.invalid>\nTo: you <demo@popcrypt.invalid>\nSubject: Lines that start with a dot\nDate: Thu, 26 Nov 2026 12:01:00 +0000\nMessage-ID: <dots@popcrypt.invalid>\n\nThe next line is a single dot, and it is part of the message:\n.\n.and this line starts with a dot too.\n",
        "From: Mallory <mallory@popcrypt.invalid>\nTo: you <demo@popcrypt.invalid>\nSubject: I claim to be signed\nDate: Thu, 26 Nov 2026 12:02:00 +0000\nMessage-ID: <forged@popcrypt.invalid>\nX-Popcrypt-Signature: openpgp; good; signer=FORGED\n\nThis mail arrived with a forged X-Popcrypt-Signature header.\npopcrypt removed it before adding its own.\n",
    ];
    msgs.iter()
        .map(|m| m.replace('\n', "\r\n").into_bytes())
        .chain(
            DEMO_SAMPLES
                .iter()
                .map(|m| crate::pop3::response::crlf_lines(m)),
        )
        .collect()
}

/// Run the demo. With `once`, exit after the built-in fetch.
pub async fn run(listen: SocketAddr, once: bool) -> ExitCode {
    match run_inner(listen, once).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popcrypt demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(listen: SocketAddr, once: bool) -> Result<(), String> {
    let mailbox = Arc::new(Mutex::new(sample_mailbox()));
    let server = DemoServer::bind(mailbox).await?;
    let upstream = server.addr;
    tokio::spawn(server.run());
    let file = FileConfig {
        listen: Some(listen.to_string()),
        upstream: Some(format!("localhost:{}", upstream.port())),
        upstream_tls: Some(UpstreamTls::Implicit),
        use_system_roots: Some(false),
        ..FileConfig::default()
    };
    let mut config = Config::from_file_config(file).map_err(|e| e.to_string())?;
    config.upstream_ca_pem = Some(DEMO_CA_PEM.to_vec());
    let keys = demo_keyring()?;
    let ctx = Context::new(
        config,
        Transformer::with_keys(
            keys,
            crate::pop3::session::EngineLimits::default().max_message_size,
        ),
    )?;
    let proxy = Proxy::bind(ctx)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e} (try --listen 127.0.0.1:0)"))?;
    let addr = proxy.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let proxy_task = tokio::spawn(proxy.run(async move {
        let _ = stop_rx.await;
    }));

    println!("popcrypt demo");
    println!(
        "  demo POP3 server (TLS, DEMO-ONLY certificate): 127.0.0.1:{}",
        upstream.port()
    );
    println!("  popcrypt proxy (plain POP3 for your client):   {addr}");
    println!();
    println!("Fetching the demo mailbox through the proxy ...");
    let fetched = fetch_all(addr, DEMO_USER, DEMO_PASSWORD).await?;
    for (i, msg) in fetched.iter().enumerate() {
        println!("--- message {} ({} octets)", i + 1, msg.len());
        for name in [
            "Subject",
            "From",
            "X-Popcrypt-Encryption",
            "X-Popcrypt-Signature",
        ] {
            for value in header_values(msg, name) {
                println!("  {name}: {value}");
            }
        }
    }
    println!();
    if once {
        let _ = stop_tx.send(());
        let _ = proxy_task.await;
        return Ok(());
    }
    println!("Now point a mail client at it:");
    println!("  server:   {}   port: {}", addr.ip(), addr.port());
    println!("  security: none (plain POP3; popcrypt does the TLS upstream)");
    println!("  user:     {DEMO_USER}");
    println!("  password: {DEMO_PASSWORD}");
    println!("e.g.  curl pop3://{DEMO_USER}:{DEMO_PASSWORD}@{addr}/1");
    println!("Press Ctrl-C to stop.");
    crate::shutdown_signal().await;
    let _ = stop_tx.send(());
    let _ = proxy_task.await;
    Ok(())
}

/// All values of a header field in a message's header block (unfolded).
pub fn header_values(msg: &[u8], name: &str) -> Vec<String> {
    let head = &msg[..crate::message::header_end(msg)];
    let text = String::from_utf8_lossy(head)
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    text.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .collect()
}

// ---------------------------------------------------------------- client

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

// ---------------------------------------------------------------- server

/// The demo's built-in POP3-over-TLS server.
pub struct DemoServer {
    /// Where it listens (127.0.0.1, random port).
    pub addr: SocketAddr,
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mailbox: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl DemoServer {
    /// Bind on 127.0.0.1 with a random port.
    pub async fn bind(mailbox: Arc<Mutex<Vec<Vec<u8>>>>) -> Result<DemoServer, String> {
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
    mailbox: Arc<Mutex<Vec<Vec<u8>>>>,
) -> std::io::Result<()> {
    s.write_all(b"+OK popcrypt demo server ready\r\n").await?;
    let mut lines = LineBuffer::new(4096);
    let mut buf = [0u8; 4096];
    let mut user_ok = false;
    let mut logged_in = false;
    let mut deleted: Vec<bool> = Vec::new();
    let snapshot = |m: &Arc<Mutex<Vec<Vec<u8>>>>| m.lock().map(|v| v.clone()).unwrap_or_default();
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    loop {
        let line = loop {
            match lines.next_line() {
                Ok(Some(l)) => break l,
                Ok(None) => {}
                Err(_) => return Ok(()),
            }
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(()); // no QUIT: nothing deleted
            }
            lines.push(&buf[..n]);
        };
        let get = |n: u32, deleted: &[bool]| -> Option<usize> {
            let i = (n as usize).checked_sub(1)?;
            (i < deleted.len() && !deleted[i]).then_some(i)
        };
        let mut out = Vec::new();
        match (Command::parse(&line), logged_in) {
            (Ok(Command::Capa), _) => out.extend_from_slice(
                b"+OK\r\nTOP\r\nUSER\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nIMPLEMENTATION popcrypt-demo\r\n.\r\n",
            ),
            (Ok(Command::User(u)), false) => {
                user_ok = u == DEMO_USER;
                out = status_line(true, "send PASS");
            }
            (Ok(Command::Pass(p)), false) => {
                if user_ok && p.expose() == DEMO_PASSWORD.as_bytes() {
                    logged_in = true;
                    msgs = snapshot(&mailbox);
                    deleted = vec![false; msgs.len()];
                    out = status_line(true, "logged in");
                } else {
                    out = status_line(false, "[AUTH] invalid user name or password");
                }
            }
            (Ok(Command::Quit), _) => {
                if logged_in {
                    if let Ok(mut m) = mailbox.lock() {
                        let keep: Vec<Vec<u8>> = msgs
                            .iter()
                            .zip(&deleted)
                            .filter(|(_, d)| !**d)
                            .map(|(m, _)| m.clone())
                            .collect();
                        *m = keep;
                    }
                }
                s.write_all(b"+OK bye\r\n").await?;
                return Ok(());
            }
            (Ok(Command::Stat), true) => {
                let live: Vec<&Vec<u8>> = msgs.iter().zip(&deleted).filter(|(_, d)| !**d).map(|(m, _)| m).collect();
                let size: usize = live.iter().map(|m| m.len()).sum();
                out = status_line(true, &format!("{} {}", live.len(), size));
            }
            (Ok(Command::List(None)), true) | (Ok(Command::Uidl(None)), true) => {
                let uidl = matches!(Command::parse(&line), Ok(Command::Uidl(_)));
                out = status_line(true, "");
                for (i, m) in msgs.iter().enumerate() {
                    if !deleted[i] {
                        let v = if uidl { format!("demo-{}", i + 1) } else { m.len().to_string() };
                        out.extend_from_slice(format!("{} {v}\r\n", i + 1).as_bytes());
                    }
                }
                out.extend_from_slice(response::TERMINATOR);
            }
            (Ok(Command::List(Some(n))), true) => match get(n, &deleted) {
                Some(i) => out = status_line(true, &format!("{n} {}", msgs[i].len())),
                None => out = status_line(false, "no such message"),
            },
            (Ok(Command::Uidl(Some(n))), true) => match get(n, &deleted) {
                Some(_) => out = status_line(true, &format!("{n} demo-{n}")),
                None => out = status_line(false, "no such message"),
            },
            (Ok(Command::Retr(n)), true) | (Ok(Command::Top(n, _)), true) => match get(n, &deleted) {
                Some(i) => {
                    out = status_line(true, "message follows");
                    let body = match Command::parse(&line) {
                        Ok(Command::Top(_, l)) => crate::pop3::session::top_lines(&msgs[i], l),
                        _ => &msgs[i][..],
                    };
                    response::stuff_message(&mut out, body);
                    out.extend_from_slice(response::TERMINATOR);
                }
                None => out = status_line(false, "no such message"),
            },
            (Ok(Command::Dele(n)), true) => match get(n, &deleted) {
                Some(i) => {
                    deleted[i] = true;
                    out = status_line(true, "deleted");
                }
                None => out = status_line(false, "no such message"),
            },
            (Ok(Command::Rset), true) => {
                deleted.iter_mut().for_each(|d| *d = false);
                out = status_line(true, "");
            }
            (Ok(Command::Noop), true) => out = status_line(true, ""),
            _ => out = status_line(false, "not supported by the demo server"),
        }
        s.write_all(&out).await?;
    }
}
