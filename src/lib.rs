//! popcrypt: a POP3 proxy that speaks verified TLS upstream and, on RETR and
//! TOP, decrypts and verifies OpenPGP and S/MIME mail for legacy clients.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod limits;
pub mod message;
pub mod pop3;
pub mod proxy;
pub mod text;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
