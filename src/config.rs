//! One validated configuration from a TOML file plus command-line overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pop3::engine::EngineLimits;

/// How popcrypt talks TLS to the mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    /// TLS from the first byte (RFC 8314), usually port 995.
    Implicit,
    /// Plain connection upgraded with STLS (RFC 2595), usually port 110.
    Starttls,
    /// No TLS at all: only for test servers on loopback, logged loudly.
    None,
}

/// What to do with messages whose signature is not good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SignaturePolicy {
    #[default]
    /// Add the verdict headers only.
    Annotate,
    /// Also tag the Subject.
    Tag,
    /// Replace messages with bad signatures by a notice, original attached.
    Quarantine,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Limits, all with defaults (see README).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_command_line: usize,
    pub max_response_line: usize,
    pub max_message_size: usize,
    pub max_header_block: usize,
    pub max_sessions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let e = EngineLimits::default();
        Limits {
            max_command_line: e.max_command_line,
            max_response_line: e.max_response_line,
            max_message_size: e.max_message_size,
            max_header_block: e.max_header_block,
            max_sessions: 64,
        }
    }
}

/// Timeouts in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP connect to the mail server.
    pub connect: f64,
    /// TLS handshake (and STLS negotiation) with the mail server.
    pub handshake: f64,
    /// How long a client may stay silent (RFC 1939: at least 10 minutes).
    pub client_idle: f64,
    /// How long one command line (or SASL response) may take to arrive,
    /// from its first octet to its line end: ends slowloris clients that
    /// dribble a byte at a time to stay under the idle timeout.
    pub command: f64,
    /// How long the mail server may take to send the next bytes of an answer.
    pub upstream_response: f64,
    /// How long a write to either side may block.
    pub write: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: 30.0,
            handshake: 30.0,
            client_idle: 600.0,
            command: 60.0,
            upstream_response: 120.0,
            write: 120.0,
        }
    }
}

/// The file format: every field optional, flags override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub upstream_tls: Option<UpstreamTls>,
    pub upstream_ca: Option<PathBuf>,
    pub upstream_server_name: Option<String>,
    pub upstream_client_cert: Option<PathBuf>,
    pub upstream_client_key: Option<PathBuf>,
    pub use_system_roots: Option<bool>,
    pub keys: Option<PathBuf>,
    /// File whose first line is the passphrase for protected secret keys.
    pub keys_passphrase_file: Option<PathBuf>,
    /// Environment variable holding that passphrase.
    pub keys_passphrase_env: Option<String>,
    /// Also trust the system CA store for S/MIME signatures (off by default).
    pub smime_system_roots: Option<bool>,
    pub signature_policy: Option<SignaturePolicy>,
    pub allow_plaintext_non_loopback: Option<bool>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// A configuration error, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Host name (or address) and port of the mail server.
    pub upstream_host: String,
    pub upstream_port: u16,
    pub upstream_tls: UpstreamTls,
    /// The name the server certificate must carry (defaults to the host).
    pub upstream_server_name: String,
    /// Extra trust anchors (PEM) for the server certificate.
    pub upstream_ca_pem: Option<Vec<u8>>,
    pub use_system_roots: bool,
    pub upstream_client_cert: Option<PathBuf>,
    pub upstream_client_key: Option<PathBuf>,
    pub keys: Option<PathBuf>,
    pub keys_passphrase: crate::keys::PassphraseSource,
    pub smime_system_roots: bool,
    pub signature_policy: SignaturePolicy,
    pub allow_plaintext_non_loopback: bool,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub timeouts: Timeouts,
}

