//! Parsing of OpenAI request bodies into [`GenerationRequest`], by hand from a `serde_json::Value` so
//! that every rejection names the field at fault (`max_tokens: expected an integer, got a string`),
//! which derived deserialisers do not. Fields OpenAI clients commonly send but that do not change what
//! a diffusion model does (`user`, `frequency_penalty`, `logit_bias`, ...) are accepted and ignored;
//! fields whose meaning hone cannot honour (`tools`, `logprobs`) are refused rather than silently
//! dropped.

use serde_json::{Map, Value};

use super::error::ApiError;

mod fields;
use fields::{
    optional_bool, optional_choice, optional_f64, optional_seed, optional_string, optional_usize,
    positive, refuse_present, required_string, type_error, type_name,
};

/// Which endpoint a request came from; it decides the prompt form and the response shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Rendered with the checkpoint's chat template.
    Chat(Vec<Message>),
    /// Plain text; with `suffix` the model fills the middle between `prompt` and `suffix`.
    Text {
        prompt: String,
        suffix: Option<String>,
    },
}

/// Diffusion settings as extra body fields; `None` means the checkpoint's generation_config.json
/// value (or the engine's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffusionSettings {
    pub steps: Option<usize>,
    pub block_length: Option<usize>,
    pub threshold: Option<f64>,
    /// `fast` (threshold decoding), `llada` or `dream` (reference samplers).
    pub sampler: Option<String>,
    /// `none`, `prefix` or `dual`.
    pub cache: Option<String>,
    /// Commit exactly this many tokens per step instead of using a confidence threshold (for
    /// benchmarks: random-weight models are never confident).
    pub tokens_per_step: Option<usize>,
    /// Confidence measure (`low_confidence`, `random`); names are checked by the engine.
    pub remasking: Option<String>,
    /// Dream's / mdm's unmasking order (`origin`, `maskgit_plus`, ...); checked by the engine.
    pub alg: Option<String>,
    /// LLaDA classifier-free guidance scale (the `llada` sampler only; the engine refuses it
    /// elsewhere).
    pub cfg_scale: Option<f64>,
}

/// A validated request, independent of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub endpoint: Endpoint,
    pub model: String,
    /// One entry per prompt (chat: exactly one); each yields `n` choices.
    pub prompts: Vec<Prompt>,
    pub max_tokens: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub n: usize,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with `usage` and no choices.
    pub include_usage: bool,
    pub diffusion: DiffusionSettings,
}

/// Most choices one request may ask for (`n` times the number of prompts).
pub const MAX_CHOICES: usize = 64;
/// Most stop strings (OpenAI allows 4; a few more cost nothing here).
pub const MAX_STOP: usize = 16;

pub const SAMPLERS: [&str; 3] = ["fast", "llada", "dream"];
pub const CACHE_MODES: [&str; 3] = ["none", "prefix", "dual"];

/// Parse a request body for `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GenerationRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_body(format!(
            "the request body is not valid JSON ({error}): send a JSON object with `Content-Type: \
             application/json`"
        ))
    })?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_body(format!(
            "the request body must be a JSON object, got {}",
            type_name(&value)
        )));
    };
    parse_object(endpoint, &object)
}

