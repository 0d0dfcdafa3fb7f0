//! The OpenAI-compatible backend against a loopback server started by each test: plain and streamed
//! answers, `n` candidates, retries after 429, and the errors for 401 / 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hone_agent::openai::{OpenAiConfig, OpenAiModel};
use hone_agent::{ChatRequest, Error, FinishReason, Message, Model, Purpose, StreamUpdate};
use serde_json::{json, Value};

#[derive(Default)]
struct Server {
    calls: AtomicUsize,
    /// Answer the first this-many calls with 429.
    busy_calls: usize,
    /// Answer with one choice whatever `n` asks (llama.cpp, some proxies).
    ignore_n: bool,
    bodies: Mutex<Vec<Value>>,
    headers: Mutex<Vec<HeaderMap>>,
}

async fn completions(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let call = server.calls.fetch_add(1, Ordering::SeqCst);
    server.bodies.lock().unwrap().push(body.clone());
    server.headers.lock().unwrap().push(headers.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer wrong") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided"}})),
        )
            .into_response();
    }
    if body["model"] == "missing" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "model `missing` does not exist"}})),
        )
            .into_response();
    }
    if call < server.busy_calls {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    let n = if server.ignore_n {
        1
    } else {
        body["n"].as_u64().unwrap_or(1) as usize
    };
    let texts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "answer {i} to {}",
                body["messages"][0]["content"].as_str().unwrap()
            )
        })
        .collect();
    if body["stream"] == true {
        let mut events = String::new();
        for (index, text) in texts.iter().enumerate() {
            for piece in text.split_inclusive(' ') {
                let chunk = json!({"object": "chat.completion.chunk", "choices": [{"index": index, "delta": {"content": piece}, "finish_reason": null}]});
                events.push_str(&format!("data: {chunk}\n\n"));
            }
            let end =
                json!({"choices": [{"index": index, "delta": {}, "finish_reason": "length"}]});
            events.push_str(&format!("data: {end}\r\n\r\n"));
        }
        let usage = json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 9}});
        events.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
        return ([("content-type", "text/event-stream")], events).into_response();
    }
    let choices: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}))
        .collect();
    Json(json!({"object": "chat.completion", "choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 5}}))
        .into_response()
}

async fn serve(server: Arc<Server>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(server);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/v1")
}

fn config(base: &str, stream: bool) -> OpenAiConfig {
    let mut config = OpenAiConfig::new(base, "test-model");
    config.stream = stream;
    config.backoff = Duration::from_millis(5);
    config.timeout = Duration::from_secs(10);
    config.api_key = Some("sk-test".into());
    config.headers = vec![("x-extra".into(), "yes".into())];
    config
}

fn request(n: usize) -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("hello")],
        n,
        max_tokens: 64,
        purpose: Purpose::Other,
        ..Default::default()
    }
}

#[tokio::test]
async fn plain_answer_with_n_candidates_and_headers() {
    let server = Arc::new(Server::default());
    let base = serve(server.clone()).await;
    let model = OpenAiModel::new(config(&base, false)).unwrap();
    let mut chat = request(2);
    chat.stop = vec!["\n\n".into()];
    chat.sampling.seed = Some(11);
    let response = model.chat(&chat, None).await.unwrap();
    let texts: Vec<&str> = response
        .candidates
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(texts, ["answer 0 to hello", "answer 1 to hello"]);
    assert_eq!(response.usage.completion_tokens, 5);
    let body = server.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["n"], 2);
    assert_eq!(body["seed"], 11);
    assert_eq!(body["stop"], json!(["\n\n"]));
    assert!(
        body.get("steps").is_none(),
        "diffusion settings are only sent when set"
    );
    let headers = server.headers.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(headers["x-extra"], "yes");
}

