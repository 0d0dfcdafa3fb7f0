//! End-to-end tests of `hone serve` on the tiny parity checkpoints over loopback: each endpoint,
//! streaming, stop strings, `n`, batching (concurrent == sequential with the same seeds), the API key,
//! body limits, graceful shutdown on SIGTERM, and the official `openai` Python package
//! (`tests/openai_check.py`). The weights are random and the tokenizer is char-level, so the text is
//! gibberish: the tests check mechanics, shapes and determinism. Queue limits, cancellation and
//! error details are covered against a scripted decoder in `cli/src/serve/tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use common::parity;
use serde_json::{json, Value};

/// A `hone serve` process on a free loopback port, killed on drop.
struct Server {
    child: Child,
    address: String,
    logs: Mutex<mpsc::Receiver<String>>,
}

impl Server {
    fn start(case: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let model = parity(case);
        let mut command = common::hone();
        command
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--device",
                "cpu",
                "--port",
                "0",
            ])
            .args(extra)
            .env_remove("HONE_MODEL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            match logs.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let address = rest.split('/').next().unwrap().to_string();
                        return Self {
                            child,
                            address,
                            logs: Mutex::new(logs),
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("hone serve did not start: {}", seen.join("\n"));
                }
            }
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, body) = http(
            &self.address,
            "POST",
            path,
            &[],
            body.to_string().as_bytes(),
        );
        (
            status,
            serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
        )
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (one request per connection, chunked bodies decoded), so the tests
/// need no HTTP crate.
fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

fn chat(model: &str, content: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": content}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn content(response: &Value, index: usize) -> String {
    response["choices"][index]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn models_chat_and_completion_endpoints() {
    let server = Server::start("llada-tiny", &[], &[]);
    let (status, body) = http(&server.address, "GET", "/v1/models", &[], b"");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(models["data"][0]["id"], "llada-tiny");
    let (status, body) = http(&server.address, "GET", "/health", &[], b"");
    assert_eq!(
        (
            status,
            serde_json::from_slice::<Value>(&body).unwrap()["status"].clone()
        ),
        (200, json!("ok"))
    );

    let (status, response) = server.post(
        "/v1/chat/completions",
        &chat("llada-tiny", "hello", json!({"max_tokens": 12, "seed": 1})),
    );
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["object"], "chat.completion");
    let usage = &response["usage"];
    assert!(
        usage["prompt_tokens"].as_u64().unwrap() > "hello".len() as u64,
        "template adds tokens: {usage}"
    );
    let completion_tokens = usage["completion_tokens"].as_u64().unwrap();
    assert!(completion_tokens <= 12);
    let reason = response["choices"][0]["finish_reason"].as_str().unwrap();
    assert!(
        reason == "length" && completion_tokens == 12 || reason == "stop",
        "{response}"
    );

    let prefix = "def f(x):\n    return ";
    let fim = json!({"model": "llada-tiny", "prompt": prefix, "suffix": "\n", "max_tokens": 6, "seed": 2});
    let (status, response) = server.post("/v1/completions", &fim);
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["object"], "text_completion");
    assert!(
        response["choices"][0]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 6
    );
    assert_eq!(
        response["usage"]["prompt_tokens"],
        prefix.len() + 1,
        "char-level: prefix and suffix"
    );

    let (_, metrics) = http(&server.address, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("hone_requests_total{endpoint=\"completions\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("hone_forward_passes_total 0\n"),
        "{metrics}"
    );
}

