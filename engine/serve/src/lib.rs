//! `hone serve`'s HTTP stack: an OpenAI-compatible API (axum on tokio) with dynamic batching, for any
//! engine that implements [`Frontend`] and [`scheduler::StepDecoder`]. This crate does not depend on
//! candle or hone-engine: the local engine's implementation lives in `hone-cli` (`backends/serve.rs`).
//!
//! Layers, each testable alone:
//! - [`request`] parses OpenAI bodies into an engine-independent [`request::GenerationRequest`],
//!   naming the field at fault in every 400;
//! - [`Frontend`] (shared by the handlers, `Sync`) checks and tokenises one choice into a prepared
//!   sequence; [`scheduler::StepDecoder`] (owned by the engine thread) decodes prepared sequences
//!   step by step, with sequences joining and leaving between steps;
//! - [`decoder`] is the engine seam ([`scheduler::StepDecoder`] and its step reports);
//! - [`scheduler`] runs the engine thread and the bounded queue (429 when full, 503 when closing);
//!   it is also `hone run`'s engine thread (hone-cli's `backends::engine_jobs`);
//! - [`routes`] turns events into OpenAI responses and SSE chunk streams (the shapes in
//!   `responses`);
//! - `hone-cli`'s `backends::serve` implements `Frontend` and `StepDecoder` over hone-engine.
//!
//! Unit tests run the whole HTTP stack over a scripted decoder (`fake`); end-to-end tests of the
//! binary on a tiny checkpoint live in the top-level `tests/serve.rs`.

pub mod decoder;
pub mod error;
pub mod metrics;
pub mod request;
mod responses;
pub mod routes;
pub mod scheduler;
pub mod text;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use error::ApiError;
use metrics::Metrics;
use request::{GenerationRequest, Prompt};
use scheduler::{Scheduler, SchedulerConfig, StepDecoder};

/// A choice ready for the engine thread.
#[derive(Debug)]
pub struct Prepared<S> {
    pub sequence: S,
    pub prompt_tokens: usize,
}

/// The request-side half of a backend: knows the model's name, chat template, tokenizer, limits and
/// defaults; runs on the HTTP workers (so it must be `Sync`).
pub trait Frontend: Send + Sync + 'static {
    type Sequence: Send + 'static;

    /// The id clients send as `model` and `/v1/models` lists.
    fn model_id(&self) -> &str;

    /// Validate and tokenise one choice of `request` (`prompt` is one of `request.prompts`), decoding
    /// with `seed`. Errors name the request field at fault (`messages` for a prompt too long, ...).
    fn prepare(
        &self,
        request: &GenerationRequest,
        prompt: &Prompt,
        seed: u64,
    ) -> Result<Prepared<Self::Sequence>, ApiError>;
}

/// Server settings that are not the engine's.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub api_key: Option<String>,
    pub max_batch: usize,
    pub max_queue: usize,
    pub max_body_bytes: usize,
    /// How long a newly admitted sequence waits for others to share its first step (and batch).
    pub batch_window: Duration,
    /// How long in-flight requests may run on after a shutdown signal before they are failed.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request's headers before its connection is closed
    /// (a half-sent request would otherwise hold a connection open forever).
    pub header_timeout: Duration,
}

/// Default of `ServerOptions::header_timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve on `listener` until `shutdown` resolves; then refuse new work (503, and `/health` answers
/// 503 too: the listener stays open while draining), let accepted requests finish until
/// `shutdown_timeout`, fail what is left, close every connection (idle keep-alive ones at once) and
/// return. Each connection must send a request's headers within `header_timeout`.
pub async fn serve<F, D>(
    listener: tokio::net::TcpListener,
    frontend: F,
    decoder: D,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    F: Frontend,
    D: StepDecoder<Sequence = F::Sequence>,
{
    let metrics = Arc::new(Metrics::default());
    let config = SchedulerConfig {
        max_batch: options.max_batch.max(1),
        max_queue: options.max_queue,
        batch_window: options.batch_window,
    };
    let scheduler = Arc::new(Scheduler::start(decoder, config, Arc::clone(&metrics))?);
    let state = Arc::new(routes::AppState {
        frontend: Arc::new(frontend),
        scheduler: Arc::clone(&scheduler),
        metrics,
        api_key: options.api_key.clone(),
        max_body_bytes: options.max_body_bytes,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    });
    let app = routes::router(state);
    // `close` tells every connection to finish its current exchange and close; each connection
    // task holds a clone of `alive`, so `alive_tx.closed()` resolves when the last one has ended.
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let (alive_tx, alive_rx) = tokio::sync::watch::channel(());
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accepting a connection failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(options.header_timeout)
                    // While draining, answer (503) and close rather than keep clients around.
                    .keep_alive(deadline.is_none());
                let mut close = close_rx.clone();
                let alive = alive_rx.clone();
                tokio::spawn(async move {
                    let connection =
                        builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    let mut closing = false;
                    loop {
                        tokio::select! {
                            result = connection.as_mut() => {
                                if let Err(error) = result {
                                    tracing::debug!("connection ended: {error}");
                                }
                                break;
                            }
                            changed = close.changed(), if !closing => {
                                closing = true;
                                if changed.is_ok() {
                                    connection.as_mut().graceful_shutdown();
                                }
                            }
                        }
                    }
                    drop(alive);
                });
            }
            () = &mut shutdown, if deadline.is_none() => {
                tracing::info!(
                    "shutting down: finishing {} accepted sequences",
                    scheduler.pending()
                );
                scheduler.close();
                deadline = Some(tokio::time::Instant::now() + options.shutdown_timeout);
            }
            _ = poll.tick(), if deadline.is_some() => {
                if scheduler.pending() == 0 {
                    break;
                }
                if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                    tracing::warn!(
                        "shutdown deadline of {:?} passed: failing {} unfinished sequences",
                        options.shutdown_timeout,
                        scheduler.pending()
                    );
                    scheduler.abort();
                    break;
                }
            }
        }
    }
    drop(listener);
    // Idle keep-alive connections close at once; responses still being written (a final SSE
    // chunk, the error of an aborted sequence) get a moment to finish.
    let _ = close_tx.send(true);
    drop(alive_rx);
    let _ = tokio::time::timeout(Duration::from_secs(2), alive_tx.closed()).await;
    scheduler.close();
    let joined = Arc::clone(&scheduler);
    let _ = tokio::task::spawn_blocking(move || joined.join()).await;
    Ok(())
}
