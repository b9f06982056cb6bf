//! One client session: the I/O around the relay engine.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};
use zeroize::Zeroizing;

use super::upstream::{self, write_all, Stream};
use super::Context;
use crate::config::secs;
use crate::message::verdict::{Encryption, Failure};
use crate::message::{annotate_message, Report};
use crate::pop3::session::{CloseReason, Engine, Event, MessageHook};

const READ_CHUNK: usize = 64 * 1024;

/// Serve one client until QUIT, disconnect, timeout or shutdown.
pub async fn run(mut client: TcpStream, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let _ = client.set_nodelay(true);
    let cfg = &ctx.config;
    let write_limit = secs(cfg.timeouts.write);
    let connected = tokio::select! {
        r = upstream::connect(cfg, &ctx.tls) => r,
        _ = shutdown.changed() => {
            let _ = write_all(
                &mut client,
                b"-ERR [SYS/TEMP] popcrypt: proxy shutting down\r\n",
                write_limit,
            )
            .await;
            close_client(client).await;
            return;
        }
    };
    let (mut server, greeting) = match connected {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "upstream unavailable; client told, nothing sent upstream");
            let line = format!("-ERR [SYS/TEMP] popcrypt: {e}\r\n");
            let _ = write_all(&mut client, line.as_bytes(), write_limit).await;
            close_client(client).await;
            return;
        }
    };
    tracing::info!("upstream connected");
    let hook: Arc<dyn MessageHook> = ctx.transformer.clone();
    let mut engine = Engine::new(cfg.engine_limits(), hook);
    engine.greeting(&greeting);
    let reason = relay(&mut engine, &mut client, &mut server, &ctx, &mut shutdown).await;
    match &reason {
        CloseReason::Quit => {
            tracing::info!("session ended by QUIT; deletions committed by the server")
        }
        CloseReason::ClientGone => {
            tracing::info!(
                "client gone without QUIT; upstream closed without QUIT so deletions roll back"
            )
        }
        CloseReason::Upstream(why) => {
            tracing::warn!(why = %why, "session ended by the upstream side")
        }
        CloseReason::Client(why) => {
            tracing::info!(why = %why, "session ended; upstream closed without QUIT so deletions roll back")
        }
    }
    // Dropping the server stream closes it without QUIT unless the client
    // sent one (which the engine forwarded).
    drop(server);
    close_client(client).await;
}

/// End the client connection so that the last answer (often a `-ERR`
/// saying why) is not lost: closing a socket with unread input makes the
/// kernel send a reset, which throws away whatever is still queued for the
/// client. So: FIN first, then read and discard what the client still
/// sends until it closes too or a second has passed, then close.
pub(crate) async fn close_client(mut client: TcpStream) {
    const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
    let _ = client.shutdown().await;
    let mut sink = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + LINGER;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, client.read(&mut sink)).await {
        if n == 0 {
            break;
        }
    }
}

/// Track whether the client has sent the start of a line that has not
/// ended yet (the engine splits lines at LF), for the command timeout.
fn ends_mid_line(chunk: &[u8], was_mid_line: bool) -> bool {
    match chunk.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1 < chunk.len(),
        None => was_mid_line || !chunk.is_empty(),
    }
}

