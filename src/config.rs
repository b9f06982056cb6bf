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
    /// Every connection starts with a PROXY protocol (v1 or v2) header from
    /// a load balancer; its client address is the one logged.
    pub proxy_protocol: Option<bool>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// A configuration error, with what to do about it. Every variant is the
/// operator's to fix (the configuration side, see `proxy::Side`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file given with `--config`.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or names an unknown key; `message` gives
    /// line and column but never quotes the file (it may hold a secret).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file given with `--config`.
        path: PathBuf,
        /// Where and what, without the file's text.
        message: String,
    },
    /// The settings parse but cannot work together (a missing upstream, a
    /// plaintext listener off loopback, a limit or timeout out of range, a
    /// file they name that does not exist).
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
    /// Read a PROXY protocol header before greeting (off by default).
    pub proxy_protocol: bool,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub timeouts: Timeouts,
}

impl FileConfig {
    /// Read a TOML file; nothing is validated yet (see [`FileConfig::validate`]).
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: parse_error_without_source(&text, &e),
        })
    }

    /// Check the settings (file and flags merged) and resolve the defaults:
    /// the only way to a [`Config`]. Checks run in a fixed order, so one
    /// configuration always gives the same first error.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let (listen, host, port, upstream_tls) = self.endpoints()?;
        let upstream_ca_pem = match &self.upstream_ca {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                ConfigError::Invalid(format!("cannot read upstream CA file {}: {e}", p.display()))
            })?),
            None => None,
        };
        self.check_files()?;
        self.limits.check()?;
        self.timeouts.check()?;
        let f = self;
        let allow = f.allow_plaintext_non_loopback.unwrap_or(false);
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
            proxy_protocol: f.proxy_protocol.unwrap_or(false),
            log_format: f.log_format.unwrap_or(LogFormat::Text),
            limits: f.limits,
            timeouts: f.timeouts,
        })
    }

    /// The listening address and the mail server: parsed, and refused when
    /// they would put passwords on the network in plain text.
    fn endpoints(&self) -> Result<(SocketAddr, String, u16, UpstreamTls), ConfigError> {
        let listen_s = self.listen.as_deref().unwrap_or("127.0.0.1:1110");
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            ConfigError::Invalid(format!("listen address {listen_s:?} is not IP:PORT"))
        })?;
        let upstream = self.upstream.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "no upstream server: give --upstream HOST:PORT or `upstream` in the config file"
                    .into(),
            )
        })?;
        let (host, port) = split_host_port(upstream)?;
        let upstream_tls = self.upstream_tls.unwrap_or(UpstreamTls::Implicit);
        if upstream_tls == UpstreamTls::None && !is_loopback_host(&host) {
            return Err(ConfigError::Invalid(format!(
                "--upstream-tls none is only allowed for loopback test servers, not {host}"
            )));
        }
        let allow = self.allow_plaintext_non_loopback.unwrap_or(false);
        if !listen.ip().is_loopback() && !allow {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {listen}: clients speak plain POP3 to popcrypt, so passwords \
                 would cross the network unencrypted. Listen on 127.0.0.1, or set \
                 allow_plaintext_non_loopback = true (--allow-plaintext-non-loopback) if the \
                 network path is protected otherwise"
            )));
        }
        Ok((listen, host, port, upstream_tls))
    }

    /// Files and folders the settings name: given together, and present.
    fn check_files(&self) -> Result<(), ConfigError> {
        match (&self.upstream_client_cert, &self.upstream_client_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "upstream client certificate and key must be given together".into(),
                ))
            }
            _ => {}
        }
        if let Some(k) = &self.keys {
            if !k.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "keys directory {} does not exist (expected openpgp/, smime/, trust/ inside)",
                    k.display()
                )));
            }
        }
        Ok(())
    }
}

impl Limits {
    fn check(&self) -> Result<(), ConfigError> {
        if self.max_sessions == 0 || self.max_command_line < 64 || self.max_response_line < 512 {
            return Err(ConfigError::Invalid(
                "limits too small: max_sessions >= 1, max_command_line >= 64, max_response_line >= 512".into(),
            ));
        }
        Ok(())
    }
}

