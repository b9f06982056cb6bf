//! The I/O: listener, sessions, upstream connections. Nothing here knows
//! about OpenPGP or S/MIME; messages go to `message::Transformer`.

pub mod listener;
pub mod session;
pub mod upstream;

use std::sync::Arc;

use crate::config::Config;
use crate::message::Transformer;

pub use listener::{Proxy, SessionCount};

/// What every session shares.
pub struct Context {
    pub config: Config,
    pub tls: Arc<rustls::ClientConfig>,
    pub transformer: Arc<Transformer>,
}

impl Context {
    /// Build the shared state; fails on unusable TLS settings.
    pub fn new(config: Config, transformer: Transformer) -> Result<Arc<Context>, String> {
        let tls = upstream::tls_config(&config)?;
        Ok(Arc::new(Context {
            config,
            tls,
            transformer: Arc::new(transformer),
        }))
    }
}
