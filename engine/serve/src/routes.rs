//! The HTTP surface: routes, API-key check, body limit, and the OpenAI response shapes for
//! `/v1/chat/completions` and `/v1/completions` (whole responses and SSE chunk streams ending with
//! `data: [DONE]`), `/v1/models`, `/health` and `/metrics`. Handlers prepare sequences through the
//! [`Frontend`], hand them to the [`Scheduler`] and turn its events into responses; dropping a
//! response (client gone) drops the event receivers, which cancels the sequences.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::error::ApiError;
use super::metrics::Metrics;
use super::request::{self, Endpoint, GenerationRequest};
use super::scheduler::{Event, FinishReason, Job, Scheduler, Submission};
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

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The fields every response and chunk of one request share.
struct ResponseMeta {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
}

impl ResponseMeta {
    fn new(request: &GenerationRequest, model: &str) -> Self {
        let prefix = match request.endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completion => "cmpl",
        };
        Self {
            id: format!("{prefix}-{:016x}{:016x}", random_u64(), random_u64()),
            created: unix_now(),
            model: model.to_string(),
            endpoint: request.endpoint,
        }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }

    fn envelope(&self, chunk: bool, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// A choice's end state.
struct Finished {
    text: String,
    reason: FinishReason,
    completion_tokens: usize,
}

async fn collect(mut events: Submission) -> Result<Finished, ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Text(delta) => text.push_str(&delta),
            Event::Finished {
                reason,
                completion_tokens,
            } => {
                return Ok(Finished {
                    text,
                    reason,
                    completion_tokens,
                })
            }
            Event::Failed(error) => return Err(error),
        }
    }
    Err(ApiError::internal(
        "the engine stopped before the request finished",
    ))
}

async fn whole_response(
    meta: &ResponseMeta,
    request: &GenerationRequest,
    prompt_tokens: usize,
    submissions: Vec<Submission>,
) -> Response {
    let results = futures::future::join_all(submissions.into_iter().map(collect)).await;
    let mut choices = Vec::with_capacity(results.len());
    let mut completion_tokens = 0;
    for (index, result) in results.into_iter().enumerate() {
        let finished = match result {
            Ok(finished) => finished,
            Err(error) => return error.into_response(),
        };
        completion_tokens += finished.completion_tokens;
        choices.push(match request.endpoint {
            Endpoint::Chat => json!({
                "index": index,
                "message": {"role": "assistant", "content": finished.text},
                "logprobs": null,
                "finish_reason": finished.reason.as_str(),
            }),
            Endpoint::Completion => json!({
                "text": finished.text,
                "index": index,
                "logprobs": null,
                "finish_reason": finished.reason.as_str(),
            }),
        });
    }
    let mut body = meta.envelope(false, choices);
    body["usage"] = usage(prompt_tokens, completion_tokens);
    Json(body).into_response()
}

fn choice_chunk(
    meta: &ResponseMeta,
    index: usize,
    text: Option<&str>,
    finish: Option<FinishReason>,
) -> Value {
    let finish_reason = finish.map(FinishReason::as_str);
    let choice = match meta.endpoint {
        Endpoint::Chat => {
            let delta = match (text, finish) {
                (Some(text), _) => json!({"content": text}),
                (None, Some(_)) => json!({}),
                (None, None) => json!({"role": "assistant", "content": ""}),
            };
            json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish_reason})
        }
        Endpoint::Completion => json!({
            "text": text.unwrap_or_default(),
            "index": index,
            "logprobs": null,
            "finish_reason": finish_reason,
        }),
    };
    meta.envelope(true, vec![choice])
}

fn data(value: &Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

fn stream_response<F: Frontend>(
    state: Arc<AppState<F>>,
    meta: ResponseMeta,
    request: GenerationRequest,
    prompt_tokens: usize,
    submissions: Vec<Submission>,
    started: Instant,
) -> Response {
    let choices = submissions.len();
    let merged =
        futures::stream::select_all(submissions.into_iter().enumerate().map(|(index, events)| {
            futures::stream::unfold(events, |mut events| async move {
                events.recv().await.map(|event| (event, events))
            })
            .map(move |event| (index, event))
            .boxed()
        }));
    let events = chunks(
        meta,
        request.include_usage,
        prompt_tokens,
        choices,
        merged,
        state,
        started,
    );
    // Comments every second keep proxies from closing a quiet stream and let a write fail soon after
    // a client leaves, so its sequences are cancelled even while no text is committed.
    Sse::new(events.map(Ok::<_, std::convert::Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(1)))
        .into_response()
}

fn chunks<F: Frontend>(
    meta: ResponseMeta,
    include_usage: bool,
    prompt_tokens: usize,
    choices: usize,
    mut merged: impl Stream<Item = (usize, Event)> + Unpin + Send + 'static,
    state: Arc<AppState<F>>,
    started: Instant,
) -> impl Stream<Item = SseEvent> + Send + 'static {
    async_stream::stream! {
        if meta.endpoint == Endpoint::Chat {
            for index in 0..choices {
                yield data(&choice_chunk(&meta, index, None, None));
            }
        }
        let mut completion_tokens = 0;
        let mut open = choices;
        while let Some((index, event)) = merged.next().await {
            match event {
                Event::Text(text) => yield data(&choice_chunk(&meta, index, Some(&text), None)),
                Event::Finished { reason, completion_tokens: tokens } => {
                    completion_tokens += tokens;
                    open -= 1;
                    yield data(&choice_chunk(&meta, index, None, Some(reason)));
                }
                Event::Failed(error) => {
                    yield data(&error.body());
                    return;
                }
            }
        }
        if open > 0 {
            yield data(&ApiError::internal("the engine stopped before the request finished").body());
            return;
        }
        if include_usage {
            let mut last = meta.envelope(true, Vec::new());
            last["usage"] = usage(prompt_tokens, completion_tokens);
            yield data(&last);
        }
        state.metrics.observe_request_seconds(started.elapsed().as_secs_f64());
        yield SseEvent::default().data("[DONE]");
    }
}
