//! The OpenAI-compatible backend: `POST {base_url}/chat/completions`, plain or streamed (SSE), for
//! any server that speaks the protocol (OpenAI, Inception's Mercury, vLLM, SGLang, llama.cpp,
//! `hone serve`). Owns the wire format, retries with backoff on 429 / 5xx / connection failures, and
//! the mapping of 401 / 404 to errors that say what to fix. Infill is not part of the protocol, so the
//! agent uses edit blocks with this backend.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::model::{
    Candidate, ChatRequest, ChatResponse, FinishReason, Model, ModelDescription, StreamCallback,
    StreamUpdate, Usage,
};
use crate::{Error, Result};

/// How to reach an endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Up to and including the version, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The key itself (read by the caller from the environment variable the user named), if any.
    pub api_key: Option<String>,
    /// Model name sent in each request.
    pub model: String,
    /// Extra headers, e.g. an organisation id.
    pub headers: Vec<(String, String)>,
    /// Limit for one whole request, streaming included.
    pub timeout: Duration,
    /// Retries after the first attempt on 429 / 5xx / connection errors.
    pub max_retries: u32,
    /// First backoff; doubles each retry (a `Retry-After` header wins, capped at 30 s).
    pub backoff: Duration,
    /// Stream answers (SSE) instead of waiting for the whole body.
    pub stream: bool,
    /// Longest prompt + answer, when the user knows it.
    pub context_window: Option<usize>,
}

impl OpenAiConfig {
    /// Defaults for everything but where to go and which model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(600),
            max_retries: 4,
            backoff: Duration::from_millis(500),
            stream: true,
            context_window: None,
        }
    }
}

/// The backend.
#[derive(Debug)]
pub struct OpenAiModel {
    config: OpenAiConfig,
    client: reqwest::Client,
    url: String,
}

