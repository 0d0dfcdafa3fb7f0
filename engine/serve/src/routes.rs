//! The HTTP surface: routes, API-key check, body limit, `/v1/chat/completions` and `/v1/completions`
//! (their response shapes, whole and SSE, are in `responses`), `/v1/models`, `/health` and
//! `/metrics`. Handlers prepare sequences through the [`Frontend`], hand them to the [`Scheduler`]
//! and turn its events into responses; dropping a response (client gone) drops the event receivers,
//! which cancels the sequences.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::ApiError;
use super::metrics::Metrics;
use super::request::{self, Endpoint, GenerationRequest};
use super::responses::{random_u64, stream_response, whole_response, ResponseMeta};
use super::scheduler::{Job, Scheduler, Submission};
use super::Frontend;

/// Everything the handlers share.
pub struct AppState<F: Frontend> {
    pub frontend: Arc<F>,
    pub scheduler: Arc<Scheduler<F::Sequence>>,
    pub metrics: Arc<Metrics>,
    /// Required `Authorization: Bearer` key for `/v1/*`; `None` = open.
    pub api_key: Option<String>,
    pub max_body_bytes: usize,
    /// Unix time the server started, reported as the model's `created`.
    pub created: u64,
}

/// The whole application.
pub fn router<F: Frontend>(state: Arc<AppState<F>>) -> Router {
    let v1 = Router::new()
        .route("/v1/chat/completions", post(chat::<F>))
        .route("/v1/completions", post(completions::<F>))
        .route("/v1/models", get(models::<F>))
        .route("/v1/models/{*id}", get(model::<F>))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize::<F>,
        ));
    Router::new()
        .merge(v1)
        .route("/health", get(health::<F>))
        .route("/metrics", get(metrics::<F>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

async fn authorize<F: Frontend>(
    State(state): State<Arc<AppState<F>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &state.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.trim().as_bytes(), key.as_bytes()) {
            state.metrics.request("auth", 401, None);
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// Compare without an early exit, so response time says nothing about how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (index, byte) in b.iter().enumerate() {
        difference |= usize::from(a.get(index).copied().unwrap_or(0) ^ byte);
    }
    difference == 0
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn health<F: Frontend>(State(state): State<Arc<AppState<F>>>) -> Response {
    if state.scheduler.is_accepting() {
        Json(json!({"status": "ok", "model": state.frontend.model_id()})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response()
    }
}

async fn metrics<F: Frontend>(State(state): State<Arc<AppState<F>>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn model_object<F: Frontend>(state: &AppState<F>) -> Value {
    json!({
        "id": state.frontend.model_id(),
        "object": "model",
        "created": state.created,
        "owned_by": "hone",
    })
}

async fn models<F: Frontend>(State(state): State<Arc<AppState<F>>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_object(&state)]}))
}

async fn model<F: Frontend>(
    State(state): State<Arc<AppState<F>>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if id == state.frontend.model_id() {
        Ok(Json(model_object(&state)))
    } else {
        Err(ApiError::model_not_found(&id, state.frontend.model_id()))
    }
}

async fn chat<F: Frontend>(
    State(state): State<Arc<AppState<F>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generate(state, Endpoint::Chat, body).await
}

async fn completions<F: Frontend>(
    State(state): State<Arc<AppState<F>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generate(state, Endpoint::Completion, body).await
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "chat_completions",
        Endpoint::Completion => "completions",
    }
}

async fn generate<F: Frontend>(
    state: Arc<AppState<F>>,
    endpoint: Endpoint,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let name = endpoint_name(endpoint);
    match start(&state, endpoint, body).await {
        Ok((request, prompt_tokens, submissions)) => {
            let meta = ResponseMeta::new(&request, state.frontend.model_id());
            if request.stream {
                state.metrics.request(name, 200, None);
                stream_response(state, meta, request, prompt_tokens, submissions, started)
            } else {
                let response = whole_response(&meta, &request, prompt_tokens, submissions).await;
                let status = response.status().as_u16();
                state
                    .metrics
                    .request(name, status, Some(started.elapsed().as_secs_f64()));
                response
            }
        }
        Err(error) => {
            state.metrics.request(name, error.status.as_u16(), None);
            error.into_response()
        }
    }
}

/// Parse, check the model, prepare every choice and queue them.
async fn start<F: Frontend>(
    state: &Arc<AppState<F>>,
    endpoint: Endpoint,
    body: Result<Bytes, BytesRejection>,
) -> Result<(GenerationRequest, usize, Vec<Submission>), ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large(state.max_body_bytes)
        } else {
            ApiError::bad_body(format!("could not read the request body: {rejection}"))
        }
    })?;
    let request = request::parse(endpoint, &body)?;
    if request.model != state.frontend.model_id() {
        return Err(ApiError::model_not_found(
            &request.model,
            state.frontend.model_id(),
        ));
    }
    if !state.scheduler.is_accepting() {
        return Err(ApiError::shutting_down());
    }
    // Chat templates and tokenisers can take milliseconds on long prompts: keep them off the
    // async workers.
    let frontend = Arc::clone(&state.frontend);
    let (request, prepared) = tokio::task::spawn_blocking(move || {
        let prepared = prepare_all(frontend.as_ref(), &request);
        (request, prepared)
    })
    .await
    .map_err(|error| ApiError::internal(format!("request preparation failed: {error}")))?;
    let (jobs, prompt_tokens) = prepared?;
    let submissions = state.scheduler.submit(jobs)?;
    Ok((request, prompt_tokens, submissions))
}

/// A request's jobs and its prompt token count.
type PreparedJobs<S> = (Vec<Job<S>>, usize);

/// One job per choice, in choice order (`prompt index * n + sample`), and the prompt tokens counted
/// once per prompt as OpenAI does.
fn prepare_all<F: Frontend>(
    frontend: &F,
    request: &GenerationRequest,
) -> Result<PreparedJobs<F::Sequence>, ApiError> {
    let mut jobs = Vec::with_capacity(request.prompts.len() * request.n);
    let mut prompt_tokens = 0;
    for prompt in &request.prompts {
        for sample in 0..request.n {
            let seed = match request.seed {
                Some(seed) => seed.wrapping_add(sample as u64),
                None => random_u64(),
            };
            let prepared = frontend.prepare(request, prompt, seed)?;
            if sample == 0 {
                prompt_tokens += prepared.prompt_tokens;
            }
            jobs.push(Job {
                sequence: prepared.sequence,
                stop: request.stop.clone(),
                prompt_tokens: prepared.prompt_tokens,
            });
        }
    }
    Ok((jobs, prompt_tokens))
}
