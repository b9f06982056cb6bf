//! For in-process proxy tests: a global tracing subscriber (TRACE)
//! capturing into a buffer, `log` records included ([`capture_logs`]), and
//! a count of panics on tokio runtime threads ([`count_panics`]).
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

static WORKER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Install (once per test binary) a panic hook that counts panics on tokio
/// runtime threads (session tasks, transforms, fake servers) and then runs
/// the default hook. A panicking session task is otherwise invisible: the
/// proxy only drops that session.
pub fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // "tokio-rt-worker" (tokio >= 1.50) or "tokio-runtime-worker".
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-r"))
            {
                WORKER_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            prev(info);
        }));
    });
}

/// Panics counted on runtime threads so far (see [`count_panics`]).
pub fn worker_panics() -> usize {
    WORKER_PANICS.load(std::sync::atomic::Ordering::SeqCst)
}

// --------------------------------------------------------------- logging

#[derive(Clone)]
struct LogWriter {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.lock().unwrap().extend_from_slice(data);
        if self.echo {
            eprint!("{}", String::from_utf8_lossy(data));
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install (once per test binary) a global TRACE subscriber that writes
/// into a buffer (and to stderr if `POPCRYPT_TEST_LOG` is set); `log`
/// records (rustls) are captured too. Returns the buffer.
pub fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter {
            buf: buf.clone(),
            echo: std::env::var_os("POPCRYPT_TEST_LOG").is_some(),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        subscriber
            .try_init()
            .expect("install the global tracing subscriber");
        buf
    })
    .clone()
}

/// Everything logged so far in this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned()
}