impl Timeouts {
    fn check(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("connect", self.connect),
            ("handshake", self.handshake),
            ("client_idle", self.client_idle),
            ("command", self.command),
            ("upstream_response", self.upstream_response),
            ("write", self.write),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86400.0) {
                return Err(ConfigError::Invalid(format!(
                    "timeouts.{name} = {v}: must be a number of seconds above 0 and at most 86400"
                )));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The configuration `serve` runs with: the file at `path` if any,
    /// `overrides` (the command-line flags) applied on top, validated.
    pub fn load(
        path: Option<&Path>,
        overrides: impl FnOnce(FileConfig) -> FileConfig,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => FileConfig::read(p)?,
            None => FileConfig::default(),
        };
        overrides(file).validate()
    }

    /// Read a TOML file (same as [`FileConfig::read`]).
    pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
        FileConfig::read(path)
    }

    /// Validate a merged file configuration (same as [`FileConfig::validate`]).
    pub fn from_file_config(f: FileConfig) -> Result<Config, ConfigError> {
        f.validate()
    }

    /// What is allowed but unwise, for the log (validation itself does not
    /// log: `serve` validates before logging is set up).
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if self.timeouts.client_idle < 600.0 {
            w.push(
                "client_idle timeout below the 10 minutes RFC 1939 requires; some clients may be cut off",
            );
        }
        w
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

    /// Every `.toml` under `examples/`, in folders too.
    fn example_files() -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "toml") {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    /// The examples go through `Config::load`, the path `serve` takes. The
    /// files and folders they name live on the operator's machine, so the
    /// test points those settings (and only those) at stand-ins that exist,
    /// as the matching flags would; everything else is validated as written.
    #[test]
    fn example_files_load_through_the_serve_validation() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "stand-in").unwrap();
        let files = example_files();
        assert!(files.len() >= 5, "{files:?}");
        for path in files {
            let mut named = Vec::new();
            let config = Config::load(Some(&path), |mut f| {
                if f.keys.is_some() {
                    named.push("keys");
                    f.keys = Some(keys.clone());
                }
                if f.upstream_ca.is_some() {
                    named.push("upstream_ca");
                    f.upstream_ca = Some(ca.clone());
                }
                f
            })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(config.listen.ip().is_loopback(), "{}", path.display());
            assert_ne!(config.upstream_tls, UpstreamTls::None, "{}", path.display());
            assert_eq!(config.keys.is_some(), named.contains(&"keys"));
            assert!(config.warnings().is_empty(), "{}", path.display());
        }
    }

    #[test]
    fn load_reports_the_first_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "upstream = \"pop.example.org:995\"\n").unwrap();
        let c = Config::load(Some(&path), |f| f).unwrap();
        assert_eq!(c.upstream_host, "pop.example.org");
        let e = Config::load(Some(&path), |mut f| {
            f.listen = Some("0.0.0.0:1110".into());
            f
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid(_)) && e.to_string().contains("passwords"));
        let e = Config::load(Some(&dir.path().join("missing.toml")), |f| f).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        let e = Config::load(None, |f| f).unwrap_err();
        assert!(e.to_string().contains("no upstream server"), "{e}");
        let c = Config::load(None, |mut f| {
            f.upstream = Some("h:995".into());
            f.timeouts.client_idle = 30.0;
            f
        })
        .unwrap();
        assert_eq!(c.warnings().len(), 1);
    }

    #[test]
    fn defaults_and_validation() {
        let c = parse("upstream = \"pop.example.org:995\"").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1110");
        assert_eq!(c.upstream_tls, UpstreamTls::Implicit);
        assert_eq!(c.upstream_server_name, "pop.example.org");
        assert_eq!(c.timeouts.client_idle, 600.0);
        assert_eq!(c.timeouts.command, 60.0);
        assert!(!c.proxy_protocol);
        assert!(
            parse("upstream = \"h:995\"\nproxy_protocol = true")
                .unwrap()
                .proxy_protocol
        );
        assert!(toml::from_str::<FileConfig>("proxy_protocol = \"yes\"").is_err());
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
