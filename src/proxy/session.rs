//! One client session: the I/O around the relay engine.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};
use zeroize::Zeroizing;

use super::upstream::{self, write_all, Stream};
use super::{Context, Error};
use crate::config::secs;
use crate::message::verdict::{Encryption, Failure};
use crate::message::{annotate_message, Report};
use crate::pop3::engine::{CloseReason, Engine, Event, MessageHook};

const READ_CHUNK: usize = 64 * 1024;

/// Serve one client until QUIT, disconnect, timeout or shutdown; returns
/// why the session ended (already logged).
pub async fn run(
    mut client: TcpStream,
    ctx: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
) -> CloseReason {
    let _ = client.set_nodelay(true);
    let cfg = &ctx.config;
    let write_limit = secs(cfg.timeouts.write);
    let connected = tokio::select! {
        r = upstream::connect(cfg, &ctx.tls) => r,
        _ = shutdown.changed() => {
            tracing::info!("shutdown before the mail server answered; nothing sent upstream");
            let _ = write_all(
                &mut client,
                b"-ERR [SYS/TEMP] popcrypt: proxy shutting down\r\n",
                write_limit,
            )
            .await;
            close_client(client).await;
            return CloseReason::Shutdown;
        }
    };
    let (mut server, greeting) = match connected {
        Ok(v) => v,
        Err(e) => {
            let e = Error::from(e);
            tracing::warn!(side = %e.side(), error = %e, "upstream unavailable; client told, nothing sent upstream");
            let line = format!("-ERR [SYS/TEMP] popcrypt: {e}\r\n");
            let _ = write_all(&mut client, line.as_bytes(), write_limit).await;
            close_client(client).await;
            return CloseReason::Upstream(e.to_string());
        }
    };
    tracing::info!("upstream connected");
    let hook: Arc<dyn MessageHook> = ctx.transformer.clone();
    let mut engine = Engine::new(cfg.engine_limits(), hook);
    engine.greeting(&greeting);
    let mut io = Io {
        client: &mut client,
        server: &mut server,
        ctx: &ctx,
        shutdown: &mut shutdown,
    };
    let reason = relay(&mut engine, &mut io).await;
    log_end(&reason);
    // Dropping the server stream closes it without QUIT unless the client
    // sent one (which the engine forwarded).
    drop(server);
    close_client(client).await;
    reason
}

/// Say in the log how the session ended and whose doing it was.
fn log_end(reason: &CloseReason) {
    match reason {
        CloseReason::Quit => {
            tracing::info!("session ended by QUIT; deletions committed by the server")
        }
        CloseReason::ClientGone => {
            tracing::info!(
                side = "client",
                "client gone without QUIT; upstream closed without QUIT so deletions roll back"
            )
        }
        CloseReason::Upstream(why) => {
            tracing::warn!(side = "upstream", why = %why, "session ended by the upstream side")
        }
        CloseReason::Client(why) => {
            tracing::info!(side = "client", why = %why, "session ended; upstream closed without QUIT so deletions roll back")
        }
        CloseReason::Shutdown => {
            tracing::info!(
                "session ended by shutdown; upstream closed without QUIT so deletions roll back"
            )
        }
        CloseReason::Internal(why) => {
            tracing::error!(side = "internal", why = %why, "session ended by an internal error; upstream closed without QUIT so deletions roll back")
        }
    }
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

/// The two connections of a session and what their loop needs.
struct Io<'a> {
    client: &'a mut TcpStream,
    server: &'a mut Box<dyn Stream>,
    ctx: &'a Arc<Context>,
    shutdown: &'a mut watch::Receiver<bool>,
}

/// Where the client's current command line stands, for the command timeout.
struct LineClock {
    /// The client has sent part of a line.
    mid_line: bool,
    /// Runs only while the proxy waits for the client (not while a
    /// pipelined command is served).
    deadline: Option<Instant>,
}

