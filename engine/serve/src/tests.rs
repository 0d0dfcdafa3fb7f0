//! The whole HTTP stack on loopback over the scripted decoder: response shapes, streaming, stop
//! strings, `n`, batching, cancellation, queue limits, errors, auth, body limits, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fake::{expected, FakeDecoder, FakeFrontend, Observed, DEFAULT_MAX_TOKENS, MODEL};
use super::{serve, ServerOptions};

struct TestServer {
    base: String,
    observed: Arc<Observed>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

fn options() -> ServerOptions {
    ServerOptions {
        api_key: None,
        max_batch: 8,
        max_queue: 16,
        max_body_bytes: 64 * 1024,
        batch_window: Duration::from_millis(5),
        shutdown_timeout: Duration::from_secs(5),
        header_timeout: super::DEFAULT_HEADER_TIMEOUT,
    }
}

async fn start(step_ms: u64, options: ServerOptions) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let decoder = FakeDecoder::new(Duration::from_millis(step_ms));
    let observed = Arc::clone(&decoder.observed);
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        FakeFrontend,
        decoder,
        options,
        async move {
            let _ = signal.await;
        },
    ));
    TestServer {
        base,
        observed,
        shutdown: Some(shutdown),
        task,
        client: reqwest::Client::new(),
    }
}

