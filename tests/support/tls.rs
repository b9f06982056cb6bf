//! THE test CA ([`TestCa`]) and rustls server configurations made from
//! its certificates (plain, TLS 1.2 only, mutual TLS).
#![allow(dead_code)]

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// THE test certificate authority (ECDSA P-256, generated with rcgen), for
/// the fake servers and for Dovecot alike.
///
/// Every `TestCa::new` is a fresh, unrelated CA, so a second instance is an
/// "untrusted CA" relative to the first one (see also [`untrusted_ca_pem`]).
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A server certificate and its key, as DER for rustls and as PEM files
/// want them.
pub struct Issued {
    /// The server certificate, then the CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The server certificate alone, PEM.
    pub cert_pem: String,
    /// Its key, PKCS#8 PEM.
    pub key_pem: String,
}

impl TestCa {
    /// A new self-signed CA certificate (BasicConstraints CA:TRUE, critical)
    /// with the given common name.
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "popcrypt tests");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate as PEM (what a client is told to trust).
    pub fn pem(&self) -> Vec<u8> {
        self.cert.pem().into_bytes()
    }

    /// A server certificate for `names` (DNS names or IP addresses; each
    /// becomes a SAN, the first one is also the CN).
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// A server certificate with extra tweaks (validity dates, ...). Key
    /// usage digitalSignature, extended key usage serverAuth and an
    /// authority key identifier, as strict verifiers (Python's ssl
    /// module with VERIFY_X509_STRICT) want them.
    pub fn issue_with(
        &self,
        names: &[&str],
        tweak: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Issued {
        assert!(!names.is_empty(), "TestCa::issue needs at least one name");
        let key = rcgen::KeyPair::generate().expect("server key");
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).expect("server params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        tweak(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        Issued {
            chain: vec![cert.der().clone(), self.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A rustls server configuration for `names`.
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        server_config(self.issue(names))
    }
}

/// PEM of a brand-new CA that has signed nothing: use it wherever a client
/// must be configured with a CA that does NOT trust the server.
pub fn untrusted_ca_pem() -> String {
    String::from_utf8(TestCa::new("popcrypt untrusted test CA").pem()).expect("PEM is ASCII")
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