impl OpenAiModel {
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(30).min(config.timeout))
            .build()
            .map_err(|error| Error::Http {
                url: config.base_url.clone(),
                message: error.to_string(),
            })?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::InvalidRequest(format!(
                "base URL {:?} must start with http:// or https://",
                config.base_url
            )));
        }
        Ok(Self {
            config,
            client,
            url,
        })
    }

    fn body(&self, request: &ChatRequest, n: usize, seed_offset: u64) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|message| json!({"role": message.role.as_str(), "content": message.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "n": n,
            "max_tokens": request.max_tokens,
            "stream": self.config.stream,
        });
        let sampling = &request.sampling;
        // A re-ask (the server ignored `n`) must not get the same answer again: it always carries a
        // seed (the caller's plus the candidate's index, or one derived from the request), and a
        // sampling temperature when the caller left it to the server (whose default may be greedy).
        let reask = seed_offset > 0;
        let seed = match sampling.seed {
            Some(seed) => Some(seed.wrapping_add(seed_offset)),
            None if reask => Some(derived_seed(request).wrapping_add(seed_offset)),
            None => None,
        };
        let temperature = match sampling.temperature {
            Some(temperature) => Some(temperature),
            None if reask => Some(REASK_TEMPERATURE),
            None => None,
        };
        let fields = [
            // OpenAI accepts at most four stop strings; more would be a 400.
            (
                "stop",
                (!request.stop.is_empty())
                    .then(|| json!(request.stop.iter().take(4).collect::<Vec<_>>())),
            ),
            ("temperature", temperature.map(|value| json!(value))),
            ("top_p", sampling.top_p.map(|value| json!(value))),
            ("seed", seed.map(|value| json!(value))),
            // Diffusion settings understood by `hone serve`; only sent when the user set them.
            ("steps", sampling.steps.map(|value| json!(value))),
            (
                "block_length",
                sampling.block_length.map(|value| json!(value)),
            ),
            ("threshold", sampling.threshold.map(|value| json!(value))),
        ];
        if let Some(object) = body.as_object_mut() {
            for (key, value) in fields {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            if self.config.stream {
                object.insert("stream_options".to_owned(), json!({"include_usage": true}));
            }
        }
        body
    }

    /// Send one request, retrying what is worth retrying; returns the successful response.
    async fn send(&self, body: &Value) -> Result<reqwest::Response> {
        let mut attempt = 0u32;
        loop {
            let mut builder = self.client.post(&self.url).json(body);
            if let Some(key) = &self.config.api_key {
                builder = builder.bearer_auth(key);
            }
            for (name, value) in &self.config.headers {
                builder = builder.header(name, value);
            }
            let retry_wait = match builder.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<f64>().ok())
                        .and_then(|seconds| Duration::try_from_secs_f64(seconds.min(30.0)).ok());
                    let message = error_message(response.text().await.unwrap_or_default());
                    match status {
                        401 | 403 => {
                            return Err(Error::Unauthorized {
                                url: self.url.clone(),
                                status,
                                message,
                            })
                        }
                        404 => {
                            return Err(Error::NotFound {
                                url: self.url.clone(),
                                message,
                            })
                        }
                        429 | 500..=599 if attempt < self.config.max_retries => {
                            tracing::warn!(
                                status,
                                attempt,
                                "model endpoint busy or failing; retrying"
                            );
                            retry_after
                        }
                        _ => {
                            return Err(Error::Http {
                                url: self.url.clone(),
                                message: format!("HTTP {status}: {message}"),
                            })
                        }
                    }
                }
                Err(error) if attempt < self.config.max_retries && !error.is_builder() => {
                    tracing::warn!(%error, attempt, "model endpoint unreachable; retrying");
                    None
                }
                Err(error) => {
                    return Err(Error::Http {
                        url: self.url.clone(),
                        message: error.to_string(),
                    })
                }
            };
            let wait =
                retry_wait.unwrap_or_else(|| self.config.backoff * 2u32.saturating_pow(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn one_call(
        &self,
        request: &ChatRequest,
        n: usize,
        first_index: usize,
        stream: Option<StreamCallback<'_>>,
    ) -> Result<(Vec<Candidate>, Usage)> {
        let body = self.body(request, n, first_index as u64);
        let response = self.send(&body).await?;
        if self.config.stream {
            self.read_stream(response, n, first_index, stream).await
        } else {
            let value: Value = response.json().await.map_err(|error| Error::Http {
                url: self.url.clone(),
                message: error.to_string(),
            })?;
            let mut candidates = parse_choices(&value, |choice| {
                choice
                    .pointer("/message/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            candidates.truncate(n);
            if let Some(stream) = stream {
                for (index, candidate) in candidates.iter().enumerate() {
                    stream(StreamUpdate {
                        index: first_index + index,
                        delta: candidate.text.clone(),
                    });
                }
            }
            Ok((candidates, parse_usage(&value)))
        }
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        n: usize,
        first_index: usize,
        stream: Option<StreamCallback<'_>>,
    ) -> Result<(Vec<Candidate>, Usage)> {
        let mut texts: Vec<String> = vec![String::new(); n];
        let mut finish: Vec<Option<FinishReason>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut usage = Usage::default();
        let mut buffer = String::new();
        let mut bytes = response.bytes_stream();
        let mut done = false;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|error| Error::Http {
                url: self.url.clone(),
                message: format!("stream interrupted: {error}"),
            })?;
            buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data:") else {
                        continue;
                    };
                    let data = data.trim();
                    if data == "[DONE]" {
                        done = true;
                        continue;
                    }
                    let value: Value = serde_json::from_str(data).map_err(|error| Error::Http {
                        url: self.url.clone(),
                        message: format!("unreadable stream event {data:?}: {error}"),
                    })?;
                    if let Some(error) = value.get("error") {
                        return Err(Error::Http {
                            url: self.url.clone(),
                            message: error_message(error.to_string()),
                        });
                    }
                    if value.get("usage").is_some_and(|usage| !usage.is_null()) {
                        usage = parse_usage(&value);
                    }
                    for choice in value
                        .get("choices")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let index =
                            choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                        if index >= n {
                            continue;
                        }
                        seen[index] = true;
                        if let Some(delta) =
                            choice.pointer("/delta/content").and_then(Value::as_str)
                        {
                            texts[index].push_str(delta);
                            if let (Some(stream), false) = (stream, delta.is_empty()) {
                                stream(StreamUpdate {
                                    index: first_index + index,
                                    delta: delta.to_owned(),
                                });
                            }
                        }
                        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                            finish[index] = Some(parse_finish(reason));
                        }
                    }
                }
            }
        }
        if !done && seen.iter().all(|seen| !seen) {
            return Err(Error::Http {
                url: self.url.clone(),
                message: "the stream ended without any choice".to_owned(),
            });
        }
        let candidates = texts
            .into_iter()
            .zip(finish)
            .zip(seen)
            .filter(|(_, seen)| *seen)
            .map(|((text, finish), _)| Candidate {
                text,
                finish_reason: finish.unwrap_or(FinishReason::Stop),
            })
            .collect();
        Ok((candidates, usage))
    }
}