impl TestServer {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn chat_body(content: &str, extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": content}]});
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    body
}

/// The fake renders a chat as `role: content\n` lines.
fn chat_expected(content: &str, seed: u64, max_tokens: usize) -> String {
    expected(&format!("user: {content}\n"), seed, max_tokens).0
}

/// `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_has_openai_shape() {
    let server = start(0, options()).await;
    let (status, body) = server
        .post(
            "/v1/chat/completions",
            &chat_body("hello there", json!({"seed": 7})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], MODEL);
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        chat_expected("hello there", 7, DEFAULT_MAX_TOKENS)
    );
    assert_eq!(choice["finish_reason"], "length");
    let prompt_tokens = "user: hello there\n".len() as u64;
    assert_eq!(body["usage"]["prompt_tokens"], prompt_tokens);
    assert_eq!(
        body["usage"]["completion_tokens"],
        DEFAULT_MAX_TOKENS as u64
    );
    assert_eq!(
        body["usage"]["total_tokens"],
        prompt_tokens + DEFAULT_MAX_TOKENS as u64
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_with_suffix_n_and_eos() {
    let server = start(0, options()).await;
    let body = json!({"model": MODEL, "prompt": "fn main() {", "suffix": "}", "max_tokens": 6, "seed": 3, "n": 2});
    let (status, body) = server.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    for index in 0..2 {
        let choice = &body["choices"][index];
        assert_eq!(choice["index"], index);
        assert_eq!(
            choice["text"],
            expected("fn main() { }", 3 + index as u64, 6).0
        );
        assert_eq!(choice["finish_reason"], "length");
    }
    assert_eq!(body["usage"]["completion_tokens"], 12);

    let (_, body) = server
        .post(
            "/v1/completions",
            &json!({"model": MODEL, "prompt": "EOS now", "seed": 1}),
        )
        .await;
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["choices"][0]["text"],
        expected("EOS now ", 1, DEFAULT_MAX_TOKENS).0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_cut_the_text() {
    let server = start(0, options()).await;
    // The fake writes "<word><seed> " repeated: "ab5 ab5 ab5 ...".
    let (_, body) = server
        .post(
            "/v1/chat/completions",
            &chat_body(
                "ab",
                json!({"seed": 5, "max_tokens": 12, "stop": ["5 a", "zz"]}),
            ),
        )
        .await;
    assert_eq!(body["choices"][0]["message"]["content"], "ab");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_chunks_then_done() {
    let server = start(1, options()).await;
    let request = chat_body(
        "stream me",
        json!({"seed": 11, "max_tokens": 10, "stream": true, "n": 2,
        "stream_options": {"include_usage": true}}),
    );
    let response = server
        .client
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut texts = [String::new(), String::new()];
    let mut finishes = [None, None];
    for chunk in &chunks[..chunks.len() - 1] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        let choice = &chunk["choices"][0];
        let index = choice["index"].as_u64().unwrap() as usize;
        if let Some(text) = choice["delta"]["content"].as_str() {
            texts[index].push_str(text);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finishes[index] = Some(reason.to_string());
        }
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    // Text arrives in several pieces, as the committed prefix grows.
    assert!(chunks.len() > 6, "{chunks:?}");
    for index in 0..2 {
        assert_eq!(
            texts[index],
            chat_expected("stream me", 11 + index as u64, 10)
        );
        assert_eq!(finishes[index].as_deref(), Some("length"));
    }
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_batch_and_match_sequential_ones() {
    let server = start(20, options()).await;
    let prompts = ["one", "two", "three", "four"];
    let mut sequential = Vec::new();
    for (seed, prompt) in prompts.iter().enumerate() {
        let (_, body) = server
            .post(
                "/v1/chat/completions",
                &chat_body(prompt, json!({"seed": seed})),
            )
            .await;
        sequential.push(body["choices"][0]["message"]["content"].clone());
    }
    assert_eq!(server.observed.max_batch.load(Ordering::SeqCst), 1);
    let concurrent = futures::future::join_all(prompts.iter().enumerate().map(|(seed, prompt)| {
        let body = chat_body(prompt, json!({"seed": seed}));
        let server = &server;
        async move {
            server.post("/v1/chat/completions", &body).await.1["choices"][0]["message"]["content"]
                .clone()
        }
    }))
    .await;
    assert_eq!(concurrent, sequential);
    assert!(server.observed.max_batch.load(Ordering::SeqCst) >= 3);
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("hone_requests_total{endpoint=\"chat_completions\",status=\"200\"} 8"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_request_joins_a_running_batch() {
    let server = start(20, options()).await;
    let long = chat_body("long", json!({"max_tokens": 150}));
    let long_request = server
        .client
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&long)
        .send();
    let long_task = tokio::spawn(long_request);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let (status, _) = server
        .post(
            "/v1/chat/completions",
            &chat_body("short", json!({"max_tokens": 4})),
        )
        .await;
    assert_eq!(status, 200);
    // 4 steps of 20 ms plus at most one step of waiting: far less than the long request's 3 s.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(!long_task.is_finished());
    assert_eq!(server.observed.max_batch.load(Ordering::SeqCst), 2);
    long_task.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_is_cancelled() {
    let server = start(10, options()).await;
    let body = chat_body("bye", json!({"max_tokens": 190, "stream": true}));
    let mut response = server
        .client
        .post(format!("{}/v1/chat/completions", server.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("chat.completion.chunk"));
    drop(response);
    let mut cancelled = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        if server.observed.removed.lock().unwrap().len() == 1 {
            cancelled = true;
            break;
        }
    }
    assert!(
        cancelled,
        "the sequence was not removed after the client left"
    );
    let steps = server.observed.steps.load(Ordering::SeqCst);
    assert!(steps < 150, "decoded {steps} steps for a gone client");
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("hone_cancelled_sequences_total 1\n"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429() {
    let server = start(
        20,
        ServerOptions {
            max_batch: 1,
            max_queue: 1,
            ..options()
        },
    )
    .await;
    let body = chat_body("wait", json!({"max_tokens": 40}));
    let first = tokio::spawn(
        server
            .client
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = tokio::spawn(
        server
            .client
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, error) = server.post("/v1/chat/completions", &body).await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    // n = 2 cannot fit either, even though one slot frees up later.
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(second.await.unwrap().unwrap().status(), 200);
    let (status, _) = server
        .post("/v1/chat/completions", &chat_body("n", json!({"n": 3})))
        .await;
    assert_eq!(status, 429);
    // Once the engine thread has released the finished sequences (which can lag a moment behind the
    // clients receiving their responses), n = 2 fits into the empty batch and queue.
    let mut status = 0;
    for _ in 0..100 {
        status = server
            .post("/v1/chat/completions", &chat_body("n", json!({"n": 2})))
            .await
            .0;
        if status != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let server = start(0, options()).await;
    let url = format!("{}/v1/chat/completions", server.base);
    let raw = server
        .client
        .post(&url)
        .body("{\"model\": \"fake-model\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let error: Value = raw.json().await.unwrap();
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    assert_eq!(error["error"]["type"], "invalid_request_error");

    let cases = [
        (json!({"model": MODEL}), "messages"),
        (json!({"messages": []}), "model"),
        (chat_body("x", json!({"max_tokens": "many"})), "max_tokens"),
        (chat_body("x", json!({"temperature": -1})), "temperature"),
        (chat_body("x", json!({"stream": "yes"})), "stream"),
        (chat_body("x", json!({"stop": [1]})), "stop[0]"),
        (
            json!({"model": MODEL, "messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (chat_body("x", json!({"sampler": "greedy"})), "sampler"),
        (chat_body("x", json!({"max_tokens": 500})), "messages"),
    ];
    for (body, field) in cases {
        let (status, error) = server.post("/v1/chat/completions", &body).await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert_eq!(error["error"]["param"], field, "{body} -> {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{error}"
        );
    }
    let (status, error) = server
        .post(
            "/v1/chat/completions",
            &chat_body("x", json!({"max_tokens": 500})),
        )
        .await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (400, &json!("context_length_exceeded"))
    );
    let (status, error) = server
        .post("/v1/completions", &json!({"model": MODEL, "prompt": 5}))
        .await;
    assert_eq!((status, &error["error"]["param"]), (400, &json!("prompt")));

    let mut wrong_model = chat_body("x", json!({}));
    wrong_model["model"] = json!("gpt-4o");
    let (status, error) = server.post("/v1/chat/completions", &wrong_model).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (404, &json!("model_not_found"))
    );
    let (status, body) = server.get("/v1/nothing").await;
    assert_eq!(status, 404);
    assert!(body.contains("unknown_url"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let server = start(
        0,
        ServerOptions {
            max_body_bytes: 1000,
            ..options()
        },
    )
    .await;
    let (status, error) = server
        .post(
            "/v1/chat/completions",
            &chat_body(&"x".repeat(2000), json!({})),
        )
        .await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "request_too_large");
    let (status, _) = server
        .post("/v1/chat/completions", &chat_body("small", json!({})))
        .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_required_when_set() {
    let server = start(
        0,
        ServerOptions {
            api_key: Some("sekrit".into()),
            ..options()
        },
    )
    .await;
    let url = format!("{}/v1/models", server.base);
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    let response = server
        .client
        .get(&url)
        .bearer_auth("sekri")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = server
        .client
        .get(&url)
        .bearer_auth("sekrit")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let models: Value = response.json().await.unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(models["data"][0]["object"], "model");
    let response = server
        .client
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth("nope")
        .json(&chat_body("x", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(server.get("/health").await.0, 200);
    assert_eq!(server.get("/metrics").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_accepted_work_and_refuses_new() {
    let server = start(20, options()).await;
    let body = chat_body("last", json!({"max_tokens": 20, "seed": 2}));
    let in_flight = tokio::spawn(
        server
            .client
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let TestServer { shutdown, task, .. } = server;
    shutdown.unwrap().send(()).unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        chat_expected("last", 2, 20)
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_deadline_fails_what_is_left() {
    let server = start(
        20,
        ServerOptions {
            shutdown_timeout: Duration::from_millis(200),
            ..options()
        },
    )
    .await;
    let body = chat_body("slow", json!({"max_tokens": 180}));
    let in_flight = tokio::spawn(
        server
            .client
            .post(format!("{}/v1/chat/completions", server.base))
            .json(&body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let TestServer { shutdown, task, .. } = server;
    shutdown.unwrap().send(()).unwrap();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let server = start(0, options()).await;
    let (status, body) = server.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );
    server
        .post(
            "/v1/completions",
            &json!({"model": MODEL, "prompt": "p", "max_tokens": 4}),
        )
        .await;
    let (_, metrics) = server.get("/metrics").await;
    for series in [
        "hone_requests_total{endpoint=\"completions\",status=\"200\"} 1",
        "hone_generated_tokens_total 4",
        "hone_forward_passes_total 4",
        "hone_queue_depth 0",
        "hone_batch_size_count 4",
        "hone_request_duration_seconds_count 1",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_streaming_client_that_leaves_is_cancelled() {
    use tokio::io::AsyncWriteExt;

    let server = start(10, options()).await;
    let body = chat_body("gone", json!({"max_tokens": 180})).to_string();
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        server.observed.steps.load(Ordering::SeqCst) > 0,
        "the request never started"
    );
    drop(stream);
    let mut cancelled = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        if server.observed.removed.lock().unwrap().len() == 1 {
            cancelled = true;
            break;
        }
    }
    assert!(
        cancelled,
        "the sequence was not removed after the client left"
    );
    assert!(server.observed.steps.load(Ordering::SeqCst) < 150);
    server.stop().await;
}
