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
//! - [`scheduler`] runs the engine thread and the bounded queue (429 when full, 503 when closing);
//! - [`routes`] turns events into OpenAI responses and SSE chunk streams;
//! - `hone-cli`'s `backends::serve` implements `Frontend` and `StepDecoder` over hone-engine.
//!
//! Unit tests run the whole HTTP stack over a scripted decoder (`fake`); end-to-end tests of the
//! binary on a tiny checkpoint live in the top-level `tests/serve.rs`.

pub mod error;
pub mod metrics;
pub mod request;
pub mod routes;
pub mod scheduler;
pub mod text;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::future::{Future, IntoFuture};
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
}

/// Serve on `listener` until `shutdown` resolves; then refuse new work (503), let accepted requests
/// finish until `shutdown_timeout`, fail what is left, and return.
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

    let (signalled_tx, signalled_rx) = tokio::sync::watch::channel(false);
    let closing = Arc::clone(&scheduler);
    let graceful = async move {
        shutdown.await;
        tracing::info!(
            "shutting down: finishing {} accepted sequences",
            closing.pending()
        );
        closing.close();
        let _ = signalled_tx.send(true);
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .into_future();
    let shutdown_timeout = options.shutdown_timeout;

    let mut deadline_rx = signalled_rx.clone();
    let deadline = async move {
        while !*deadline_rx.borrow() {
            if deadline_rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(shutdown_timeout).await;
    };
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        () = deadline => {
            tracing::warn!(
                "shutdown deadline of {:?} passed: failing {} unfinished sequences",
                shutdown_timeout,
                scheduler.pending()
            );
            scheduler.abort();
            // Handlers now answer their clients with an error; give them a moment to send it.
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
    }
    scheduler.close();
    let joined = Arc::clone(&scheduler);
    let _ = tokio::task::spawn_blocking(move || joined.join()).await;
    Ok(())
}
