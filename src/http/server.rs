//! Serving connections so that the HTTP side cannot take the daemon down.
//!
//! axum's `serve` accepts without limit and waits forever for a client's headers: a flood of
//! idle or slow connections once took every file descriptor, and sending stopped with "Too
//! many open files". Here every connection is served by hyper under limits from `[http]`:
//!
//! - **a cap on open connections** (`max_connections`, lowered at start-up to what the file
//!   descriptor limit leaves after the reserve for sending, the database and the reply
//!   mailbox, see [`fd_budget`]): at the cap, the *oldest* open connection is closed to make
//!   room for the new one — a flood of idle connections then cannot lock out a health probe
//!   or an unsubscribe, and never takes the descriptors sending needs;
//! - **a header-read timeout** (`header_timeout`): a client must send a request's whole head
//!   within it — from the moment the connection opens, and again while a kept-alive
//!   connection waits for its next request, so it is also the **idle timeout**;
//! - **a request timeout** (`request_timeout`): reading the body and answering take at most
//!   this long (408 otherwise), so a slow body cannot hold a connection either;
//! - per-route body limits (in `router`).
//!
//! Accepting never spins: when `accept` fails (EMFILE while the process is at its limit) the
//! loop logs once and waits a moment before trying again.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The limits one server runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

/// How long requests in flight may take to finish once shutdown began.
const DRAIN: Duration = Duration::from_secs(5);

/// Adds the request timeout to every route.
pub(super) fn with_request_timeout(router: Router, timeout: Duration) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => (
                    StatusCode::REQUEST_TIMEOUT,
                    "the request took too long to arrive or to answer\n",
                )
                    .into_response(),
            }
        },
    ))
}

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight finish (for at
/// most a few seconds).
pub(super) async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    // Open connections, oldest first: each one's eviction token.
    let mut open: std::collections::VecDeque<CancellationToken> = Default::default();
    let mut evicting = false;
    let mut accept_failing = false;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => {
                accept_failing = false;
                stream
            }
            Err(e) => {
                if !accept_failing {
                    tracing::warn!(error = %e, "Cannot accept HTTP connections; trying again shortly");
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        open.retain(|t| !t.is_cancelled());
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                if evicting && permits.available_permits() > limits.max_connections / 10 {
                    tracing::info!("HTTP connections below the cap again");
                    evicting = false;
                }
                permit
            }
            Err(_) => {
                if !evicting {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "HTTP connection cap reached: the oldest connections are closed to make room"
                    );
                    evicting = true;
                }
                // Close the oldest; its permit comes back as soon as its task ends.
                if let Some(oldest) = open.pop_front() {
                    oldest.cancel();
                }
                match tokio::time::timeout(
                    Duration::from_secs(1),
                    Arc::clone(&permits).acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let (stop, evict) = (shutdown.clone(), CancellationToken::new());
        open.push_back(evict.clone());
        connections.spawn(async move {
            let _permit = permit;
            serve_connection(stream, service, limits, stop, evict.clone()).await;
            // Done: no longer a candidate for eviction.
            evict.cancel();
        });
    }
    // Stop accepting; let the connections finish what they are answering.
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    service: TowerToHyperService<Router>,
    limits: ServerLimits,
    stop: CancellationToken,
    evict: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.cancelled() => {
            // Finish the request being answered, then close.
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
        // Evicted to make room under the cap: close at once.
        _ = evict.cancelled() => return,
    };
    if let Err(e) = result {
        // Timeouts and clients that hang up are ordinary here: not worth more than debug.
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// How many HTTP connections the file descriptor limit allows: the soft limit minus the
/// descriptors already open and minus `reserve` (sending, the database, the reply mailbox,
/// logs), never below 16 so health probes still get in.
pub fn fd_budget(soft_limit: u64, open_now: u64, reserve: u64) -> usize {
    let left = soft_limit.saturating_sub(open_now).saturating_sub(reserve);
    usize::try_from(left.max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_budget_leaves_the_reserve_and_keeps_room_for_probes() {
        assert_eq!(fd_budget(1024, 20, 200), 804);
        assert_eq!(fd_budget(524_288, 30, 258), 524_000);
        assert_eq!(fd_budget(256, 20, 300), 16);
        assert_eq!(fd_budget(0, 0, 0), 16);
    }
}
