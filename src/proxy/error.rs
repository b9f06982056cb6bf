//! Errors of the I/O layer and of the commands that start it, each saying
//! which side caused it: that decides between telling the client and going
//! on, ending one session, and refusing to start.

use std::io;
use std::net::SocketAddr;

use super::upstream::UpstreamError;
use crate::config::ConfigError;

/// Which side caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The mail server popcrypt relays to.
    Upstream,
    /// The mail client connected to popcrypt.
    Client,
    /// popcrypt itself (a bug or an exhausted resource), neither peer.
    Internal,
    /// The operator's settings: configuration file, flags, keys directory.
    Configuration,
    /// The local system: the listening socket, files named on the command line.
    Local,
}

impl Side {
    /// The side as one word, for logs (`side = "upstream"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Upstream => "upstream",
            Side::Client => "client",
            Side::Internal => "internal",
            Side::Configuration => "configuration",
            Side::Local => "local",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the proxy or of `serve`, `demo` and `decrypt`. The Display
/// text is what the operator or the log is told (after `popcrypt: `).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or the flags are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS settings for the mail server are unusable (an upstream CA
    /// file without certificates, a bad client certificate or key).
    #[error("{0}")]
    Tls(String),
    /// The keys directory could not be loaded.
    #[error("keys: {0}")]
    Keys(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from the configuration.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// A file named on the command line could not be read or written.
    #[error("{what}: {source}")]
    File {
        /// The file, or what was being done with it.
        what: String,
        /// What the system said.
        source: io::Error,
    },
    /// The mail server could not be reached safely.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Reading from or writing to the mail client failed.
    #[error("client connection: {0}")]
    Client(io::Error),
    /// popcrypt failed itself: a transform thread that could not be started
    /// or died without an answer.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Which side caused the error.
    pub fn side(&self) -> Side {
        match self {
            Error::Config(_) | Error::Tls(_) | Error::Keys(_) => Side::Configuration,
            Error::Listen { .. } | Error::File { .. } => Side::Local,
            Error::Upstream(_) => Side::Upstream,
            Error::Client(_) => Side::Client,
            Error::Internal(_) => Side::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_its_side() {
        let io = || io::Error::other("x");
        let cases = [
            (Error::Tls("no PEM".into()), Side::Configuration),
            (Error::Keys("bad".into()), Side::Configuration),
            (
                Error::Config(ConfigError::Invalid("no upstream".into())),
                Side::Configuration,
            ),
            (
                Error::Listen {
                    addr: "127.0.0.1:1".parse().unwrap(),
                    source: io(),
                },
                Side::Local,
            ),
            (
                Error::Upstream(UpstreamError::Timeout("connect")),
                Side::Upstream,
            ),
            (Error::Client(io()), Side::Client),
            (Error::Internal("thread".into()), Side::Internal),
        ];
        for (e, side) in cases {
            assert_eq!(e.side(), side, "{e}");
        }
        assert_eq!(Error::Keys("bad".into()).to_string(), "keys: bad");
        assert_eq!(Side::Internal.to_string(), "internal");
    }
}
