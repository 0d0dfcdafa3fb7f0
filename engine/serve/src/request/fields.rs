//! Readers of one field of a JSON request body, each refusing a wrong type or value with an
//! `ApiError` that names the field (`max_tokens: expected an integer, got a string`).

use serde_json::{Map, Value};

use crate::error::ApiError;

pub(super) fn required_string(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(field, "required field is missing")),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(type_error(field, "a string", other)),
    }
}

pub(super) fn refuse_present(
    body: &Map<String, Value>,
    field: &str,
    why: &str,
) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.is_empty() => Ok(()),
        Some(_) => Err(ApiError::invalid(field, why)),
    }
}

pub(super) fn optional_bool(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(type_error(field, "a boolean", other)),
    }
}

pub(super) fn optional_f64(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<f64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => Ok(number.as_f64()),
        Some(other) => Err(type_error(field, "a number", other)),
    }
}

pub(super) fn optional_usize(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<usize>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(value) => usize::try_from(value)
                .map(Some)
                .map_err(|_| ApiError::invalid(field, "is too large")),
            None => Err(ApiError::invalid(
                field,
                format!("expected a non-negative integer, got {number}"),
            )),
        },
        Some(other) => Err(type_error(field, "a non-negative integer", other)),
    }
}

pub(super) fn positive(body: &Map<String, Value>, field: &str) -> Result<Option<usize>, ApiError> {
    let value = optional_usize(body, field)?;
    if value == Some(0) {
        return Err(ApiError::invalid(field, "must be at least 1"));
    }
    Ok(value)
}

/// OpenAI's `seed` is a signed 64-bit integer; negative seeds map onto u64 bit for bit.
pub(super) fn optional_seed(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match body.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match (number.as_u64(), number.as_i64()) {
            (Some(value), _) => Ok(Some(value)),
            (None, Some(value)) => Ok(Some(value as u64)),
            _ => Err(ApiError::invalid(
                "seed",
                format!("expected an integer, got {number}"),
            )),
        },
        Some(other) => Err(type_error("seed", "an integer", other)),
    }
}

/// Any string; what it may name is the engine's to check.
pub(super) fn optional_string(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(type_error(field, "a string", other)),
    }
}

pub(super) fn optional_choice(
    body: &Map<String, Value>,
    field: &str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if allowed.contains(&text.as_str()) => Ok(Some(text.clone())),
        Some(Value::String(text)) => Err(ApiError::invalid(
            field,
            format!("unknown value `{text}`: use one of {}", allowed.join(", ")),
        )),
        Some(other) => Err(type_error(field, "a string", other)),
    }
}

pub(super) fn type_error(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(
        field,
        format!("expected {expected}, got {}", type_name(got)),
    )
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