async fn relay(
    engine: &mut Engine,
    client: &mut TcpStream,
    server: &mut Box<dyn Stream>,
    ctx: &Arc<Context>,
    shutdown: &mut watch::Receiver<bool>,
) -> CloseReason {
    let cfg = &ctx.config;
    let write_limit = secs(cfg.timeouts.write);
    // The client's bytes are passwords and SASL responses, the server's the
    // mail: both read buffers are zeroed when the session ends. They never
    // grow (reads fill at most their length).
    let mut cbuf = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let mut sbuf = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let mut closing: Option<CloseReason> = None;
    let command_limit = secs(cfg.timeouts.command);
    // The client has sent part of a line; the deadline runs only while the
    // proxy waits for the client (not while a pipelined command is served).
    let mut mid_line = false;
    let mut line_deadline: Option<Instant> = None;
    loop {
        while let Some(ev) = engine.next_event() {
            match ev {
                Event::Transform(raw) => {
                    let out = transform(ctx, raw).await;
                    engine.transform_done(out);
                }
                Event::Close(r) => closing = Some(r),
            }
        }
        // Zeroed when dropped, after the write.
        let up = engine.take_upstream_output();
        if !up.is_empty() {
            if let Err(e) = write_all(server, &up, write_limit).await {
                tracing::warn!(error = %e, "write to upstream failed");
                engine.upstream_eof();
                continue;
            }
        }
        let down = engine.take_client_output();
        if !down.is_empty() {
            if let Err(e) = write_all(client, &down, write_limit).await {
                tracing::info!(error = %e, "write to client failed");
                return CloseReason::ClientGone;
            }
        }
        if let Some(r) = closing.take() {
            return r;
        }
        if engine.is_closed() {
            continue;
        }
        // popcrypt sends the server one command at a time, so octets left
        // over once nothing is due were never asked for: a server out of
        // step, or a message whose lone "." was not dot-stuffed. Whatever
        // follows could be taken as the answer to the client's next
        // command; end the session instead.
        if !engine.awaiting_upstream() && engine.upstream_buffered() > 0 {
            tracing::warn!("the mail server sent data nobody asked for; ending the session");
            engine.abort("the mail server sent data nobody asked for, closing");
            continue;
        }
        let awaiting = engine.awaiting_upstream();
        let wants_client = engine.wants_client_input();
        let waiting_for_client = wants_client && !awaiting;
        if !(waiting_for_client && mid_line) {
            line_deadline = None;
        } else if line_deadline.is_none() {
            line_deadline = Some(Instant::now() + command_limit);
        }
        let line_timer = line_deadline.unwrap_or_else(Instant::now);
        tokio::select! {
            r = client.read(&mut cbuf), if wants_client => match r {
                Ok(0) | Err(_) => engine.client_eof(),
                Ok(n) => {
                    mid_line = ends_mid_line(&cbuf[..n], mid_line);
                    engine.client_data(&cbuf[..n]);
                }
            },
            _ = sleep_until(line_timer), if line_deadline.is_some() => {
                tracing::info!("client command line not completed in time");
                engine.abort("command not completed in time, closing");
            }
            r = server.read(&mut sbuf), if awaiting => match r {
                Ok(0) => engine.upstream_eof(),
                Err(e) => {
                    tracing::warn!(error = %e, "read from upstream failed");
                    engine.upstream_eof();
                }
                Ok(n) => engine.upstream_data(&sbuf[..n]),
            },
            _ = sleep(secs(cfg.timeouts.upstream_response)), if awaiting => engine.upstream_timeout(),
            _ = sleep(secs(cfg.timeouts.client_idle)), if !awaiting => {
                tracing::info!("client idle timeout");
                engine.abort("idle timeout, closing");
            }
            _ = shutdown.changed() => engine.abort("proxy shutting down"),
        }
    }
}

/// Stack of the thread a transform runs on. The transform bounds MIME
/// nesting before any recursive parser sees the bytes (`message::strict`);
/// this leaves a wide margin over what the bounded depth needs (a 2 MiB
/// stack suffices, see tests/golden_forgery.rs), so no message can overflow
/// it and abort the proxy with every session in it.
const TRANSFORM_STACK: usize = 64 << 20;

/// Run the message transform off the async threads, on a thread of its own
/// with a large stack. A failure inside it still delivers the original
/// message.
async fn transform(ctx: &Arc<Context>, raw: Vec<u8>) -> Vec<u8> {
    let raw = Arc::new(raw);
    let input = raw.clone();
    let t = ctx.transformer.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("popcrypt-transform".into())
        .stack_size(TRANSFORM_STACK)
        .spawn(move || {
            let _ = tx.send(t.transform(&input));
        });
    let result = match spawned {
        Ok(_) => rx.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok((out, report)) => {
            // The verdicts only (first two tokens): the details name
            // addresses and subjects, which stay out of the logs.
            let (encryption, signature) = report.summary();
            tracing::info!(
                encryption = %encryption,
                signature = %signature,
                "message transformed"
            );
            out
        }
        Err(e) => {
            tracing::error!(error = %e, "message transform failed; delivering the original");
            let report = Report {
                encryption: Encryption::Failed {
                    scheme: None,
                    reason: Failure::Internal("internal error, original message delivered".into()),
                },
                ..Report::default()
            };
            annotate_message(&raw, &report)
        }
    }
}