fn parse_object(
    endpoint: Endpoint,
    body: &Map<String, Value>,
) -> Result<GenerationRequest, ApiError> {
    let model = required_string(body, "model")?;
    let prompts = match endpoint {
        Endpoint::Chat => vec![Prompt::Chat(parse_messages(body)?)],
        Endpoint::Completion => parse_prompts(body)?,
    };
    refuse_present(body, "tools", "tool calling is not supported by hone serve")?;
    refuse_present(
        body,
        "functions",
        "function calling is not supported by hone serve",
    )?;
    if endpoint == Endpoint::Chat {
        if optional_bool(body, "logprobs")?.unwrap_or(false) {
            return Err(ApiError::invalid(
                "logprobs",
                "log probabilities are not supported by hone serve",
            ));
        }
    } else {
        refuse_present(
            body,
            "logprobs",
            "log probabilities are not supported by hone serve",
        )?;
        if optional_bool(body, "echo")?.unwrap_or(false) {
            return Err(ApiError::invalid(
                "echo",
                "echo is not supported by hone serve",
            ));
        }
    }

    let max_tokens = match optional_usize(body, "max_completion_tokens")? {
        Some(value) => Some(value),
        None => optional_usize(body, "max_tokens")?,
    };
    if max_tokens == Some(0) {
        let field = if body
            .get("max_completion_tokens")
            .is_some_and(|v| !v.is_null())
        {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        return Err(ApiError::invalid(field, "must be at least 1"));
    }
    let temperature = optional_f64(body, "temperature")?;
    if let Some(t) = temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(ApiError::invalid(
                "temperature",
                format!("must be between 0 and 2, got {t}"),
            ));
        }
    }
    let top_p = optional_f64(body, "top_p")?;
    if let Some(p) = top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(ApiError::invalid(
                "top_p",
                format!("must be in (0, 1], got {p}"),
            ));
        }
    }
    let seed = optional_seed(body)?;
    let stop = parse_stop(body)?;
    let n = optional_usize(body, "n")?.unwrap_or(1);
    if n == 0 {
        return Err(ApiError::invalid("n", "must be at least 1"));
    }
    if n * prompts.len() > MAX_CHOICES {
        return Err(ApiError::invalid(
            "n",
            format!("at most {MAX_CHOICES} choices per request (n times the number of prompts)"),
        ));
    }
    let stream = optional_bool(body, "stream")?.unwrap_or(false);
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                return Err(type_error(
                    "stream_options.include_usage",
                    "a boolean",
                    other,
                ));
            }
        },
        Some(other) => return Err(type_error("stream_options", "an object", other)),
    };

    let diffusion = DiffusionSettings {
        steps: positive(body, "steps")?,
        block_length: positive(body, "block_length")?,
        threshold: optional_f64(body, "threshold")?,
        sampler: optional_choice(body, "sampler", &SAMPLERS)?,
        cache: optional_choice(body, "cache", &CACHE_MODES)?,
        tokens_per_step: positive(body, "tokens_per_step")?,
        remasking: optional_string(body, "remasking")?,
        alg: optional_string(body, "alg")?,
        cfg_scale: optional_f64(body, "cfg_scale")?,
    };
    if let Some(threshold) = diffusion.threshold {
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(ApiError::invalid(
                "threshold",
                format!("must be in (0, 1], got {threshold}"),
            ));
        }
    }

    Ok(GenerationRequest {
        endpoint,
        model,
        prompts,
        max_tokens,
        temperature,
        top_p,
        seed,
        stop,
        n,
        stream,
        include_usage,
        diffusion,
    })
}

fn parse_messages(body: &Map<String, Value>) -> Result<Vec<Message>, ApiError> {
    let Some(value) = body.get("messages") else {
        return Err(ApiError::invalid("messages", "required field is missing"));
    };
    let Value::Array(items) = value else {
        return Err(type_error("messages", "an array of messages", value));
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "must contain at least one message",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = format!("messages[{index}]");
            let Value::Object(message) = item else {
                return Err(type_error(
                    &field,
                    "an object with `role` and `content`",
                    item,
                ));
            };
            let role = match message.get("role") {
                Some(Value::String(role)) => role.clone(),
                None => {
                    return Err(ApiError::invalid(
                        format!("{field}.role"),
                        "required field is missing",
                    ))
                }
                Some(other) => return Err(type_error(&format!("{field}.role"), "a string", other)),
            };
            if !["system", "developer", "user", "assistant", "tool"].contains(&role.as_str()) {
                return Err(ApiError::invalid(
                    format!("{field}.role"),
                    format!(
                        "unknown role `{role}`: use system, developer, user, assistant or tool"
                    ),
                ));
            }
            let content = message_content(&format!("{field}.content"), message.get("content"))?;
            Ok(Message { role, content })
        })
        .collect()
}