async fn relay(engine: &mut Engine, io: &mut Io<'_>) -> CloseReason {
    // The client's bytes are passwords and SASL responses, the server's the
    // mail: both read buffers are zeroed when the session ends. They never
    // grow (reads fill at most their length).
    let mut cbuf = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let mut sbuf = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let mut closing: Option<CloseReason> = None;
    let mut clock = LineClock {
        mid_line: false,
        deadline: None,
    };
    loop {
        while let Some(ev) = engine.next_event() {
            match ev {
                Event::Transform(raw) => {
                    let out = transform(io.ctx, raw).await;
                    engine.transform_done(out);
                }
                Event::Close(r) => closing = Some(r),
            }
        }
        match flush(engine, io).await {
            Flushed::Done => {}
            Flushed::UpstreamFailed => continue,
            Flushed::ClientGone => return CloseReason::ClientGone,
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
            engine.upstream_unasked();
            continue;
        }
        wait(engine, io, &mut clock, &mut cbuf, &mut sbuf).await;
    }
}

/// What became of the queued output.
enum Flushed {
    Done,
    /// The server could not be written to; the engine was told.
    UpstreamFailed,
    /// The client could not be written to.
    ClientGone,
}

/// Write what the engine queued for each side.
async fn flush(engine: &mut Engine, io: &mut Io<'_>) -> Flushed {
    let write_limit = secs(io.ctx.config.timeouts.write);
    // Zeroed when dropped, after the write.
    let up = engine.take_upstream_output();
    if !up.is_empty() {
        if let Err(e) = write_all(io.server, &up, write_limit).await {
            tracing::warn!(side = "upstream", error = %e, "write to upstream failed");
            engine.upstream_eof();
            return Flushed::UpstreamFailed;
        }
    }
    let down = engine.take_client_output();
    if !down.is_empty() {
        if let Err(e) = write_all(io.client, &down, write_limit).await {
            let e = Error::Client(e);
            tracing::info!(side = %e.side(), error = %e, "write to client failed");
            return Flushed::ClientGone;
        }
    }
    Flushed::Done
}

/// Wait for whichever comes first: client bytes, server bytes, a timeout,
/// or shutdown, and hand it to the engine.
async fn wait(
    engine: &mut Engine,
    io: &mut Io<'_>,
    clock: &mut LineClock,
    cbuf: &mut [u8],
    sbuf: &mut [u8],
) {
    let cfg = &io.ctx.config;
    let awaiting = engine.awaiting_upstream();
    let wants_client = engine.wants_client_input();
    let waiting_for_client = wants_client && !awaiting;
    if !(waiting_for_client && clock.mid_line) {
        clock.deadline = None;
    } else if clock.deadline.is_none() {
        clock.deadline = Some(Instant::now() + secs(cfg.timeouts.command));
    }
    let line_timer = clock.deadline.unwrap_or_else(Instant::now);
    tokio::select! {
        r = io.client.read(cbuf), if wants_client => match r {
            Ok(0) | Err(_) => engine.client_eof(),
            Ok(n) => {
                clock.mid_line = ends_mid_line(&cbuf[..n], clock.mid_line);
                engine.client_data(&cbuf[..n]);
            }
        },
        _ = sleep_until(line_timer), if clock.deadline.is_some() => {
            tracing::info!("client command line not completed in time");
            engine.abort("command not completed in time, closing");
        }
        r = io.server.read(sbuf), if awaiting => match r {
            Ok(0) => engine.upstream_eof(),
            Err(e) => {
                tracing::warn!(side = "upstream", error = %e, "read from upstream failed");
                engine.upstream_eof();
            }
            Ok(n) => engine.upstream_data(&sbuf[..n]),
        },
        _ = sleep(secs(cfg.timeouts.upstream_response)), if awaiting => engine.upstream_timeout(),
        _ = sleep(secs(cfg.timeouts.client_idle)), if !awaiting => {
            tracing::info!("client idle timeout");
            engine.abort("idle timeout, closing");
        }
        _ = io.shutdown.changed() => engine.shutdown(),
    }
}

