//! The OpenAI response shapes of `/v1/chat/completions` and `/v1/completions`: a whole response
//! collected from a request's event channels, or an SSE stream of chunks ending with
//! `data: [DONE]` (with the usage chunk when asked for). The handlers that produce the channels are
//! in `routes`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::error::ApiError;
use super::request::{Endpoint, GenerationRequest};
use super::routes::AppState;
use super::scheduler::{Event, FinishReason, Submission};
use super::Frontend;

pub(crate) fn random_u64() -> u64 {
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
pub(crate) struct ResponseMeta {
    id: String,
    created: u64,
    model: String,
    endpoint: Endpoint,
}

impl ResponseMeta {
    pub(crate) fn new(request: &GenerationRequest, model: &str) -> Self {
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

pub(crate) async fn whole_response(
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

pub(crate) fn stream_response<F: Frontend>(
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
