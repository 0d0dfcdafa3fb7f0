//! End-to-end tests of `hone run` and `hone runs` with the scripted (test-only) backend on fixture
//! repositories built in tempdirs: a Python package tested with `unittest` and a Rust crate tested
//! with `cargo test`. The scripted backend fails on any call its script did not foresee, and `hone`
//! fails when a script is not used up, so each test also checks which calls the agent made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{edit_block, parity, parity_v2, text};
use serde_json::{json, Value};
use tempfile::TempDir;

struct Fixture {
    repo: TempDir,
    scratch: TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Self {
        let repo = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = repo.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        let git = git2::Repository::init(repo.path()).unwrap();
        let mut index = git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Test", "test@example.com").unwrap();
        git.commit(Some("HEAD"), &signature, &signature, "initial", &tree, &[])
            .unwrap();
        Self {
            repo,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.repo.path()
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).unwrap()
    }

    /// Run `hone` in the repository with a script of model answers.
    fn hone(&self, args: &[&str], script: Value) -> Output {
        let script_path: PathBuf = self.scratch.path().join("script.json");
        std::fs::write(&script_path, serde_json::to_string_pretty(&script).unwrap()).unwrap();
        let mut command = common::hone();
        command
            .current_dir(self.path())
            .args(["run", "--backend", "scripted", "--script"])
            .arg(&script_path)
            .args(args)
            .env("HOME", self.scratch.path())
            .env("XDG_CONFIG_HOME", self.scratch.path().join("config"))
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env_remove("HONE_MODEL")
            .env_remove("HONE_BACKEND");
        command.output().unwrap()
    }

    fn hone_plain(&self, args: &[&str]) -> Output {
        common::hone()
            .current_dir(self.path())
            .args(args)
            .env("HOME", self.scratch.path())
            .output()
            .unwrap()
    }

    fn git_status(&self) -> String {
        let output = Command::new("git")
            .current_dir(self.path())
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    }
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .collect()
}

/// A SEARCH/REPLACE answer.
fn edit(path: &str, search: &str, replace: &str) -> String {
    format!("Here is the fix.\n\n{}", edit_block(path, search, replace))
}

fn chat(purpose: &str, responses: Vec<String>) -> Value {
    json!({"kind": "chat", "purpose": purpose, "responses": responses})
}

fn chat_expecting(purpose: &str, expect: &[&str], responses: Vec<String>) -> Value {
    json!({"kind": "chat", "purpose": purpose, "expect": expect, "responses": responses})
}

const PY_CALC: &str = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return x * 2\n";
const PY_TEST: &str = "import unittest\n\nfrom calc import add, double\n\n\nclass TestCalc(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n    def test_double(self):\n        self.assertEqual(double(4), 8)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n";
const PY_TEST_COMMAND: &str = "python3 -m unittest -q";

fn python() -> Fixture {
    Fixture::new(&[
        ("calc.py", PY_CALC),
        ("test_calc.py", PY_TEST),
        ("README.md", "# calc\n"),
    ])
}

const RS_CARGO: &str =
    "[package]\nname = \"adder\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const RS_LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(add(2, 3), 5);\n    }\n}\n";

fn rust() -> Fixture {
    Fixture::new(&[
        ("Cargo.toml", RS_CARGO),
        ("src/lib.rs", RS_LIB),
        (".gitignore", "/target\n"),
    ])
}

fn plain_fix() -> String {
    edit(
        "calc.py",
        "def add(a, b):\n    return a - b",
        "def add(a, b):\n    return a + b",
    )
}

