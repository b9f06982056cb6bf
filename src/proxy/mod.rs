//! The I/O: listener, sessions, upstream connections. Nothing here knows
//! about OpenPGP or S/MIME; messages go to `message::Transformer`.

pub mod error;
pub mod listener;
pub mod proxy_protocol;
pub mod session;
pub mod upstream;

use std::sync::Arc;

use crate::config::Config;
use crate::message::Transformer;

pub use error::{Error, Side};
pub use listener::{Proxy, SessionCount};

/// What every session shares.
pub struct Context {
    pub config: Config,
    pub tls: Arc<rustls::ClientConfig>,
    pub transformer: Arc<Transformer>,
}

impl Context {
    /// Build the shared state; fails on unusable TLS settings
    /// ([`Error::Tls`]).
    pub fn new(config: Config, transformer: Transformer) -> Result<Arc<Context>, Error> {
        let tls = upstream::tls_config(&config).map_err(Error::Tls)?;
        Ok(Arc::new(Context {
            config,
            tls,
            transformer: Arc::new(transformer),
        }))
    }
}
