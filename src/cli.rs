//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{FileConfig, LogFormat, SignaturePolicy, UpstreamTls};

/// popcrypt: plain POP3 in, verified TLS out; decrypts and verifies
/// OpenPGP and S/MIME mail on the way.
#[derive(Debug, Parser)]
#[command(name = "popcrypt", version, about)]
pub struct Cli {
    /// Log format: human-readable text or JSON lines.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing syntax), e.g. "info" or "popcrypt=debug". Also RUST_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy in front of a real POP3 server.
    #[command(after_help = SERVE_EXAMPLE)]
    Serve(ServeArgs),
    /// Start a built-in demo server and the proxy in front of it, fetch the
    /// demo mailbox once, then keep serving for a real mail client.
    #[command(after_help = DEMO_EXAMPLE)]
    Demo(DemoArgs),
    /// Run the message transform on one .eml file (what a client would get
    /// on RETR): the message on stdout, the verdict headers on stderr.
    #[command(after_help = DECRYPT_EXAMPLE)]
    Decrypt(DecryptArgs),
    /// Check the configuration, every key and certificate, and the TLS
    /// connection to the upstream server; exit status 0 only if all of it
    /// is usable.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(CheckArgs),
    /// List the loaded keys and certificates: fingerprint or issuer and
    /// serial, emails, algorithms, capabilities, expiry, source file.
    #[command(after_help = KEYS_EXAMPLE)]
    Keys(KeysArgs),
}

const SERVE_EXAMPLE: &str = "Example:\n  popcrypt serve --config /etc/popcrypt/popcrypt.toml\n  popcrypt serve --upstream pop.example.org:995 --keys ~/.config/popcrypt/keys";
const DEMO_EXAMPLE: &str = "Example:\n  popcrypt demo --once";
const DECRYPT_EXAMPLE: &str =
    "Example:\n  popcrypt decrypt --keys ~/.config/popcrypt/keys message.eml > clear.eml";
const CHECK_EXAMPLE: &str = "Example:\n  popcrypt check --config /etc/popcrypt/popcrypt.toml\n\nExit status: 0 when everything is usable, 1 when a key, certificate or the\nupstream connection has a problem (each is listed with what to do), 2 when\nthe configuration itself is invalid.";
const KEYS_EXAMPLE: &str = "Example:\n  popcrypt keys --keys ~/.config/popcrypt/keys\n  popcrypt keys --config /etc/popcrypt/popcrypt.toml\n\nOnly public parts are shown; key material and passphrases never are.";

/// `popcrypt check`: the same settings `serve` takes.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub settings: ServeArgs,
}

/// `popcrypt keys`: a keys directory, directly or through a configuration.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// TOML configuration file: list the keys of its accounts.
    #[arg(long, conflicts_with = "keys")]
    pub config: Option<PathBuf>,
    /// Keys directory (openpgp/, smime/, trust/).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Where the passphrase for protected secret keys comes from.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// `--keys-passphrase-file` and `--keys-passphrase-env`, shared by every
/// command that loads keys (the passphrase itself is never an argument).
#[derive(Debug, Clone, Default, Args)]
pub struct PassphraseArgs {
    /// File whose first line is the passphrase for protected secret keys.
    #[arg(long)]
    pub keys_passphrase_file: Option<PathBuf>,
    /// Environment variable holding that passphrase.
    #[arg(long)]
    pub keys_passphrase_env: Option<String>,
}