#[test]
fn python_right_first_time_with_plan_and_transcript() {
    let fixture = python();
    let script = json!({"calls": [
        chat_expecting("plan", &["add", "calc.py"], vec!["calc.py:1-2: add subtracts instead of adding".into()]),
        chat_expecting("edit", &["calc.py lines 1-2", "test_add"], vec![plain_fix()]),
    ]});
    let output = fixture.hone(
        &["make the failing test pass", "--test", PY_TEST_COMMAND],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(fixture.read("calc.py").contains("return a + b"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("+    return a + b"),
        "the diff is printed: {stdout}"
    );
    assert!(stdout.contains("applied to the working tree"), "{stdout}");
    assert_eq!(
        fixture.git_status(),
        " M calc.py\n",
        "only the patch is in the tree; the transcript is in .git"
    );

    let runs = fixture.hone_plain(&["runs"]);
    let listing = String::from_utf8_lossy(&runs.stdout);
    assert!(
        listing.contains("passed") && listing.contains("make the failing test pass"),
        "{}",
        text(&runs)
    );
    let show = fixture.hone_plain(&["runs", "show", "last"]);
    let shown = String::from_utf8_lossy(&show.stdout);
    for file in [
        "plan/response.txt",
        "iteration-1/candidate-1/response.txt",
        "iteration-1/candidate-1/test.log",
        "events.jsonl",
        "summary.json",
    ] {
        assert!(shown.contains(file), "{file} recorded: {shown}");
    }
}

#[test]
fn rust_wrong_then_right_after_test_feedback() {
    let fixture = rust();
    let wrong = edit("src/lib.rs", "    a - b", "    a * b");
    // The second answer edits the state left by the first (the feedback says the files contain it).
    let right = edit("src/lib.rs", "    a * b", "    a + b");
    let script = json!({"calls": [
        chat("edit", vec![wrong]),
        chat_expecting("edit", &["tests failed", "adds", "src/lib.rs"], vec![right]),
    ]});
    let output = fixture.hone(
        &["fix add", "--test", "cargo test -q", "--no-plan", "--json"],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let events = events(&output);
    let finished = named(&events, "run.finished");
    assert_eq!(finished[0]["status"], "passed");
    assert_eq!(finished[0]["iterations"], 2);
    assert_eq!(named(&events, "plan")[0]["source"], "fallback");
    let tests = named(&events, "test.finished");
    assert_eq!(tests.len(), 2);
    assert_eq!(tests[0]["passed"], false);
    assert_eq!(tests[1]["passed"], true);
    assert!(fixture.read("src/lib.rs").contains("    a + b\n"));
    assert!(!fixture.read("src/lib.rs").contains("a * b"));
    assert!(
        !fixture.path().join("target").exists(),
        "tests ran in the sandbox, not in the tree"
    );
}

#[test]
fn json_events_start_with_event_and_run_finished_comes_last() {
    let fixture = python();
    let script = json!({"calls": [chat("edit", vec![plain_fix()])]});
    let output = fixture.hone(
        &["fix add", "--test", PY_TEST_COMMAND, "--no-plan", "--json"],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &lines {
        assert!(
            line.starts_with("{\"event\":"),
            "every event starts with `event`: {line}"
        );
    }
    let names: Vec<String> = events(&output)
        .iter()
        .map(|event| event["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("run.finished"),
        "{names:?}"
    );
    let delivered = names.iter().position(|name| name == "delivered");
    assert_eq!(delivered, Some(names.len() - 2), "{names:?}");
}

/// The whole `--json` stream of a run, so a change to the events a tool reads is deliberate (times,
/// temp paths, the run id and the context ranking's picks filtered out).
#[test]
fn json_event_stream_snapshot() {
    let fixture = python();
    let script = json!({"calls": [chat("edit", vec![plain_fix()])]});
    let output = fixture.hone(
        &["fix add", "--test", PY_TEST_COMMAND, "--no-plan", "--json"],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let root = fixture.path().canonicalize().unwrap();
    insta::with_settings!({filters => vec![
        (regex::escape(&root.display().to_string()).as_str(), "[repo]"),
        (regex::escape(&fixture.path().display().to_string()).as_str(), "[repo]"),
        (r#""([a-z_]*seconds)":[0-9.e+-]+"#, r#""$1":"[seconds]""#),
        (r#""id":"[^"]+""#, r#""id":"[run id]""#),
        (r"runs/[0-9A-Za-z_.-]+", "runs/[run id]"),
        // What the context ranking picks is tested where it is made (hone-tools, hone-agent).
        (r#""files":\[\{"path".*\],"omitted":\[.*\],"prompt_tokens":[0-9]+"#, r#""files":"[ranked]","omitted":"[ranked]","prompt_tokens":"[ranked]""#),
        (r#""items":\[.*\],"source""#, r#""items":"[plan]","source""#),
    ]}, {
        insta::assert_snapshot!("run_json_events", stdout);
    });
}

#[test]
fn malformed_edit_then_corrected_after_the_apply_report() {
    let fixture = python();
    let malformed = edit(
        "calc.py",
        "def add(x, y):\n    return x - y",
        "def add(x, y):\n    return x + y",
    );
    let script = json!({"calls": [
        chat("edit", vec![malformed]),
        chat_expecting("edit", &["did not apply", "calc.py"], vec![plain_fix()]),
    ]});
    let output = fixture.hone(
        &["fix add", "--test", PY_TEST_COMMAND, "--no-plan", "--json"],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let events = events(&output);
    let failed = named(&events, "candidate.failed");
    assert_eq!(failed[0]["stage"], "apply", "{failed:?}");
    assert_eq!(
        named(&events, "test.finished").len(),
        1,
        "the malformed candidate was never tested"
    );
    assert!(fixture.read("calc.py").contains("return a + b"));
}

#[test]
fn best_of_four_keeps_the_only_passing_candidate_and_skips_duplicates() {
    let fixture = python();
    let wrong = edit("calc.py", "    return a - b", "    return a * b");
    let breaks_double = format!(
        "{}{}",
        plain_fix(),
        edit(
            "calc.py",
            "def double(x):\n    return x * 2",
            "def double(x):\n    return x * 3"
        )
    );
    let script = json!({"calls": [
        chat("edit", vec![wrong.clone(), breaks_double, plain_fix(), wrong]),
    ]});
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--candidates",
            "4",
            "--max-iterations",
            "1",
            "--json",
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let events = events(&output);
    let passed: Vec<&Value> = named(&events, "test.finished")
        .into_iter()
        .filter(|event| event["passed"] == true)
        .collect();
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0]["candidate"], 3);
    let duplicate = named(&events, "candidate.failed")
        .into_iter()
        .find(|event| event["stage"] == "duplicate");
    assert_eq!(
        duplicate.expect("candidate 4 repeats candidate 1")["candidate"],
        4
    );
    assert!(named(&events, "test.finished")
        .iter()
        .all(|event| event["candidate"] != 4));
    assert_eq!(fixture.read("calc.py"), PY_CALC.replace("a - b", "a + b"));
}

#[test]
fn no_candidate_passes_exit_1_and_tree_untouched() {
    let fixture = python();
    let first = edit("calc.py", "    return a - b", "    return a * b");
    let second = edit("calc.py", "    return a - b", "    return b - a");
    let third = edit("calc.py", "    return a * b", "    return a ** b");
    let script = json!({"calls": [
        chat("edit", vec![first, second]),
        chat_expecting("edit", &["tests failed", "Lines the failures point at", "test_calc.py:8"], vec![third.clone(), third]),
    ]});
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--candidates",
            "2",
            "--max-iterations",
            "2",
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no verified patch"), "{stdout}");
    assert!(stdout.contains("best attempt (NOT applied"), "{stdout}");
    assert_eq!(fixture.read("calc.py"), PY_CALC);
    assert_eq!(fixture.git_status(), "");
}

#[test]
fn a_hanging_candidate_times_out() {
    let fixture = python();
    let hang = edit(
        "calc.py",
        "    return a - b",
        "    while True:\n        pass",
    );
    let script = json!({"calls": [chat("edit", vec![hang])]});
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--test-timeout",
            "2s",
            "--max-iterations",
            "1",
            "--json",
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let events = events(&output);
    let test = named(&events, "test.finished")[0];
    assert_eq!(test["timed_out"], true);
    assert!(test["seconds"].as_f64().unwrap() < 10.0);
    let finished = named(&events, "run.finished")[0];
    assert!(
        finished["reason"].as_str().unwrap().contains("timed out"),
        "{finished}"
    );
    assert_eq!(fixture.read("calc.py"), PY_CALC);
}

#[test]
fn no_test_command_fails_fast_before_the_model_is_loaded() {
    let fixture = Fixture::new(&[("notes.md", "# notes\n"), ("calc.py", PY_CALC)]);
    let model = fixture.scratch.path().join("no-such-model-of-40-gigabytes");
    let started = std::time::Instant::now();
    let output = common::hone()
        .current_dir(fixture.path())
        .args(["run", "fix add", "--backend", "local", "--model"])
        .arg(&model)
        .env("HOME", fixture.scratch.path())
        .env("XDG_CONFIG_HOME", fixture.scratch.path().join("config"))
        .env_remove("HONE_MODEL")
        .env_remove("HONE_BACKEND")
        .env_remove("HONE_TEST")
        .env_remove("HONE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        stderr.contains("no test command found"),
        "the refusal is about the test command: {}",
        text(&output)
    );
    assert!(
        stderr.contains("hint: pass --test"),
        "it says what to do: {}",
        text(&output)
    );
    assert!(
        !stderr.contains("no-such-model"),
        "the model was never looked at: {}",
        text(&output)
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .count(),
        1,
        "{}",
        text(&output)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(output.stdout.is_empty(), "{}", text(&output));
}

#[test]
fn dirty_tree_is_refused_unless_allowed() {
    let fixture = python();
    std::fs::write(fixture.path().join("README.md"), "# calc\n\nlocal notes\n").unwrap();
    let script = json!({"calls": [chat("edit", vec![plain_fix()])]});
    let refused = fixture.hone(
        &["fix add", "--test", PY_TEST_COMMAND, "--no-plan"],
        script.clone(),
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--allow-dirty"),
        "{}",
        text(&refused)
    );
    assert_eq!(fixture.read("calc.py"), PY_CALC);

    let allowed = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--allow-dirty",
        ],
        script,
    );
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    assert!(fixture.read("calc.py").contains("return a + b"));
    assert_eq!(
        fixture.read("README.md"),
        "# calc\n\nlocal notes\n",
        "the user's change is kept"
    );
}

#[test]
fn branch_delivery_leaves_head_and_tree_alone() {
    let fixture = python();
    let script = json!({"calls": [
        chat("edit", vec![plain_fix()]),
        chat_expecting("commit-message", &["+    return a + b"], vec!["Fix add to add\n\nIt subtracted.".into()]),
    ]});
    let head_before = git2::Repository::open(fixture.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap();
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--branch",
            "hone/fix-add",
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let git = git2::Repository::open(fixture.path()).unwrap();
    assert_eq!(
        git.head().unwrap().target().unwrap(),
        head_before,
        "HEAD did not move"
    );
    assert_eq!(fixture.read("calc.py"), PY_CALC, "the tree is untouched");
    assert_eq!(fixture.git_status(), "");
    let branch = git
        .find_branch("hone/fix-add", git2::BranchType::Local)
        .unwrap();
    let commit = branch.get().peel_to_commit().unwrap();
    assert_eq!(commit.summary(), Some("Fix add to add"));
    assert_eq!(commit.parent_id(0).unwrap(), head_before);
    let blob = commit
        .tree()
        .unwrap()
        .get_path(Path::new("calc.py"))
        .unwrap()
        .to_object(&git)
        .unwrap();
    assert!(std::str::from_utf8(blob.as_blob().unwrap().content())
        .unwrap()
        .contains("a + b"));
}

#[test]
fn dry_run_and_patch_file_change_nothing() {
    let fixture = python();
    let script = json!({"calls": [chat("edit", vec![plain_fix()])]});
    let patch = fixture.scratch.path().join("fix.patch");
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--dry-run",
            "--patch",
            patch.to_str().unwrap(),
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(fixture.read("calc.py"), PY_CALC);
    let written = std::fs::read_to_string(&patch).unwrap();
    let check = Command::new("git")
        .current_dir(fixture.path())
        .args(["apply", "--check"])
        .arg(&patch)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "git apply --check: {}\n{written}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn an_unused_script_is_an_error() {
    let fixture = python();
    let script =
        json!({"calls": [chat("edit", vec![plain_fix()]), chat("edit", vec![plain_fix()])]});
    let output = fixture.hone(&["fix add", "--test", PY_TEST_COMMAND, "--no-plan"], script);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("never made"),
        "{}",
        text(&output)
    );
}

#[test]
fn deleting_the_failing_test_is_not_a_pass() {
    let fixture = python();
    let delete_test = edit(
        "test_calc.py",
        "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
        "",
    );
    let script = json!({"calls": [
        chat("edit", vec![delete_test]),
        chat_expecting("edit", &["do not delete"], vec![plain_fix()]),
    ]});
    let output = fixture.hone(
        &["fix add", "--test", PY_TEST_COMMAND, "--no-plan", "--json"],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let events = events(&output);
    let tests = named(&events, "test.finished");
    assert_eq!(
        tests[0]["passed"], false,
        "fewer tests ran than before: {:?}",
        tests[0]
    );
    assert_eq!(tests[1]["passed"], true);
    assert_eq!(
        fixture.read("test_calc.py"),
        PY_TEST,
        "the test file is intact"
    );
}

/// The real local path: the diffusion engine on a tiny random checkpoint with a character-level
/// tokenizer. Its output is gibberish, so this checks the loop's mechanics, not quality.
#[test]
fn local_engine_runs_the_loop_on_a_tiny_checkpoint() {
    let model = parity("llada-tiny");
    let model = model.to_str().unwrap();
    let fixture = python();
    let output = fixture.hone_plain(&[
        "run",
        "fix add",
        "--model",
        model,
        "--device",
        "cpu",
        "--test",
        PY_TEST_COMMAND,
        "--candidates",
        "2",
        "--max-iterations",
        "2",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let events = events(&output);
    let started = named(&events, "run.started")[0];
    assert_eq!(started["backend"], "local");
    assert_eq!(started["mode"], "infill");
    assert_eq!(
        named(&events, "plan")[0]["source"],
        "fallback",
        "a gibberish plan is not used"
    );
    assert_eq!(named(&events, "candidate.generated").len(), 4);
    let judged = named(&events, "test.finished").len()
        + named(&events, "candidate.failed")
            .iter()
            .filter(|e| e["stage"] != "test")
            .count();
    assert_eq!(
        judged, 4,
        "every candidate was tested or rejected: {events:?}"
    );
    let finished = named(&events, "run.finished")[0];
    assert_eq!(finished["status"], "failed");
    assert_eq!(finished["iterations"], 2);
    assert!(finished["nfe"].as_u64().unwrap() > 0, "{finished}");
    assert_eq!(fixture.read("calc.py"), PY_CALC);
    assert_eq!(fixture.git_status(), "");
}

/// A one-shot OpenAI-compatible endpoint on loopback: answers each POST with the next canned text
/// as a streamed (SSE) chat completion, and records the requests.
fn fake_openai(answers: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let responses = answers
        .into_iter()
        .map(|answer| {
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": answer}, "finish_reason": "stop"}]});
            let events = format!("data: {chunk}\n\ndata: [DONE]\n\n");
            format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{events}", events.len())
        })
        .collect();
    fake_endpoint(responses)
}

/// A loopback HTTP endpoint that answers each request with the next whole response, and records
/// the requests.
fn fake_endpoint(responses: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for response in responses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            requests.push(format!("{head}{}", String::from_utf8(body).unwrap()));
            let mut stream = reader.into_inner();
            stream.write_all(response.as_bytes()).unwrap();
        }
        requests
    });
    (base, handle)
}

#[test]
fn a_refused_key_or_an_unknown_model_names_the_flags_to_check() {
    let fixture = python();
    for (status, message, hint) in [
        (
            "401 Unauthorized",
            "Incorrect API key provided",
            "hint: set the key in the environment variable named by --api-key-env",
        ),
        (
            "404 Not Found",
            "model `coder` does not exist",
            "hint: check --base-url (it usually ends in /v1) and --model",
        ),
    ] {
        let body = json!({"error": {"message": message}}).to_string();
        let (base, server) = fake_endpoint(vec![format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )]);
        let output = common::hone()
            .current_dir(fixture.path())
            .args(["run", "fix add", "--no-plan", "--backend", "openai"])
            .args(["--base-url", &base, "--model", "coder"])
            .args(["--test", PY_TEST_COMMAND])
            .env("HOME", fixture.scratch.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{}", text(&output));
        assert!(stderr.contains(hint), "{}", text(&output));
        assert_eq!(server.join().unwrap().len(), 1, "no retry");
        assert_eq!(fixture.read("calc.py"), PY_CALC);
    }
}

#[test]
fn openai_backend_end_to_end_against_a_loopback_endpoint() {
    let fixture = python();
    let (base, server) = fake_openai(vec!["calc.py:1-2: add subtracts".into(), plain_fix()]);
    let output = common::hone()
        .current_dir(fixture.path())
        .args([
            "run",
            "fix add",
            "--backend",
            "openai",
            "--base-url",
            &base,
            "--model",
            "coder",
            "--api-key-env",
            "HONE_TEST_KEY",
        ])
        .args(["--test", PY_TEST_COMMAND])
        .env("HONE_TEST_KEY", "sk-loopback")
        .env("HOME", fixture.scratch.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(fixture.read("calc.py").contains("return a + b"));
    let requests = server.join().unwrap();
    assert_eq!(
        requests.len(),
        2,
        "a plan, then one candidate (the HTTP default)"
    );
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-loopback"),
        "{}",
        requests[1]
    );
    assert!(
        requests[1].contains("\"model\":\"coder\""),
        "{}",
        requests[1]
    );
    assert!(requests[1].contains("\"n\":1"), "{}", requests[1]);
}

#[test]
fn commit_delivery_uses_a_generated_message_and_runs_the_users_hooks() {
    let fixture = python();
    let hook = fixture.path().join(".git/hooks/commit-msg");
    std::fs::write(&hook, "#!/bin/sh\nprintf '\\nHook-Ran: yes\\n' >> \"$1\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = json!({"calls": [
        chat("edit", vec![plain_fix()]),
        chat("commit-message", vec!["```\nFix add\n```".into()]),
    ]});
    let output = fixture.hone(
        &[
            "fix add",
            "--test",
            PY_TEST_COMMAND,
            "--no-plan",
            "--commit",
        ],
        script,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let git = git2::Repository::open(fixture.path()).unwrap();
    let head = git.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(
        head.summary(),
        Some("Fix add"),
        "fences stripped from the model's message"
    );
    assert!(
        head.message().unwrap().contains("Hook-Ran: yes"),
        "{:?}",
        head.message()
    );
    assert_eq!(fixture.git_status(), "", "the commit holds the patch");
    assert!(fixture.read("calc.py").contains("return a + b"));
}

/// `hone run` on the new families: Open-dCoder (infill) and LLaDA2.0 (block-causal: whole-file
/// or edit-block answers, no infill). Gibberish weights, so the loop fails, but it runs end to end.
#[test]
fn local_engine_runs_the_loop_on_the_new_families() {
    for (case, infill) in [("odc-tiny", true), ("llada2-tiny", false)] {
        let model = parity_v2(case).to_str().unwrap().to_owned();
        let fixture = python();
        let output = fixture.hone_plain(&[
            "run",
            "fix add",
            "--model",
            &model,
            "--device",
            "cpu",
            "--test",
            PY_TEST_COMMAND,
            "--candidates",
            "2",
            "--max-iterations",
            "1",
            "--json",
        ]);
        assert_eq!(output.status.code(), Some(1), "{case}: {}", text(&output));
        let events = events(&output);
        let started = named(&events, "run.started")[0];
        assert_eq!(started["backend"], "local", "{case}");
        assert_eq!(started["mode"] == "infill", infill, "{case}: {started}");
        assert_eq!(named(&events, "candidate.generated").len(), 2, "{case}");
        let finished = named(&events, "run.finished")[0];
        assert!(finished["nfe"].as_u64().unwrap() > 0, "{case}: {finished}");
        assert_eq!(fixture.read("calc.py"), PY_CALC, "{case}");
        assert_eq!(fixture.git_status(), "", "{case}");
    }
}

#[test]
fn a_4096_token_window_prompt_carries_a_repo_map_within_budget() {
    // `add` calls into a long helper module that the prompt cannot show whole: its definitions
    // reach the prompt as a repository map instead.
    let mut helpers = String::from("def normalise(value):\n    return int(value)\n\n\n");
    for i in 0..120 {
        helpers.push_str(&format!(
            "def scale_{i}(value):\n    factor = {i}\n    return value * factor\n\n\n"
        ));
    }
    let calc = "from numbers_util import normalise\n\n\ndef add(a, b):\n    return normalise(a) - normalise(b)\n";
    let fixture = Fixture::new(&[
        ("calc.py", calc),
        ("numbers_util.py", &helpers),
        (
            "test_calc.py",
            PY_TEST
                .replace(", double", "")
                .split("    def test_double")
                .next()
                .unwrap(),
        ),
        ("README.md", "# calc\n"),
    ]);
    let fix = edit(
        "calc.py",
        "    return normalise(a) - normalise(b)",
        "    return normalise(a) + normalise(b)",
    );
    let (base, server) = fake_openai(vec!["calc.py:4-5: add subtracts".into(), fix]);
    let output = common::hone()
        .current_dir(fixture.path())
        .args(["run", "add returns the difference of normalised numbers"])
        .args([
            "--backend",
            "openai",
            "--base-url",
            &base,
            "--model",
            "coder",
        ])
        .args(["--context-window", "4096", "--test", PY_TEST_COMMAND])
        .env("HOME", fixture.scratch.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let requests = server.join().unwrap();
    let task = &requests[1];
    let body: Value = serde_json::from_str(&task[task.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let prompt: String = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["content"].as_str().unwrap())
        .collect();
    assert!(prompt.contains("# Repository map"), "{prompt}");
    assert!(prompt.contains("numbers_util.py:"), "{prompt}");
    assert!(prompt.contains("def normalise(value):"), "{prompt}");
    // Within the window: about four characters a token, with the answer's room on top.
    let answer = body["max_tokens"].as_u64().unwrap() as usize;
    assert!(
        prompt.len() / 4 + answer <= 4096,
        "{} + {answer}",
        prompt.len() / 4
    );
}
