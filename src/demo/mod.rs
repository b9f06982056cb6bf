//! `popcrypt demo`: a built-in POP3-over-TLS server on loopback with a
//! sample mailbox (DEMO-ONLY keys from `keys/demo/`), the proxy in front of
//! it, and a built-in client that fetches the mailbox once through the proxy.

mod client;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::config::{Config, FileConfig, UpstreamTls};
use crate::message::Transformer;
use crate::proxy::{Context, Proxy};

pub use client::fetch_all;
pub use server::DemoServer;

/// DEMO ONLY: the demo CA, published with the source.
pub const DEMO_CA_PEM: &[u8] = include_bytes!("../../keys/demo/ca.pem");
const DEMO_CERT_PEM: &[u8] = include_bytes!("../../keys/demo/server.pem");
const DEMO_KEY_PEM: &[u8] = include_bytes!("../../keys/demo/server.key");

/// The demo account.
pub const DEMO_USER: &str = "demo";
/// The demo password (it protects nothing real).
pub const DEMO_PASSWORD: &str = "demo-password";

/// DEMO ONLY OpenPGP keys: the demo user's secret key and correspondents'
/// certificates (file name, bytes).
const DEMO_OPENPGP: &[(&str, &[u8])] = &[
    (
        "demo-recipient.sec.asc",
        include_bytes!("../../keys/demo/openpgp/demo-recipient.sec.asc"),
    ),
    (
        "alice.pub.asc",
        include_bytes!("../../keys/demo/openpgp/alice.pub.asc"),
    ),
    (
        "bob-rsa.pub.asc",
        include_bytes!("../../keys/demo/openpgp/bob-rsa.pub.asc"),
    ),
];

/// DEMO ONLY S/MIME identity (certificate + key) and trusted CA.
const DEMO_SMIME_IDENTITY: &[u8] = include_bytes!("../../keys/demo/smime/demo.pem");
const DEMO_SMIME_TRUST: &[u8] = include_bytes!("../../keys/demo/trust/demo-smime-root-ca.pem");

/// Encrypted and signed samples (made with GnuPG and openssl from the demo keys).
const DEMO_SAMPLES: &[&[u8]] = &[
    include_bytes!("../../keys/demo/samples/openpgp-encrypted.eml"),
    include_bytes!("../../keys/demo/samples/openpgp-signed.eml"),
    include_bytes!("../../keys/demo/samples/openpgp-tampered.eml"),
    include_bytes!("../../keys/demo/samples/smime-encrypted.eml"),
    include_bytes!("../../keys/demo/samples/smime-signed.eml"),
    include_bytes!("../../keys/demo/samples/smime-tampered.eml"),
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
        Transformer::with_keys(keys, crate::limits::MAX_MESSAGE_SIZE),
    )
    .map_err(|e| e.to_string())?;
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