impl PassphraseArgs {
    /// The passphrase source these flags name.
    pub fn source(&self) -> crate::keys::PassphraseSource {
        crate::keys::PassphraseSource {
            file: self.keys_passphrase_file.clone(),
            env: self.keys_passphrase_env.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Keys directory (openpgp/, smime/, trust/).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Where the passphrase for protected secret keys comes from.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Largest plaintext produced, in octets.
    #[arg(long, default_value_t = crate::limits::MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,
    /// Write the message here instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The message (RFC 5322 .eml); "-" reads standard input.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on for plain POP3 (default 127.0.0.1:1110).
    #[arg(long)]
    pub listen: Option<String>,
    /// The real POP3 server, HOST:PORT.
    #[arg(long)]
    pub upstream: Option<String>,
    /// TLS to the server: implicit (995), starttls (110 + STLS), or none
    /// (loopback test servers only).
    #[arg(long, value_enum)]
    pub upstream_tls: Option<UpstreamTls>,
    /// Extra CA certificates (PEM) to trust for the server.
    #[arg(long)]
    pub upstream_ca: Option<PathBuf>,
    /// Name to verify in the server certificate (default: the upstream host).
    #[arg(long)]
    pub upstream_server_name: Option<String>,
    /// Client certificate (PEM chain) for mutual TLS to the server.
    #[arg(long)]
    pub upstream_client_cert: Option<PathBuf>,
    /// Private key (PEM) for --upstream-client-cert.
    #[arg(long)]
    pub upstream_client_key: Option<PathBuf>,
    /// Do not trust the system's CA store, only --upstream-ca.
    #[arg(long)]
    pub no_system_roots: bool,
    /// Keys directory (openpgp/, smime/, trust/).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Where the passphrase for protected secret keys comes from.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Also trust the system CA store for S/MIME signatures.
    #[arg(long)]
    pub smime_system_roots: bool,
    /// What to do with messages whose signature is not good.
    #[arg(long, value_enum)]
    pub signature_policy: Option<SignaturePolicy>,
    /// Allow listening on a non-loopback address although clients send
    /// passwords in plain text to popcrypt.
    #[arg(long)]
    pub allow_plaintext_non_loopback: bool,
    /// Maximum concurrent sessions.
    #[arg(long)]
    pub max_sessions: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the proxy listens for your mail client.
    #[arg(long, default_value = "127.0.0.1:1110")]
    pub listen: SocketAddr,
    /// Fetch once and exit instead of serving on.
    #[arg(long)]
    pub once: bool,
}

impl ServeArgs {
    /// Apply the flags on top of the file configuration.
    pub fn merge(&self, mut f: FileConfig) -> FileConfig {
        if let Some(v) = &self.listen {
            f.listen = Some(v.clone());
        }
        if let Some(v) = &self.upstream {
            f.upstream = Some(v.clone());
        }
        if let Some(v) = self.upstream_tls {
            f.upstream_tls = Some(v);
        }
        if let Some(v) = &self.upstream_ca {
            f.upstream_ca = Some(v.clone());
        }
        if let Some(v) = &self.upstream_server_name {
            f.upstream_server_name = Some(v.clone());
        }
        if let Some(v) = &self.upstream_client_cert {
            f.upstream_client_cert = Some(v.clone());
        }
        if let Some(v) = &self.upstream_client_key {
            f.upstream_client_key = Some(v.clone());
        }
        if self.no_system_roots {
            f.use_system_roots = Some(false);
        }
        if let Some(v) = &self.keys {
            f.keys = Some(v.clone());
        }
        if let Some(v) = &self.passphrase.keys_passphrase_file {
            f.keys_passphrase_file = Some(v.clone());
        }
        if let Some(v) = &self.passphrase.keys_passphrase_env {
            f.keys_passphrase_env = Some(v.clone());
        }
        if self.smime_system_roots {
            f.smime_system_roots = Some(true);
        }
        if let Some(v) = self.signature_policy {
            f.signature_policy = Some(v);
        }
        if self.allow_plaintext_non_loopback {
            f.allow_plaintext_non_loopback = Some(true);
        }
        if let Some(v) = self.max_sessions {
            f.limits.max_sessions = v;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config_file() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:2110\"\nupstream = \"file.example:995\"\nupstream_tls = \"starttls\"\nkeys_passphrase_env = \"FROM_FILE\"\n[limits]\nmax_sessions = 5\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "popcrypt",
            "serve",
            "--upstream",
            "flag.example:995",
            "--upstream-tls",
            "implicit",
            "--max-sessions",
            "7",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve expected");
        };
        let merged = crate::config::Config::from_file_config(args.merge(file)).unwrap();
        assert_eq!(
            merged.listen.to_string(),
            "127.0.0.1:2110",
            "kept from the file"
        );
        assert_eq!(merged.upstream_host, "flag.example", "flag wins");
        assert_eq!(merged.upstream_tls, UpstreamTls::Implicit, "flag wins");
        assert_eq!(merged.limits.max_sessions, 7, "flag wins");
        assert_eq!(merged.keys_passphrase.env.as_deref(), Some("FROM_FILE"));
    }
}
