//! The server's error type and its rendering as an OpenAI error object:
//! `{"error": {"message", "type", "param", "code"}}` with the HTTP status clients expect (400 with the
//! offending field in `param`, 401, 404, 413, 429, 503, 500).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::decoder::DecoderError;

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `rate_limit_error`, ...
    pub kind: &'static str,
    pub message: String,
    /// The request field at fault, as OpenAI names it (`messages`, `max_tokens`, `stop[1]`).
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// The decoder's own error when the engine failed (kept whole for in-process callers such as
    /// `hone run`, which can downcast it; clients see only `message`).
    pub cause: Option<DecoderError>,
}

impl ApiError {
    /// 400: a field is missing, has the wrong type or an invalid value.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        let param = param.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: format!("{param}: {}", message.into()),
            param: Some(param),
            code: None,
            cause: None,
        }
    }

    /// 400 that concerns the body as a whole (not JSON, not an object).
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            param: None,
            code: None,
            cause: None,
        }
    }

    /// 400 `context_length_exceeded`: the prompt plus the requested tokens do not fit the model.
    pub fn context_length(param: &str, message: impl Into<String>) -> Self {
        Self {
            code: Some("context_length_exceeded"),
            ..Self::invalid(param, message)
        }
    }

    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "invalid_request_error",
            message:
                "invalid or missing API key: send `Authorization: Bearer <key>` with the key the \
                      server was started with"
                    .into(),
            param: None,
            code: Some("invalid_api_key"),
            cause: None,
        }
    }

    pub fn model_not_found(requested: &str, served: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            message: format!(
                "the model `{requested}` does not exist on this server: it serves `{served}` \
                 (see GET /v1/models)"
            ),
            param: Some("model".into()),
            code: Some("model_not_found"),
            cause: None,
        }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            message: format!(
                "no route {path}: hone serve offers POST /v1/chat/completions, POST /v1/completions, \
                 GET /v1/models, GET /health and GET /metrics"
            ),
            param: None,
            code: Some("unknown_url"),
            cause: None,
        }
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "invalid_request_error",
            message: format!(
                "request body is larger than {limit} bytes: send a shorter prompt or start the server \
                 with a larger body limit"
            ),
            param: None,
            code: Some("request_too_large"),
            cause: None,
        }
    }

    pub fn queue_full(max_queue: usize) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            message: format!(
                "the request queue is full ({max_queue} waiting sequences): retry later, or start the \
                 server with a larger queue"
            ),
            param: None,
            code: Some("rate_limit_exceeded"),
            cause: None,
        }
    }

    pub fn shutting_down() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "server_error",
            message: "the server is shutting down and accepts no new requests".into(),
            param: None,
            code: Some("service_unavailable"),
            cause: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            message: message.into(),
            param: None,
            code: None,
            cause: None,
        }
    }

    /// 500 for a decoder failure, keeping the decoder's error as the cause.
    pub fn decoder(context: &str, error: DecoderError) -> Self {
        let message = format!("{context}{error}");
        Self {
            cause: Some(error),
            ..Self::internal(message)
        }
    }

    /// The JSON body, also used inside a stream when an error happens after the headers went out.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