/// `content` is a string, null (assistant turns), or an array of `{"type": "text", "text": ...}` parts.
fn message_content(field: &str, value: Option<&Value>) -> Result<String, ApiError> {
    match value {
        None => Err(ApiError::invalid(field, "required field is missing")),
        Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (index, part) in parts.iter().enumerate() {
                let part_field = format!("{field}[{index}]");
                match (part.get("type"), part.get("text")) {
                    (Some(Value::String(kind)), Some(Value::String(part_text)))
                        if kind == "text" =>
                    {
                        text.push_str(part_text);
                    }
                    (Some(Value::String(kind)), _) if kind != "text" => {
                        return Err(ApiError::invalid(
                            format!("{part_field}.type"),
                            format!("content parts of type `{kind}` are not supported: send text"),
                        ));
                    }
                    _ => {
                        return Err(type_error(
                            &part_field,
                            "a {\"type\": \"text\", \"text\": ...} part",
                            part,
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(other) => Err(type_error(
            field,
            "a string or an array of text parts",
            other,
        )),
    }
}

fn parse_prompts(body: &Map<String, Value>) -> Result<Vec<Prompt>, ApiError> {
    let suffix = match body.get("suffix") {
        None | Some(Value::Null) => None,
        Some(Value::String(suffix)) => Some(suffix.clone()),
        Some(other) => return Err(type_error("suffix", "a string", other)),
    };
    let texts = match body.get("prompt") {
        None => return Err(ApiError::invalid("prompt", "required field is missing")),
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(type_error(
                    &format!("prompt[{index}]"),
                    "a string (token-id prompts are not supported)",
                    other,
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err(ApiError::invalid("prompt", "must not be empty")),
        Some(other) => {
            return Err(type_error(
                "prompt",
                "a string or an array of strings",
                other,
            ))
        }
    };
    Ok(texts
        .into_iter()
        .map(|prompt| Prompt::Text {
            prompt,
            suffix: suffix.clone(),
        })
        .collect())
}

fn parse_stop(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let stop = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(stop)) => vec![stop.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(stop) => Ok(stop.clone()),
                other => Err(type_error(&format!("stop[{index}]"), "a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(type_error("stop", "a string or an array of strings", other)),
    };
    if stop.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!("at most {MAX_STOP} stop strings"),
        ));
    }
    if let Some(index) = stop.iter().position(String::is_empty) {
        return Err(ApiError::invalid(
            format!("stop[{index}]"),
            "stop strings must not be empty",
        ));
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn chat(body: &str) -> Result<GenerationRequest, ApiError> {
        parse(Endpoint::Chat, body.as_bytes())
    }

    fn param(result: Result<GenerationRequest, ApiError>) -> Option<String> {
        result.expect_err("request should be refused").param
    }

    #[test]
    fn a_full_chat_request_parses() {
        let request = chat(
            r#"{"model":"m","messages":[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"!"}]}],
                "max_tokens":16,"temperature":0.5,"top_p":0.9,"seed":-1,"stop":["\n","END"],"n":2,
                "stream":true,"stream_options":{"include_usage":true},"steps":8,"block_length":8,
                "threshold":0.9,"sampler":"fast","cache":"dual","user":"ignored","frequency_penalty":0}"#,
        )
        .unwrap();
        assert_eq!(
            request.prompts,
            vec![Prompt::Chat(vec![
                Message {
                    role: "system".into(),
                    content: "be brief".into()
                },
                Message {
                    role: "user".into(),
                    content: "hi!".into()
                },
            ])]
        );
        assert_eq!(request.max_tokens, Some(16));
        assert_eq!(request.seed, Some(u64::MAX));
        assert_eq!(request.stop, vec!["\n".to_string(), "END".to_string()]);
        assert_eq!(
            (request.n, request.stream, request.include_usage),
            (2, true, true)
        );
        assert_eq!(request.diffusion.cache.as_deref(), Some("dual"));
        assert_eq!(request.diffusion.steps, Some(8));
    }

    #[test]
    fn completion_with_suffix_and_prompt_list() {
        let request = parse(
            Endpoint::Completion,
            br#"{"model":"m","prompt":["a","b"],"suffix":"z","stop":"x"}"#,
        )
        .unwrap();
        assert_eq!(request.prompts.len(), 2);
        assert_eq!(
            request.prompts[1],
            Prompt::Text {
                prompt: "b".into(),
                suffix: Some("z".into())
            }
        );
        assert_eq!(request.stop, vec!["x".to_string()]);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(param(chat(r#"{"messages":[]}"#)).as_deref(), Some("model"));
        assert_eq!(param(chat(r#"{"model":"m"}"#)).as_deref(), Some("messages"));
        assert_eq!(
            param(chat(r#"{"model":"m","messages":"hi"}"#)).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(chat(r#"{"model":"m","messages":[{"content":"x"}]}"#)).as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param(chat(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"9"}"#
            ))
            .as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            param(chat(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a",3]}"#
            ))
            .as_deref(),
            Some("stop[1]")
        );
        assert_eq!(
            param(chat(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":7}"#
            ))
            .as_deref(),
            Some("temperature")
        );
        assert_eq!(
            param(chat(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"cache":"full"}"#
            ))
            .as_deref(),
            Some("cache")
        );
        assert_eq!(
            param(chat(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}"#
            ))
            .as_deref(),
            Some("n")
        );
        assert_eq!(
            param(parse(
                Endpoint::Completion,
                br#"{"model":"m","prompt":[1,2]}"#
            ))
            .as_deref(),
            Some("prompt[0]")
        );
        let message = chat(r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":1.5}"#)
            .unwrap_err()
            .message;
        assert!(message.starts_with("n: "), "{message}");
    }

    #[test]
    fn malformed_json_and_non_objects_are_refused() {
        let error = chat("{\"model\": ").unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("not valid JSON"),
            "{}",
            error.message
        );
        assert!(chat("[1]").unwrap_err().message.contains("JSON object"));
    }
}