/// Temperature of a re-ask when the caller set none.
const REASK_TEMPERATURE: f32 = 0.7;

/// A seed that depends only on what is asked (FNV-1a over the messages), so re-asks differ from
/// one another through their offsets and a rerun of the same request asks the same way.
fn derived_seed(request: &ChatRequest) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for message in &request.messages {
        for byte in message.role.as_str().bytes().chain(message.content.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Servers read seeds as signed 32- or 64-bit integers; stay well inside both.
    hash % (1 << 31)
}

fn parse_finish(reason: &str) -> FinishReason {
    if reason == "length" {
        FinishReason::Length
    } else {
        FinishReason::Stop
    }
}

fn parse_choices(value: &Value, text: impl Fn(&Value) -> Option<String>) -> Vec<Candidate> {
    let mut choices: Vec<(u64, Candidate)> = value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(position, choice)| {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let finish_reason = parse_finish(
                choice
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("stop"),
            );
            (
                index,
                Candidate {
                    text: text(choice).unwrap_or_default(),
                    finish_reason,
                },
            )
        })
        .collect();
    choices.sort_by_key(|(index, _)| *index);
    choices
        .into_iter()
        .map(|(_, candidate)| candidate)
        .collect()
}

fn parse_usage(value: &Value) -> Usage {
    let field = |name: &str| {
        value
            .pointer(&format!("/usage/{name}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        prompt_tokens: field("prompt_tokens"),
        completion_tokens: field("completion_tokens"),
        nfe: field("nfe"),
        model_time: Duration::ZERO,
    }
}

/// The `error.message` of an OpenAI error body, or the (shortened) body itself.
fn error_message(body: String) -> String {
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let message = parsed.as_ref().and_then(|value| {
        value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let mut message = message.unwrap_or(body);
    if message.len() > 500 {
        let cut = (0..=500)
            .rev()
            .find(|&i| message.is_char_boundary(i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push('…');
    }
    if message.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        message
    }
}

impl Model for OpenAiModel {
    fn describe(&self) -> ModelDescription {
        ModelDescription {
            backend: "openai".to_owned(),
            name: self.config.model.clone(),
            supports_infill: false,
            context_window: self.config.context_window,
            default_candidates: 1,
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let started = Instant::now();
            let wanted = request.n.max(1);
            let mut candidates = Vec::with_capacity(wanted);
            let mut usage = Usage::default();
            // Servers that ignore `n` (llama.cpp, some proxies) answer with one choice: ask again for
            // the rest, with shifted seeds so the candidates differ.
            while candidates.len() < wanted {
                let (mut more, more_usage) = self
                    .one_call(request, wanted - candidates.len(), candidates.len(), stream)
                    .await?;
                if more.is_empty() {
                    return Err(Error::Http {
                        url: self.url.clone(),
                        message: "the response had no choices".to_owned(),
                    });
                }
                usage.add(&more_usage);
                candidates.append(&mut more);
            }
            usage.model_time = started.elapsed();
            Ok(ChatResponse { candidates, usage })
        })
    }
}
