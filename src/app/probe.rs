//! The upstream part of `popcrypt check`: connect exactly as `serve` does
//! (same TLS configuration, same verification, same STLS rules) and, for the
//! operator, fetch the certificate chain the server presents, whether it
//! verifies or not.
//!
//! The chain is fetched on a second connection whose verifier records the
//! certificates and accepts them: nothing but the TLS handshake happens on
//! it (no POP3 command, no credentials), and it is closed right after. The
//! verdict printed is always that of the first connection, made through
//! [`crate::proxy::upstream::connect`].

use std::sync::{Arc, Mutex};

use openssl::x509::X509;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{secs, Config, UpstreamTls};
use crate::proxy::upstream::{self, UpstreamError};

/// One certificate of the server's chain, as printed.
pub(crate) struct ChainCert {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

/// What the connection to the upstream showed.
pub(crate) struct Probe {
    /// The chain the server presented (empty without TLS or when the
    /// handshake never got that far).
    pub chain: Vec<ChainCert>,
    /// The greeting (`serve` would work), or what failed and what to do.
    pub outcome: Result<String, (String, String)>,
}

/// Connect as `serve` does, then fetch the chain for display.
pub(crate) async fn probe(cfg: &Config) -> Probe {
    let outcome = match upstream::tls_config(cfg) {
        Err(e) => Err((
            format!("TLS settings: {e}"),
            "fix upstream_ca (a PEM file of CA certificates), use_system_roots or upstream_client_cert/upstream_client_key".to_string(),
        )),
        Ok(tls) => match upstream::connect(cfg, &tls).await {
            Ok((mut stream, greeting)) => {
                let _ = upstream::write_all(&mut stream, b"QUIT\r\n", secs(cfg.timeouts.write)).await;
                Ok(String::from_utf8_lossy(&greeting).into_owned())
            }
            Err(e) => Err((e.to_string(), fix_for(&e, cfg))),
        },
    };
    let unreachable = matches!(&outcome, Err((m, _)) if m.starts_with("cannot connect"));
    let chain = if cfg.upstream_tls == UpstreamTls::None || unreachable {
        Vec::new()
    } else {
        fetch_chain(cfg).await
    };
    Probe { chain, outcome }
}

/// What the operator should do about an upstream error.
fn fix_for(e: &UpstreamError, cfg: &Config) -> String {
    match e {
        UpstreamError::Connect { .. } => format!(
            "is the mail server running at {}:{}? check `upstream` (HOST:PORT) and the firewall",
            cfg.upstream_host, cfg.upstream_port
        ),
        UpstreamError::Timeout(_) => {
            "the server did not answer in time: check `upstream`, or raise [timeouts] connect / handshake".into()
        }
        UpstreamError::Tls(m) => {
            let m = m.to_ascii_lowercase().replace([' ', '_'], "");
            if m.contains("unknownissuer") {
                "the server's certificate does not chain to a CA popcrypt trusts: set upstream_ca to the PEM file of the CA that issued it (the last issuer in the chain above)".into()
            } else if m.contains("notvalidforname") {
                format!(
                    "the certificate does not carry the name {:?}: set upstream_server_name to a name it carries, or fix `upstream`",
                    cfg.upstream_server_name
                )
            } else if m.contains("expired") {
                "the server's certificate has expired: its operator must renew it".into()
            } else {
                "check upstream_tls (implicit for port 995, starttls for 110), upstream_ca and upstream_server_name".into()
            }
        }
        UpstreamError::Protocol(_) => {
            "check upstream_tls: implicit for port 995, starttls for port 110".into()
        }
    }
}

/// The chain the server presents, recorded by an accept-all verifier on a
/// connection that carries nothing but the handshake.
async fn fetch_chain(cfg: &Config) -> Vec<ChainCert> {
    let Ok(name) = ServerName::try_from(cfg.upstream_server_name.clone()) else {
        return Vec::new();
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        seen: Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let Ok(builder) =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return Vec::new();
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let limit = secs(cfg.timeouts.connect) + secs(cfg.timeouts.handshake);
    let _ = timeout(limit, async {
        let mut tcp = TcpStream::connect((cfg.upstream_host.as_str(), cfg.upstream_port))
            .await
            .ok()?;
        if cfg.upstream_tls == UpstreamTls::Starttls {
            read_line(&mut tcp).await?;
            tcp.write_all(b"STLS\r\n").await.ok()?;
            if !read_line(&mut tcp).await?.starts_with("+OK") {
                return None;
            }
        }
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        connector.connect(name, tcp).await.ok()
    })
    .await;
    let seen = recorder.seen.lock().map(|s| s.clone()).unwrap_or_default();
    seen.iter().filter_map(|der| describe(der)).collect()
}

/// One line of at most 4 KiB, read a byte at a time (nothing past it).
async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 4096 {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
    }
    None
}

fn describe(der: &CertificateDer<'_>) -> Option<ChainCert> {
    let cert = X509::from_der(der.as_ref()).ok()?;
    let name = |n: &openssl::x509::X509NameRef| {
        n.entries()
            .map(|e| {
                let key = e.object().nid().short_name().unwrap_or("?");
                let val = e.data().to_string().unwrap_or_else(|_| "?".into());
                format!("{key}={val}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(ChainCert {
        subject: name(cert.subject_name()),
        issuer: name(cert.issuer_name()),
        not_before: cert.not_before().to_string(),
        not_after: cert.not_after().to_string(),
    })
}

/// Records the presented chain and accepts it (display only; see the
/// module documentation). Handshake signatures are still checked.
struct Recorder {
    seen: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(end_entity.clone().into_owned());
            seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
