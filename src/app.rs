//! What the commands do: `serve` (load the keys, build the transformer and
//! the proxy, run until a signal), `decrypt` (one message through the
//! transform), `demo`, and the operator's tools `check` and `keys`
//! ([`check`](mod@check)). `main` only parses the command line, starts
//! logging and calls these; their errors say which side caused them.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{DecryptArgs, DemoArgs, ServeArgs};
use crate::config::{Config, ConfigError};
use crate::keys::{Keyring, PassphraseSource};
use crate::message::Transformer;
use crate::proxy::{Context, Error, Proxy};

mod check;
mod probe;

pub use check::{check, keys};

/// The configuration for `serve`: the `--config` file with the flags on
/// top, validated (before logging starts: the file names the log format).
pub fn serve_config(args: &ServeArgs) -> Result<Config, ConfigError> {
    Config::load(args.config.as_deref(), |f| args.merge(f))
}

/// Run the proxy until Ctrl-C or SIGTERM, then end every session without
/// QUIT upstream.
pub async fn serve(config: Config) -> Result<(), Error> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    warn_about_key_permissions(config.keys.as_deref(), &config.keys_passphrase);
    let transformer = serve_transformer(&config)?;
    let ctx = Context::new(config, transformer)?;
    let proxy = Proxy::bind(ctx.clone())
        .await
        .map_err(|source| Error::Listen {
            addr: ctx.config.listen,
            source,
        })?;
    let addr = proxy
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cfg = &ctx.config;
    tracing::info!(listen = %addr, upstream = %format!("{}:{}", cfg.upstream_host, cfg.upstream_port), tls = ?cfg.upstream_tls, "popcrypt listening");
    // systemd `Type=notify`: ready once the configuration is valid, every
    // key loaded and every listener bound (a no-op without NOTIFY_SOCKET).
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    proxy.run(crate::shutdown_signal()).await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    Ok(())
}

/// Tell the service manager, if there is one, how the service is doing.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// The transformer `serve` runs with: the keys directory if one is
/// configured, otherwise relaying and annotating only.
fn serve_transformer(config: &Config) -> Result<Transformer, Error> {
    let Some(dir) = &config.keys else {
        tracing::info!("no keys directory: relaying and annotating only");
        return Ok(Transformer::new());
    };
    let ring = Keyring::load_with(dir, &config.keys_passphrase, config.smime_system_roots)
        .map_err(|e| Error::Keys(e.to_string()))?;
    for line in ring.summary() {
        tracing::info!(keys = %dir.display(), "{line}");
    }
    if ring.is_empty() {
        tracing::warn!(keys = %dir.display(), "no keys or certificates loaded: relaying only");
    }
    Ok(Transformer::with_keys(ring, config.limits.max_message_size)
        .with_signature_policy(config.signature_policy))
}

/// Run the transform on one file, as a client would get it on RETR: the
/// message to standard output (or `--output`), the verdicts to stderr.
pub fn decrypt(args: &DecryptArgs) -> Result<(), Error> {
    let pass = args.passphrase.source();
    warn_about_key_permissions(args.keys.as_deref(), &pass);
    let ring = match &args.keys {
        Some(dir) => Keyring::load(dir, &pass).map_err(|e| Error::Keys(e.to_string()))?,
        None => Keyring::default(),
    };
    let mut raw = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw).map(|_| ())
    } else {
        std::fs::read(&args.file).map(|b| raw = b)
    };
    read.map_err(|source| Error::File {
        what: args.file.display().to_string(),
        source,
    })?;
    // What the relay hands over: CRLF line ends.
    let crlf = crate::pop3::response::crlf_lines(&raw);
    let t = Transformer::with_keys(ring, args.max_message_size);
    let (out, report) = t.transform(&crlf);
    eprintln!("X-Popcrypt-Encryption: {}", report.encryption);
    eprintln!("X-Popcrypt-Signature: {}", report.signature);
    let written = match &args.output {
        Some(path) => std::fs::write(path, &out),
        None => std::io::stdout().write_all(&out),
    };
    written.map_err(|source| Error::File {
        what: "writing the message".into(),
        source,
    })
}

/// The demo: its own server, the proxy in front, one fetch (see
/// [`crate::demo`]); it reports its own errors.
pub async fn demo(args: &DemoArgs) -> ExitCode {
    crate::demo::run(args.listen, args.once).await
}

/// The exit status for an error: 2 when the operator's settings are at
/// fault (configuration, TLS settings, keys), 1 otherwise.
pub fn exit_code(e: &Error) -> ExitCode {
    match e.side() {
        crate::proxy::Side::Configuration => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

/// Warn about key and passphrase files that others than their owner can
/// read (file and mode only, never the content).
fn warn_about_key_permissions(keys: Option<&Path>, pass: &PassphraseSource) {
    for finding in crate::keys::permission_findings(keys, pass.file.as_deref()) {
        tracing::warn!(
            file = %finding.path.display(),
            mode = %format_args!("{:04o}", finding.mode),
            "{} readable by users other than its owner (chmod 600 it)",
            finding.kind
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_side() {
        let config = Error::Config(ConfigError::Invalid("x".into()));
        assert_eq!(exit_code(&config), ExitCode::from(2));
        assert_eq!(exit_code(&Error::Keys("x".into())), ExitCode::from(2));
        assert_eq!(exit_code(&Error::Tls("x".into())), ExitCode::from(2));
        let file = Error::File {
            what: "in.eml".into(),
            source: std::io::Error::other("gone"),
        };
        assert_eq!(exit_code(&file), ExitCode::FAILURE);
        assert_eq!(file.to_string(), "in.eml: gone");
        assert_eq!(exit_code(&Error::Internal("x".into())), ExitCode::FAILURE);
    }

    #[test]
    fn decrypt_names_the_unreadable_input() {
        let dir = tempfile::tempdir().unwrap();
        let args = DecryptArgs {
            keys: None,
            passphrase: Default::default(),
            max_message_size: crate::limits::MAX_MESSAGE_SIZE,
            output: None,
            file: dir.path().join("missing.eml"),
        };
        let e = decrypt(&args).unwrap_err();
        assert!(matches!(e, Error::File { .. }), "{e}");
        assert!(e.to_string().contains("missing.eml"), "{e}");
    }
}