#[test]
fn streaming_matches_the_whole_response_and_stop_strings_cut() {
    let server = Server::start("llada-tiny", &[], &[]);
    let request = chat(
        "llada-tiny",
        "abc",
        // Sampling at temperature 1 from the random model gives printable characters often enough.
        json!({"max_tokens": 48, "seed": 9, "block_length": 8, "temperature": 1.0}),
    );
    let (_, whole) = server.post("/v1/chat/completions", &request);
    let text = content(&whole, 0);

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let (status, body) = http(
        &server.address,
        "POST",
        "/v1/chat/completions",
        &[],
        streamed.to_string().as_bytes(),
    );
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    let data: Vec<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let mut joined = String::new();
    let mut finish = Value::Null;
    for chunk in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(chunk).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        joined.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
        if !chunk["choices"][0]["finish_reason"].is_null() {
            finish = chunk["choices"][0]["finish_reason"].clone();
        }
    }
    assert_eq!(joined, text);
    assert_eq!(finish, whole["choices"][0]["finish_reason"]);

    // Cut at a stop string taken from the middle of the text.
    let chars: Vec<char> = text.chars().collect();
    assert!(
        chars.len() >= 6,
        "too little text to test stop strings: {text:?}"
    );
    {
        let stop: String = chars[3..5].iter().collect();
        let mut stopped = request.clone();
        stopped["stop"] = json!([stop]);
        let (_, response) = server.post("/v1/chat/completions", &stopped);
        let expected = &text[..text.find(&stop).unwrap()];
        assert_eq!(content(&response, 0), expected);
        assert_eq!(response["choices"][0]["finish_reason"], "stop");
    }
}