impl Config {
    /// Read a TOML file.
    pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: parse_error_without_source(&text, &e),
        })
    }

    /// Validate a merged file configuration.
    pub fn from_file_config(f: FileConfig) -> Result<Config, ConfigError> {
        let listen_s = f.listen.unwrap_or_else(|| "127.0.0.1:1110".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            ConfigError::Invalid(format!("listen address {listen_s:?} is not IP:PORT"))
        })?;
        let upstream = f.upstream.ok_or_else(|| {
            ConfigError::Invalid(
                "no upstream server: give --upstream HOST:PORT or `upstream` in the config file"
                    .into(),
            )
        })?;
        let (host, port) = split_host_port(&upstream)?;
        let upstream_tls = f.upstream_tls.unwrap_or(UpstreamTls::Implicit);
        if upstream_tls == UpstreamTls::None && !is_loopback_host(&host) {
            return Err(ConfigError::Invalid(format!(
                "--upstream-tls none is only allowed for loopback test servers, not {host}"
            )));
        }
        let allow = f.allow_plaintext_non_loopback.unwrap_or(false);
        if !listen.ip().is_loopback() && !allow {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {listen}: clients speak plain POP3 to popcrypt, so passwords \
                 would cross the network unencrypted. Listen on 127.0.0.1, or set \
                 allow_plaintext_non_loopback = true (--allow-plaintext-non-loopback) if the \
                 network path is protected otherwise"
            )));
        }
        let upstream_ca_pem = match &f.upstream_ca {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                ConfigError::Invalid(format!("cannot read upstream CA file {}: {e}", p.display()))
            })?),
            None => None,
        };
        match (&f.upstream_client_cert, &f.upstream_client_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "upstream client certificate and key must be given together".into(),
                ))
            }
            _ => {}
        }
        if let Some(k) = &f.keys {
            if !k.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "keys directory {} does not exist (expected openpgp/, smime/, trust/ inside)",
                    k.display()
                )));
            }
        }
        let l = &f.limits;
        if l.max_sessions == 0 || l.max_command_line < 64 || l.max_response_line < 512 {
            return Err(ConfigError::Invalid(
                "limits too small: max_sessions >= 1, max_command_line >= 64, max_response_line >= 512".into(),
            ));
        }
        let t = &f.timeouts;
        for (name, v) in [
            ("connect", t.connect),
            ("handshake", t.handshake),
            ("client_idle", t.client_idle),
            ("command", t.command),
            ("upstream_response", t.upstream_response),
            ("write", t.write),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86400.0) {
                return Err(ConfigError::Invalid(format!(
                    "timeouts.{name} = {v}: must be a number of seconds above 0 and at most 86400"
                )));
            }
        }
        if f.timeouts.client_idle < 600.0 {
            tracing::warn!(
                "client_idle timeout below the 10 minutes RFC 1939 requires; some clients may be cut off"
            );
        }
        Ok(Config {
            listen,
            upstream_server_name: f.upstream_server_name.unwrap_or_else(|| host.clone()),
            upstream_host: host,
            upstream_port: port,
            upstream_tls,
            upstream_ca_pem,
            use_system_roots: f.use_system_roots.unwrap_or(true),
            upstream_client_cert: f.upstream_client_cert,
            upstream_client_key: f.upstream_client_key,
            keys: f.keys,
            keys_passphrase: crate::keys::PassphraseSource {
                file: f.keys_passphrase_file,
                env: f.keys_passphrase_env,
            },
            smime_system_roots: f.smime_system_roots.unwrap_or(false),
            signature_policy: f.signature_policy.unwrap_or(SignaturePolicy::Annotate),
            allow_plaintext_non_loopback: allow,
            log_format: f.log_format.unwrap_or(LogFormat::Text),
            limits: f.limits,
            timeouts: f.timeouts,
        })
    }

    /// Limits for the relay engine.
    pub fn engine_limits(&self) -> EngineLimits {
        EngineLimits {
            max_command_line: self.limits.max_command_line,
            max_response_line: self.limits.max_response_line,
            max_message_size: self.limits.max_message_size,
            max_header_block: self.limits.max_header_block,
        }
    }
}

/// A TOML error as "line N, column M: message", without the quoted source
/// line that `toml`'s own Display adds: a passphrase or password put in the
/// file by mistake (`keys_passphrase = "..."`) must not reach the terminal
/// or the journal.
fn parse_error_without_source(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Seconds as a Duration (negative or NaN values become zero).
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

fn split_host_port(s: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::Invalid(format!("upstream {s:?} is not HOST:PORT"));
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Config, ConfigError> {
        Config::from_file_config(toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn parse_errors_do_not_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "upstream = \"pop.example.org:995\"\nkeys_passphrase = \"hunter2 hunter2\"\n",
        )
        .unwrap();
        let e = Config::read_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2, column 1") && e.contains("keys_passphrase"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn example_files_parse() {
        for text in [
            include_str!("../examples/single-account.toml"),
            include_str!("../examples/enterprise-verify.toml"),
            include_str!("../examples/starttls.toml"),
            include_str!("../examples/several-accounts/work.toml"),
            include_str!("../examples/several-accounts/private.toml"),
        ] {
            let f: FileConfig = toml::from_str(text).unwrap();
            assert!(f.upstream.is_some());
        }
    }

    #[test]
    fn defaults_and_validation() {
        let c = parse("upstream = \"pop.example.org:995\"").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1110");
        assert_eq!(c.upstream_tls, UpstreamTls::Implicit);
        assert_eq!(c.upstream_server_name, "pop.example.org");
        assert_eq!(c.timeouts.client_idle, 600.0);
        assert_eq!(c.timeouts.command, 60.0);
        assert!(parse("upstream = \"h:995\"\n[timeouts]\ncommand = 0").is_err());
        assert!(parse("").is_err());
        assert!(parse("upstream = \"pop.example.org\"").is_err());
        let e = parse("upstream = \"pop.example.org:995\"\nlisten = \"0.0.0.0:1110\"").unwrap_err();
        assert!(e.to_string().contains("passwords"));
        assert!(parse(
            "upstream = \"pop.example.org:995\"\nlisten = \"0.0.0.0:1110\"\nallow_plaintext_non_loopback = true"
        )
        .is_ok());
        assert!(parse("upstream = \"pop.example.org:110\"\nupstream_tls = \"none\"").is_err());
        assert!(parse("upstream = \"127.0.0.1:110\"\nupstream_tls = \"none\"").is_ok());
        assert!(parse("upstream = \"[::1]:995\"").is_ok());
        assert!(parse("upstream = \"h:995\"\nkeys = \"/nonexistent/keys\"").is_err());
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        assert!(parse("upstream = \"h:995\"\n[timeouts]\nupstream_response = 0").is_err());
        assert!(parse("upstream = \"h:995\"\n[timeouts]\nconnect = -1").is_err());
        assert!(parse("upstream = \"h:995\"\n[timeouts]\nwrite = nan").is_err());
        let c =
            parse("upstream = \"h:995\"\n[limits]\nmax_sessions = 3\n[timeouts]\nconnect = 1.5")
                .unwrap();
        assert_eq!(c.limits.max_sessions, 3);
        assert_eq!(secs(c.timeouts.connect), Duration::from_millis(1500));
    }
}
