use std::process::ExitCode;

use clap::Parser;
use popcrypt::cli::{Cli, Command};
use popcrypt::config::{Config, FileConfig, LogFormat};
use popcrypt::message::Transformer;
use popcrypt::proxy::{Context, Proxy};

fn init_logging(format: LogFormat, filter: Option<&str>) {
    let filter = match filter {
        Some(f) => tracing_subscriber::EnvFilter::new(f),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("popcrypt: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let file = match &args.config {
                Some(p) => match Config::read_file(p) {
                    Ok(f) => f,
                    Err(e) => {
                        eprintln!("popcrypt: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => FileConfig::default(),
            };
            let format = cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text);
            init_logging(format, cli.log.as_deref());
            let config = match Config::from_file_config(args.merge(file)) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("popcrypt: {e}");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(serve(config))
        }
        Command::Decrypt(args) => {
            init_logging(
                cli.log_format.unwrap_or(LogFormat::Text),
                cli.log.as_deref().or(Some("warn")),
            );
            decrypt_file(&args)
        }
        Command::Demo(args) => {
            init_logging(
                cli.log_format.unwrap_or(LogFormat::Text),
                cli.log.as_deref().or(Some("warn")),
            );
            runtime.block_on(popcrypt::demo::run(args.listen, args.once))
        }
    }
}

/// Warn about key and passphrase files that others than their owner can
/// read (file and mode only, never the content).
fn warn_about_key_permissions(
    keys: Option<&std::path::Path>,
    pass: &popcrypt::keys::PassphraseSource,
) {
    for finding in popcrypt::keys::permission_findings(keys, pass.file.as_deref()) {
        tracing::warn!(
            file = %finding.path.display(),
            mode = %format_args!("{:04o}", finding.mode),
            "{} readable by users other than its owner (chmod 600 it)",
            finding.kind
        );
    }
}

fn decrypt_file(args: &popcrypt::cli::DecryptArgs) -> ExitCode {
    use std::io::{Read, Write};
    let pass = popcrypt::keys::PassphraseSource {
        file: args.keys_passphrase_file.clone(),
        env: args.keys_passphrase_env.clone(),
    };
    warn_about_key_permissions(args.keys.as_deref(), &pass);
    let ring = match &args.keys {
        Some(dir) => match popcrypt::keys::Keyring::load(dir, &pass) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("popcrypt: keys: {e}");
                return ExitCode::from(2);
            }
        },
        None => popcrypt::keys::Keyring::default(),
    };
    let mut raw = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw).map(|_| ())
    } else {
        std::fs::read(&args.file).map(|b| raw = b)
    };
    if let Err(e) = read {
        eprintln!("popcrypt: {}: {e}", args.file.display());
        return ExitCode::FAILURE;
    }
    // What the relay hands over: CRLF line ends.
    let crlf = popcrypt::pop3::response::crlf_lines(&raw);
    let t = Transformer::with_keys(ring, args.max_message_size);
    let (out, report) = t.transform(&crlf);
    eprintln!("X-Popcrypt-Encryption: {}", report.encryption);
    eprintln!("X-Popcrypt-Signature: {}", report.signature);
    let written = match &args.output {
        Some(path) => std::fs::write(path, &out),
        None => std::io::stdout().write_all(&out),
    };
    if let Err(e) = written {
        eprintln!("popcrypt: writing the message: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn serve(config: Config) -> ExitCode {
    warn_about_key_permissions(config.keys.as_deref(), &config.keys_passphrase);
    let transformer = match &config.keys {
        Some(dir) => match popcrypt::keys::Keyring::load_with(
            dir,
            &config.keys_passphrase,
            config.smime_system_roots,
        ) {
            Ok(ring) => {
                for line in ring.summary() {
                    tracing::info!(keys = %dir.display(), "{line}");
                }
                if ring.is_empty() {
                    tracing::warn!(keys = %dir.display(), "no keys or certificates loaded: relaying only");
                }
                Transformer::with_keys(ring, config.limits.max_message_size)
                    .with_signature_policy(config.signature_policy)
            }
            Err(e) => {
                eprintln!("popcrypt: keys: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            tracing::info!("no keys directory: relaying and annotating only");
            Transformer::new()
        }
    };
    let ctx = match Context::new(config, transformer) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("popcrypt: {e}");
            return ExitCode::from(2);
        }
    };
    let proxy = match Proxy::bind(ctx.clone()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("popcrypt: cannot listen on {}: {e}", ctx.config.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = proxy
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %addr, upstream = %format!("{}:{}", ctx.config.upstream_host, ctx.config.upstream_port), tls = ?ctx.config.upstream_tls, "popcrypt listening");
    proxy.run(popcrypt::shutdown_signal()).await;
    ExitCode::SUCCESS
}
