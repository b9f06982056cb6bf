//! Accept loop with a session cap and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::upstream::write_all;
use super::{proxy_protocol, session, Context};

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// Listen backlog (tokio's default is 1024).
const ACCEPT_BACKLOG: u32 = 4096;

/// How many connection tasks (sessions, and refusals still writing their
/// `-ERR`) are alive. Cheap to clone; every clone sees the same count.
#[derive(Debug, Clone, Default)]
pub struct SessionCount(Arc<AtomicUsize>);

impl SessionCount {
    /// The number of live connection tasks right now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Count one task until the returned guard is dropped (also when the
    /// task is aborted or panics, since dropping the future drops it).
    fn enter(&self) -> LiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        LiveGuard(self.0.clone())
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A bound proxy, ready to run.
pub struct Proxy {
    listener: TcpListener,
    ctx: Arc<Context>,
    live: SessionCount,
}

impl Proxy {
    /// Bind the listening socket.
    pub async fn bind(ctx: Arc<Context>) -> std::io::Result<Proxy> {
        let addr = ctx.config.listen;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        // A burst of connections larger than the accept queue leaves
        // clients whose handshake the kernel dropped waiting for SYN-ACK
        // retransmissions (seconds, then minutes); a deep queue lets the
        // accept loop refuse them promptly instead. The kernel caps it
        // at net.core.somaxconn.
        let listener = socket.listen(ACCEPT_BACKLOG)?;
        Ok(Proxy {
            listener,
            ctx,
            live: SessionCount::default(),
        })
    }

    /// The live-session counter (take it before `run`, which consumes the
    /// proxy); it drops back to zero once every session task has ended.
    pub fn sessions(&self) -> SessionCount {
        self.live.clone()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` completes, then end every session without
    /// QUIT upstream (so no deletion is committed) and return.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let limit = self.ctx.config.limits.max_sessions;
        let permits = Arc::new(Semaphore::new(limit));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (mut sock, peer) = match accepted {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let id = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
                    let span = session_span(id, peer, self.ctx.config.proxy_protocol);
                    let live = self.live.enter();
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        span.in_scope(|| tracing::warn!(limit, "too many sessions; refusing"));
                        sessions.spawn(async move {
                            let _live = live;
                            let _ = write_all(
                                &mut sock,
                                b"-ERR [SYS/TEMP] popcrypt: too many sessions, try again later\r\n",
                                Duration::from_secs(5),
                            )
                            .await;
                            session::close_client(sock).await;
                        });
                        continue;
                    };
                    let ctx = self.ctx.clone();
                    let stop = stop_rx.clone();
                    sessions.spawn(
                        async move {
                            let _live = live;
                            if ctx.config.proxy_protocol {
                                let mut stop = stop.clone();
                                if !proxy_header(&mut sock, peer, &ctx, &mut stop).await {
                                    session::close_client(sock).await;
                                    return;
                                }
                            }
                            tracing::info!("client connected");
                            session::run(sock, ctx, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Some(done) = sessions.join_next(), if !sessions.is_empty() => log_panic(done),
            }
        }
        tracing::info!(
            active = sessions.len(),
            "shutting down: ending sessions without QUIT"
        );
        let _ = stop_tx.send(true);
        let drain = async {
            while let Some(done) = sessions.join_next().await {
                log_panic(done);
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            sessions.abort_all();
        }
    }
}

/// The span every line of a session is logged in. Behind a load balancer
/// (`proxy_protocol`) the socket's peer is the balancer (`via`), and
/// `peer` is filled in from the PROXY header once it has been read.
fn session_span(id: u64, peer: SocketAddr, proxy_protocol: bool) -> tracing::Span {
    if proxy_protocol {
        tracing::info_span!("session", id, via = %peer, peer = tracing::field::Empty)
    } else {
        tracing::info_span!("session", id, peer = %peer)
    }
}

/// Read the PROXY protocol header before anything is sent to the client
/// or upstream, bounded by the command timeout, and record the client
/// address it carries in the session's span (the socket's peer for LOCAL
/// and UNKNOWN). False (logged, nothing sent) when the connection must
/// close: no header, a bad one, a timeout, or shutdown.
async fn proxy_header(
    sock: &mut tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: &Context,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let limit = crate::config::secs(ctx.config.timeouts.command);
    let read = tokio::select! {
        r = proxy_protocol::read_header(sock, limit) => r,
        _ = stop.changed() => {
            tracing::info!("shutdown before the PROXY protocol header arrived");
            return false;
        }
    };
    match read {
        Ok(header) => {
            let client = header.client(peer);
            tracing::Span::current().record("peer", tracing::field::display(client));
            if header == proxy_protocol::Header::Local {
                tracing::debug!(
                    "PROXY header without a client address; the socket's peer stands for it"
                );
            }
            true
        }
        Err(e) => {
            tracing::warn!(side = "client", error = %e, "closing the connection without a greeting");
            false
        }
    }
}

/// A session task that panicked took only its own session down: an
/// internal error, said so in the log (a task cancelled at shutdown is not).
fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            let e = super::Error::Internal("a session task panicked".into());
            tracing::error!(side = %e.side(), error = %e, "that session was dropped");
        }
    }
}
