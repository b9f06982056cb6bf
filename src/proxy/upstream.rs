//! The connection to the real mail server: TCP, then implicit TLS or STLS,
//! with certificate verification. Never falls back to plaintext.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{secs, Config, UpstreamTls};
use crate::pop3::line::LineBuffer;
use crate::pop3::response::{self, Status};

/// A byte stream to the server, TLS or (test only) plain.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why the mail server could not be reached safely. Each variant is what the
/// client is told (after `-ERR [SYS/TEMP] popcrypt: `) and what the log says.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// DNS or TCP failure.
    #[error("cannot connect to the mail server {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// A step took longer than its timeout.
    #[error("timed out during {0} with the mail server")]
    Timeout(&'static str),
    /// The TLS handshake failed; certificate problems land here.
    #[error("TLS with the mail server failed: {0}")]
    Tls(String),
    /// The server refused STLS or spoke nonsense before TLS.
    #[error("the mail server {0}")]
    Protocol(String),
}

/// Build the rustls client configuration once at start-up.
pub fn tls_config(cfg: &Config) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if cfg.use_system_roots {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // Individual unparsable system certificates are skipped.
            let _ = roots.add(cert);
        }
    }
    if let Some(pem) = &cfg.upstream_ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("upstream CA file: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("upstream CA file: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err("upstream CA file holds no PEM certificate".into());
        }
    }
    if roots.is_empty() {
        return Err("no trust anchors: no system roots found and no --upstream-ca given".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&cfg.upstream_client_cert, &cfg.upstream_client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("client key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Connect, secure the channel, and return it with the server's greeting
/// line (unchanged, terminator removed). Nothing of the client is sent.
pub async fn connect(
    cfg: &Config,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(Box<dyn Stream>, Vec<u8>), UpstreamError> {
    let addr = format!("{}:{}", cfg.upstream_host, cfg.upstream_port);
    let tcp = timeout(
        secs(cfg.timeouts.connect),
        TcpStream::connect((cfg.upstream_host.as_str(), cfg.upstream_port)),
    )
    .await
    .map_err(|_| UpstreamError::Timeout("connect"))?
    .map_err(|source| UpstreamError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let handshake = secs(cfg.timeouts.handshake);
    let max_line = cfg.limits.max_response_line;
    match cfg.upstream_tls {
        UpstreamTls::None => {
            tracing::warn!(upstream = %addr, "upstream connection WITHOUT TLS (--upstream-tls none): test use only");
            let mut stream: Box<dyn Stream> = Box::new(tcp);
            let greeting = timeout(handshake, read_greeting(&mut stream, max_line))
                .await
                .map_err(|_| UpstreamError::Timeout("greeting"))??;
            Ok((stream, greeting))
        }
        UpstreamTls::Implicit => {
            let tls_stream = timeout(handshake, tls_handshake(tcp, cfg, tls))
                .await
                .map_err(|_| UpstreamError::Timeout("TLS handshake"))??;
            let mut stream: Box<dyn Stream> = Box::new(tls_stream);
            let greeting = timeout(handshake, read_greeting(&mut stream, max_line))
                .await
                .map_err(|_| UpstreamError::Timeout("greeting"))??;
            Ok((stream, greeting))
        }
        UpstreamTls::Starttls => timeout(handshake, starttls(tcp, cfg, tls, max_line))
            .await
            .map_err(|_| UpstreamError::Timeout("STLS negotiation"))?,
    }
}

async fn tls_handshake(
    tcp: TcpStream,
    cfg: &Config,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, UpstreamError> {
    let name = ServerName::try_from(cfg.upstream_server_name.clone()).map_err(|_| {
        UpstreamError::Tls(format!(
            "invalid server name {:?}",
            cfg.upstream_server_name
        ))
    })?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamError::Tls(e.to_string()))
}

/// Read one line at a time without reading past it (STLS must not consume
/// bytes that belong to the TLS layer).
async fn read_line_exact<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    max: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let mut lb = LineBuffer::new(max);
    let mut byte = [0u8; 1];
    loop {
        let n = s
            .read(&mut byte)
            .await
            .map_err(|e| UpstreamError::Protocol(format!("connection failed: {e}")))?;
        if n == 0 {
            return Err(UpstreamError::Protocol("closed the connection".into()));
        }
        lb.push(&byte);
        match lb.next_line() {
            Ok(Some(line)) => return Ok(line),
            Ok(None) => {}
            Err(e) => return Err(UpstreamError::Protocol(format!("sent a {e}"))),
        }
    }
}

async fn read_greeting<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    max: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let line = read_line_exact(s, max).await?;
    match response::status(&line) {
        Some(Status::Ok) => Ok(line),
        Some(Status::Err) => Err(UpstreamError::Protocol(format!(
            "refused the connection: {}",
            String::from_utf8_lossy(response::status_text(&line))
        ))),
        _ => Err(UpstreamError::Protocol(
            "sent an invalid greeting (is this a POP3 server?)".into(),
        )),
    }
}

async fn starttls(
    mut tcp: TcpStream,
    cfg: &Config,
    tls: &Arc<rustls::ClientConfig>,
    max_line: usize,
) -> Result<(Box<dyn Stream>, Vec<u8>), UpstreamError> {
    let greeting = read_greeting(&mut tcp, max_line).await?;
    tcp.write_all(b"STLS\r\n")
        .await
        .map_err(|e| UpstreamError::Protocol(format!("connection failed: {e}")))?;
    let answer = read_line_exact(&mut tcp, max_line).await?;
    if response::status(&answer) != Some(Status::Ok) {
        return Err(UpstreamError::Protocol(format!(
            "refused STLS ({}); popcrypt does not fall back to plaintext",
            String::from_utf8_lossy(&answer)
        )));
    }
    // Anything sent before the handshake would be plaintext injected into
    // the TLS session (CVE-2011-0411 class): refuse.
    let mut probe = [0u8; 1];
    if let Ok(Ok(n)) = timeout(std::time::Duration::from_millis(0), tcp.peek(&mut probe)).await {
        if n > 0 {
            // Bytes already waiting are a TLS ServerHello only if the server
            // jumped ahead; a ServerHello cannot come before our ClientHello.
            return Err(UpstreamError::Protocol(
                "sent data after the STLS answer before the TLS handshake".into(),
            ));
        }
    }
    let stream = tls_handshake(tcp, cfg, tls).await?;
    Ok((Box::new(stream), greeting))
}

/// Write all bytes with a timeout.
pub async fn write_all<S: AsyncWrite + Unpin + ?Sized>(
    s: &mut S,
    data: &[u8],
    limit: std::time::Duration,
) -> io::Result<()> {
    match timeout(limit, async {
        s.write_all(data).await?;
        s.flush().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}