/// Stack of the thread a transform runs on. A stack size, not a message
/// size: it is not `limits::MAX_MESSAGE_SIZE`, though both are 64 MiB. The
/// transform bounds MIME nesting before any recursive parser sees the bytes
/// (`message::strict`); this leaves a wide margin over what the bounded
/// depth needs (a 2 MiB stack suffices, see tests/golden_forgery.rs), so no
/// message can overflow it and abort the proxy with every session in it.
const TRANSFORM_STACK: usize = 64 << 20;

/// Run the message transform off the async threads, on a thread of its own
/// with a large stack. A thread that cannot start or dies is an internal
/// error ([`Error::Internal`], logged as such); the session goes on and the
/// client still gets the original message, marked as not processed.
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
        Ok(_) => rx
            .await
            .map_err(|_| Error::Internal("the transform thread ended without an answer".into())),
        Err(e) => Err(Error::Internal(format!(
            "cannot start a transform thread: {e}"
        ))),
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
            tracing::error!(side = %e.side(), error = %e, "message transform failed; delivering the original");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, UpstreamTls};
    use crate::message::Transformer;
    use tokio::net::TcpListener;

    /// A context for a plain-POP3 fake server on loopback at `port`.
    fn context(port: u16) -> Arc<Context> {
        let file = FileConfig {
            upstream: Some(format!("127.0.0.1:{port}")),
            upstream_tls: Some(UpstreamTls::None),
            use_system_roots: Some(false),
            ..FileConfig::default()
        };
        let mut config = file.validate().unwrap();
        config.upstream_ca_pem = Some(crate::demo::DEMO_CA_PEM.to_vec());
        Context::new(config, Transformer::new()).unwrap()
    }

    /// A fake server that greets, answers every line `+OK`, and returns
    /// what it was sent once the proxy closes the connection.
    async fn fake_server() -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"+OK ready\r\n").await.unwrap();
            let (mut got, mut buf) = (Vec::new(), [0u8; 1024]);
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(b"\r\n") {
                    let _ = s.write_all(b"+OK\r\n").await;
                }
            }
            got
        });
        (port, task)
    }

    /// A session between a test client and the proxy's `run`.
    async fn session(
        ctx: Arc<Context>,
        stop: watch::Receiver<bool>,
    ) -> (TcpStream, tokio::task::JoinHandle<CloseReason>) {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (sock, _) = front.accept().await.unwrap();
        (client, tokio::spawn(run(sock, ctx, stop)))
    }

    async fn read_some(client: &mut TcpStream, want: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(want) {
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn a_shutdown_is_reported_as_shutdown_and_sends_no_quit() {
        let (port, server) = fake_server().await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (mut client, ended) = session(context(port), stop_rx).await;
        assert_eq!(read_some(&mut client, b"\r\n").await, b"+OK ready\r\n");
        client.write_all(b"USER a\r\n").await.unwrap();
        assert_eq!(read_some(&mut client, b"\r\n").await, b"+OK\r\n");
        stop_tx.send(true).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"-ERR [SYS/TEMP] popcrypt: proxy shutting down\r\n");
        drop(client);
        assert_eq!(ended.await.unwrap(), CloseReason::Shutdown);
        assert_eq!(server.await.unwrap(), b"USER a\r\n", "no QUIT upstream");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_the_upstream_side() {
        // A port nothing listens on: bound, then released.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let (_stop_tx, stop_rx) = watch::channel(false);
        let (mut client, ended) = session(context(port), stop_rx).await;
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert!(got.starts_with(b"-ERR [SYS/TEMP] popcrypt: cannot connect"));
        drop(client);
        assert!(matches!(ended.await.unwrap(), CloseReason::Upstream(_)));
    }

    #[tokio::test]
    async fn quit_is_reported_as_quit() {
        let (port, server) = fake_server().await;
        let (_stop_tx, stop_rx) = watch::channel(false);
        let (mut client, ended) = session(context(port), stop_rx).await;
        read_some(&mut client, b"\r\n").await;
        client.write_all(b"QUIT\r\n").await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"+OK\r\n");
        drop(client);
        assert_eq!(ended.await.unwrap(), CloseReason::Quit);
        assert_eq!(server.await.unwrap(), b"QUIT\r\n");
    }
}