#[test]
fn concurrent_requests_and_n_match_sequential_ones() {
    let server = Server::start("llada-tiny", &["--max-batch", "8"], &[]);
    // Same-length prompts share a canvas shape, so the engine may put them in one forward.
    let prompts = ["one", "two", "six", "ten"];
    let body = |prompt: &str, seed: u64| {
        chat(
            "llada-tiny",
            prompt,
            json!({"max_tokens": 16, "block_length": 8, "seed": seed, "temperature": 0.8}),
        )
    };
    let sequential: Vec<String> = prompts
        .iter()
        .zip(10..)
        .map(|(p, seed)| content(&server.post("/v1/chat/completions", &body(p, seed)).1, 0))
        .collect();
    let concurrent: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = prompts
            .iter()
            .zip(10..)
            .map(|(p, seed)| {
                let request = body(p, seed);
                let server = &server;
                scope.spawn(move || content(&server.post("/v1/chat/completions", &request).1, 0))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(concurrent, sequential);

    // n = 3 with seed s gives the choices of seeds s, s + 1, s + 2.
    let mut n3 = body("one", 10);
    n3["n"] = json!(3);
    let (status, response) = server.post("/v1/chat/completions", &n3);
    assert_eq!(status, 200, "{response}");
    let choices: Vec<String> = (0..3).map(|i| content(&response, i)).collect();
    assert_eq!(choices[0], sequential[0]);
    let single = |seed| {
        content(
            &server.post("/v1/chat/completions", &body("one", seed)).1,
            0,
        )
    };
    assert_eq!(choices[1], single(11));
    assert_eq!(choices[2], single(12));
    let (_, metrics) = http(&server.address, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    let bucket = |le: &str| -> u64 {
        let prefix = format!("hone_batch_size_bucket{{le=\"{le}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        bucket("+Inf") > bucket("1"),
        "some steps decoded several sequences:\n{metrics}"
    );
}

#[test]
fn api_key_bad_input_and_body_limit() {
    let server = Server::start(
        "dream-tiny",
        &[
            "--api-key-env",
            "HONE_SERVE_TEST_KEY",
            "--max-body-bytes",
            "2000",
        ],
        &[("HONE_SERVE_TEST_KEY", "k3y")],
    );
    let request = chat("dream-tiny", "hi", json!({"max_tokens": 4}));
    let (status, _) = server.post("/v1/chat/completions", &request);
    assert_eq!(status, 401);
    let auth = [("Authorization", "Bearer k3y")];
    let send = |body: &[u8]| http(&server.address, "POST", "/v1/chat/completions", &auth, body);
    let (status, body) = send(request.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = send(b"{\"model\": ");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, body) = send(
        chat("dream-tiny", "hi", json!({"n": "2"}))
            .to_string()
            .as_bytes(),
    );
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, error["error"]["param"].clone()), (400, json!("n")));
    let (status, _) = send(
        chat("dream-tiny", &"x".repeat(3000), json!({}))
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 413);
    let (status, body) = send(
        chat("dream-tiny", &"x".repeat(1000), json!({"max_tokens": 2000}))
            .to_string()
            .as_bytes(),
    );
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, error["error"]["code"].clone()),
        (400, json!("context_length_exceeded")),
        "{error}"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests() {
    let server = Server::start("llada-tiny", &["--shutdown-timeout", "60"], &[]);
    // One token per step at 256 tokens: long enough to be in flight when the signal arrives.
    let request = json!({"model": "llada-tiny", "prompt": "x", "max_tokens": 256, "tokens_per_step": 1,
                         "block_length": 32, "seed": 5});
    let address = server.address.clone();
    let in_flight = std::thread::spawn(move || {
        http(
            &address,
            "POST",
            "/v1/completions",
            &[],
            request.to_string().as_bytes(),
        )
    });
    // Wait until the request is decoding.
    for _ in 0..200 {
        let (_, metrics) = http(&server.address, "GET", "/metrics", &[], b"");
        if String::from_utf8_lossy(&metrics).contains("hone_active_sequences 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    server.terminate();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut server = server;
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let logs: Vec<String> = server.logs.lock().unwrap().try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("hone serve: stopped")),
        "{logs:?}"
    );
}

/// The official `openai` package (installed into `.venv` by `.ci/run`, which exports
/// HONE_TEST_PYTHON) against the server. Skipped outside CI when no such Python exists.
#[test]
fn official_openai_client_works() {
    let python = std::env::var("HONE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
        });
    let usable = python.exists()
        && Command::new(&python)
            .args(["-c", "import openai"])
            .status()
            .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} cannot import openai: .ci/run must create .venv and pip install openai",
            python.display()
        );
        eprintln!(
            "skipping: no Python with the openai package at {}",
            python.display()
        );
        return;
    }
    let server = Server::start("llada-tiny", &[], &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_check.py");
    let output = Command::new(&python)
        .args([script, &server.base_url(), "llada-tiny"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openai_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The new families answer over HTTP: Open-dCoder (mdm sampler, FIM infill) and LLaDA2.0 / 2.1
/// (block diffusion; no text after the hole, so no FIM).
#[test]
fn new_families_answer_chat_and_completions() {
    for case in ["odc-tiny", "llada2-tiny", "llada21-tiny"] {
        let server = Server::start(&format!("../parity-v2/{case}"), &[], &[]);
        let (status, response) = server.post(
            "/v1/chat/completions",
            &chat(case, "hello", json!({"max_tokens": 12, "seed": 1})),
        );
        assert_eq!(status, 200, "{case}: {response}");
        let completion_tokens = response["usage"]["completion_tokens"].as_u64().unwrap();
        assert!(completion_tokens <= 12, "{case}: {response}");
        let plain = json!({"model": case, "prompt": "def f(x):", "max_tokens": 8, "seed": 2});
        let (status, response) = server.post("/v1/completions", &plain);
        assert_eq!(status, 200, "{case}: {response}");
        assert!(response["choices"][0]["text"].is_string(), "{response}");
        let fim = json!({"model": case, "prompt": "def f(x):\n    return ", "suffix": "\n", "max_tokens": 6});
        let (status, response) = server.post("/v1/completions", &fim);
        if case == "odc-tiny" {
            assert_eq!(status, 200, "{case}: {response}");
        } else {
            assert!(
                status >= 400,
                "{case}: block-causal models refuse FIM: {response}"
            );
            assert!(
                response.to_string().contains("suffix"),
                "{case}: the refusal says why: {response}"
            );
        }
    }
}

/// `hone generate` and `hone serve` resolve sampler settings in one place
/// (`SamplerSettings::resolve`): the same text for the same settings, and the same answer to the
/// same bad setting. The checkpoint's generation_config.json names a remasking and an alg hone
/// does not know and a `cfg_scale` for LLaDA's reference sampler: all three are ignored under the
/// family's `fast` sampler, by both. Asked for by the user, an unknown `remasking` and a
/// `cfg_scale` off the `llada` sampler are refused by both, naming the setting (exit 2 and
/// `--remasking` / `--cfg-scale` for generate, a 400 with `param` for serve).
#[test]
fn generate_and_serve_resolve_settings_the_same_way() {
    let dir = tempfile::TempDir::new().unwrap();
    let model = dir.path().join("llada-odd-config");
    std::fs::create_dir(&model).unwrap();
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(parity("llada-tiny").join(file), model.join(file)).unwrap();
    }
    std::fs::write(
        model.join("generation_config.json"),
        r#"{"remasking": "sometimes", "alg": "confidence_threshold", "cfg_scale": 2.0}"#,
    )
    .unwrap();
    let model_arg = model.to_str().unwrap();
    let generate = |extra: &[&str]| {
        common::hone()
            .args(["generate", "--model", model_arg, "--device", "cpu"])
            .args(["--gen-length", "16", "--block-length", "8"])
            .args(extra)
            .arg("def add(a, b):")
            .env_remove("HONE_MODEL")
            .output()
            .unwrap()
    };
    let output = generate(&["--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated: Value = serde_json::from_slice(&output.stdout).unwrap();
    let generated_text = generated["candidates"][0]["text"].as_str().unwrap();

    let server = Server::start(model_arg, &[], &[]);
    let request = |extra: Value| {
        let mut body = json!({
            "model": "llada-odd-config",
            "prompt": "def add(a, b):",
            "max_tokens": 16,
            "block_length": 8,
            "seed": 0,
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        server.post("/v1/completions", &body)
    };
    let (status, response) = request(json!({}));
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        response["choices"][0]["text"].as_str().unwrap(),
        generated_text
    );

    for (flag, value, field, needle) in [
        (
            "--remasking",
            json!("sometimes"),
            "remasking",
            "unknown remasking",
        ),
        (
            "--cfg-scale",
            json!(1.5),
            "cfg_scale",
            "cfg_scale is only supported by the llada sampler",
        ),
    ] {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        let output = generate(&[flag, &text]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(stderr.contains(flag), "the CLI names its flag: {stderr}");

        let (status, response) = request(json!({ field: value }));
        assert_eq!(status, 400, "{response}");
        assert_eq!(response["error"]["param"], field, "{response}");
        let message = response["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
        assert!(
            !message.contains(flag),
            "no CLI flag in an API error: {message}"
        );
    }
}

/// A sampler the model cannot run (a bidirectional sampler on a block-causal LLaDA2 model) is the
/// engine's `InvalidSetting { field: "sampler" }`: a 400 naming `sampler`, as `hone generate`
/// names `--sampler`.
#[test]
fn a_sampler_the_model_cannot_run_is_refused_naming_the_sampler() {
    let server = Server::start("../parity-v2/llada2-tiny", &[], &[]);
    let body =
        json!({"model": "llada2-tiny", "prompt": "def f(x):", "max_tokens": 8, "sampler": "fast"});
    let (status, response) = server.post("/v1/completions", &body);
    assert_eq!(status, 400, "{response}");
    assert_eq!(response["error"]["param"], "sampler", "{response}");

    let model = parity("../parity-v2/llada2-tiny");
    let output = common::hone()
        .args([
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
        ])
        .args([
            "--sampler",
            "fast",
            "--gen-length",
            "8",
            "--block-length",
            "8",
            "hi",
        ])
        .env_remove("HONE_MODEL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--sampler"), "{stderr}");
}
