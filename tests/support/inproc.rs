//! The real popcrypt proxy, in-process on port 0, in front of a
//! [`FakeServer`](super::fake_server::FakeServer) (its logs captured by
//! [`super::logs`], panics on runtime threads counted).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use popcrypt::config::{Config, FileConfig, UpstreamTls};
use popcrypt::message::Transformer;
use popcrypt::proxy::{Context, Proxy, SessionCount};

use super::fake_server::SERVER_WAIT;
use super::logs::{capture_logs, count_panics, worker_panics};
use super::pop3_client::Client;

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