#[tokio::test]
async fn reasks_when_n_is_ignored_vary_the_seed_and_sample() {
    let server = Arc::new(Server {
        ignore_n: true,
        ..Server::default()
    });
    let base = serve(server.clone()).await;
    let model = OpenAiModel::new(config(&base, false)).unwrap();
    // No seed and no temperature from the caller: the re-asks bring their own.
    let response = model.chat(&request(3), None).await.unwrap();
    assert_eq!(response.candidates.len(), 3);
    let bodies = server.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        3,
        "one call, then a re-ask per missing candidate"
    );
    assert!(bodies[0].get("seed").is_none(), "{}", bodies[0]);
    assert!(bodies[0].get("temperature").is_none(), "{}", bodies[0]);
    let seeds: Vec<u64> = bodies[1..]
        .iter()
        .map(|body| body["seed"].as_u64().unwrap())
        .collect();
    assert_ne!(seeds[0], seeds[1], "each re-ask has its own seed");
    for body in &bodies[1..] {
        assert!(body["temperature"].as_f64().unwrap() > 0.0, "{body}");
    }
    // The caller's seed and temperature win, shifted per candidate.
    server.bodies.lock().unwrap().clear();
    let mut chat = request(2);
    chat.sampling.seed = Some(40);
    chat.sampling.temperature = Some(0.2);
    model.chat(&chat, None).await.unwrap();
    let bodies = server.bodies.lock().unwrap().clone();
    assert_eq!(bodies[0]["seed"], 40);
    assert_eq!(bodies[1]["seed"], 41);
    assert_eq!(bodies[1]["temperature"].as_f64().unwrap() as f32, 0.2);
}

#[tokio::test]
async fn streamed_answer_arrives_in_pieces() {
    let server = Arc::new(Server::default());
    let base = serve(server.clone()).await;
    let model = OpenAiModel::new(config(&base, true)).unwrap();
    let updates = Mutex::new(Vec::<StreamUpdate>::new());
    let callback = |update: StreamUpdate| updates.lock().unwrap().push(update);
    let response = model.chat(&request(2), Some(&callback)).await.unwrap();
    assert_eq!(response.candidates[1].text, "answer 1 to hello");
    assert_eq!(response.candidates[0].finish_reason, FinishReason::Length);
    assert_eq!(response.usage.prompt_tokens, 7);
    let updates = updates.into_inner().unwrap();
    assert!(
        updates.len() >= 6,
        "one update per streamed piece: {updates:?}"
    );
    let first: String = updates
        .iter()
        .filter(|u| u.index == 0)
        .map(|u| u.delta.as_str())
        .collect();
    assert_eq!(first, "answer 0 to hello");
}

#[tokio::test]
async fn retries_after_429_then_succeeds() {
    let server = Arc::new(Server {
        busy_calls: 2,
        ..Default::default()
    });
    let base = serve(server.clone()).await;
    let model = OpenAiModel::new(config(&base, true)).unwrap();
    let response = model.chat(&request(1), None).await.unwrap();
    assert_eq!(response.candidates[0].text, "answer 0 to hello");
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_the_retry_limit() {
    let server = Arc::new(Server {
        busy_calls: 100,
        ..Default::default()
    });
    let base = serve(server.clone()).await;
    let mut settings = config(&base, false);
    settings.max_retries = 2;
    let error = OpenAiModel::new(settings)
        .unwrap()
        .chat(&request(1), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("429"), "{error}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn wrong_key_and_unknown_model_say_what_to_fix() {
    let server = Arc::new(Server::default());
    let base = serve(server.clone()).await;
    let mut settings = config(&base, false);
    settings.api_key = Some("wrong".into());
    let error = OpenAiModel::new(settings)
        .unwrap()
        .chat(&request(1), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Unauthorized { url, status: 401, message }
                if url.starts_with(&base) && message.contains("Incorrect API key")
        ),
        "{error}"
    );

    let mut settings = config(&base, false);
    settings.model = "missing".into();
    let error = OpenAiModel::new(settings)
        .unwrap()
        .chat(&request(1), None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("does not exist"), "{error}");
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        2,
        "no retries on 401 / 404"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let mut settings = config(&base, false);
    settings.max_retries = 1;
    let error = OpenAiModel::new(settings)
        .unwrap()
        .chat(&request(1), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
}
