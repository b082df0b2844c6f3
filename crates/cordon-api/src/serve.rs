//! The HTTP server: axum's router on hyper (HTTP/1.1) with the limits `axum::serve` does not
//! set — a cap on open connections (past it a new connection is closed at once instead of
//! queueing without bound) and a header-read timeout that runs from the moment a connection
//! waits for a request (a client that sends nothing, trickles its headers, or idles between
//! requests is cut off) — and a graceful shutdown bounded in time. HTTP/1.1 only: version
//! detection would read the first bytes without a timer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tracing::{debug, info, warn};

use crate::TrustedProxies;

/// What one listener allows.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections one peer address may hold open at once (the `exempt` peers excepted).
    pub max_per_client: usize,
    /// Peers the per-address cap does not apply to: the trusted proxies, whose connections
    /// carry many clients.
    pub exempt: TrustedProxies,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
}

/// Open connections per peer address; a [`ClientSlot`] gives its place back when dropped.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of one peer.
struct ClientSlot {
    clients: Arc<PerClient>,
    peer: IpAddr,
}

impl PerClient {
    /// A slot for `peer`, unless it holds `max` connections already.
    fn take(self: &Arc<Self>, peer: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(peer).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            peer,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections finish for up to
/// `drain` (every request is also bounded by the router's own timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut refused_since_log = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            refused_since_log += 1;
            if refused_since_log == 1 || refused_since_log.is_multiple_of(1000) {
                warn!(
                    max = limits.max_connections,
                    refused = refused_since_log,
                    "connection cap reached; closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        let ip = peer.ip().to_canonical();
        let client_slot = if limits.exempt.contains(ip) {
            None
        } else {
            match per_client.take(ip, limits.max_per_client) {
                Some(slot) => Some(slot),
                None => {
                    debug!(%peer, max = limits.max_per_client, "per-address connection cap reached; closing");
                    drop(stream);
                    continue;
                }
            }
        };
        refused_since_log = 0;
        let service = match make_service.call(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            let _client_slot = client_slot;
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    info!("http server stopping: finishing open requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => warn!("open connections did not finish in time; closing them"),
    }
}
