//! Accept loop with a session cap and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::upstream::write_all;
use super::{session, Context};

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// A bound proxy, ready to run.
pub struct Proxy {
    listener: TcpListener,
    ctx: Arc<Context>,
}

impl Proxy {
    /// Bind the listening socket.
    pub async fn bind(ctx: Arc<Context>) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(ctx.config.listen).await?;
        Ok(Proxy { listener, ctx })
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
                    let span = tracing::info_span!("session", id, peer = %peer);
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        span.in_scope(|| tracing::warn!(limit, "too many sessions; refusing"));
                        sessions.spawn(async move {
                            let _ = write_all(
                                &mut sock,
                                b"-ERR [SYS/TEMP] popcrypt: too many sessions, try again later\r\n",
                                Duration::from_secs(5),
                            )
                            .await;
                        });
                        continue;
                    };
                    let ctx = self.ctx.clone();
                    let stop = stop_rx.clone();
                    sessions.spawn(
                        async move {
                            tracing::info!("client connected");
                            session::run(sock, ctx, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        tracing::info!(
            active = sessions.len(),
            "shutting down: ending sessions without QUIT"
        );
        let _ = stop_tx.send(true);
        let drain = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            sessions.abort_all();
        }
    }
}
