//! The `popcrypt` command: parse the command line, start logging, and hand
//! over to [`popcrypt::app`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use popcrypt::app;
use popcrypt::cli::{Cli, Command};
use popcrypt::config::LogFormat;

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

/// Print an error as `popcrypt: ...` and give its exit status.
fn fail(e: popcrypt::proxy::Error) -> ExitCode {
    eprintln!("popcrypt: {e}");
    app::exit_code(&e)
}

fn done(result: Result<(), popcrypt::proxy::Error>) -> ExitCode {
    result.map_or_else(fail, |()| ExitCode::SUCCESS)
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
    let quiet = cli.log.as_deref().or(Some("warn"));
    let format = cli.log_format.unwrap_or(LogFormat::Text);
    match &cli.command {
        Command::Serve(args) => {
            let config = match app::serve_config(args) {
                Ok(c) => c,
                Err(e) => return fail(e.into()),
            };
            init_logging(
                cli.log_format.unwrap_or(config.log_format),
                cli.log.as_deref(),
            );
            done(runtime.block_on(app::serve(config)))
        }
        Command::Decrypt(args) => {
            init_logging(format, quiet);
            done(app::decrypt(args))
        }
        Command::Demo(args) => {
            init_logging(format, quiet);
            runtime.block_on(app::demo(args))
        }
        Command::Check(args) => {
            init_logging(format, quiet);
            runtime.block_on(app::check(args))
        }
        Command::Keys(args) => {
            init_logging(format, quiet);
            app::keys(args)
        }
    }
}
