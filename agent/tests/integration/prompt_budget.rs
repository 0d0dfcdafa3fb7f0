//! What the first iteration sends, on a backend with a small window: the failing test's own
//! function (not the whole test file), a plan request that outlines the code instead of repeating
//! it, a prompt that leaves the answer its room, and the token counts in the transcript.

use futures::future::BoxFuture;
use hone_agent::testing::{CallKind, Script, ScriptedCall, ScriptedModel};
use hone_agent::{
    run_task, ChatRequest, ChatResponse, Model, ModelDescription, Purpose, RunRequest, RunStatus,
    StreamCallback,
};
use serde_json::Value;

const CALC: &str = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n";

/// A test file of many passing tests and one failing one.
fn tests_file() -> String {
    let mut text = String::from(
        "import unittest\nfrom calc import add, sub\n\n\nclass T(unittest.TestCase):\n",
    );
    for i in 0..40 {
        text.push_str(&format!(
            "    def test_sub_{i}(self):\n        \"\"\"sub of {i} and 1.\"\"\"\n        self.assertEqual(sub({i}, 1), {i} - 1)\n\n"
        ));
    }
    text.push_str("    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n");
    text
}

/// The scripted backend with a declared window.
struct Windowed {
    inner: ScriptedModel,
    window: usize,
}

impl Model for Windowed {
    fn describe(&self) -> ModelDescription {
        let mut description = self.inner.describe();
        description.context_window = Some(self.window);
        description
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, hone_agent::Result<ChatResponse>> {
        self.inner.chat(request, stream)
    }
}

fn chat(purpose: Purpose, expect: &[&str], response: &str) -> ScriptedCall {
    ScriptedCall {
        kind: CallKind::Chat,
        purpose: Some(purpose),
        expect: expect.iter().map(|text| (*text).to_owned()).collect(),
        responses: vec![response.to_owned()],
        fills: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4096_token_window_gets_the_failing_test_and_room_for_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), CALC).unwrap();
    std::fs::write(dir.path().join("test_calc.py"), tests_file()).unwrap();
    let git = git2::Repository::init(dir.path()).unwrap();
    let mut index = git.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("t", "t@example.com").unwrap();
    git.commit(Some("HEAD"), &signature, &signature, "init", &tree, &[])
        .unwrap();
    let runs = tempfile::tempdir().unwrap();

    let fix = "calc.py\n<<<<<<< SEARCH\ndef add(a, b):\n    return a - b\n=======\ndef add(a, b):\n    return a + b\n>>>>>>> REPLACE\n";
    let model = Windowed {
        inner: ScriptedModel::new(Script {
            calls: vec![
                chat(
                    Purpose::Plan,
                    &["def add(a, b):"],
                    "calc.py:1-2: add subtracts",
                ),
                chat(Purpose::Edit, &["def test_add(self):", "return a - b"], fix),
            ],
            ..Script::default()
        }),
        window: 4096,
    };
    let mut request = RunRequest::new(dir.path(), "fix add");
    request.test_command = Some("python3 -m unittest -q".into());
    request.runs_dir = Some(runs.path().to_path_buf());
    let outcome = run_task(&request, &model, &hone_agent::NoEvents)
        .await
        .unwrap();
    assert_eq!(
        outcome.summary.status,
        RunStatus::Passed,
        "{:?}",
        outcome.summary
    );
    model.inner.finish().unwrap();

    let transcript = std::path::PathBuf::from(outcome.summary.transcript.unwrap());
    let read = |path: &str| std::fs::read_to_string(transcript.join(path)).unwrap();
    // The plan request outlines the code; the code itself is sent once, with the edit request.
    let plan = read("plan/prompt.txt");
    assert!(plan.contains("    1: def add(a, b):"), "{plan}");
    assert!(!plan.contains("return a - b"), "{plan}");
    // The failing test, not the forty passing ones.
    let prompt = read("iteration-1/prompt.txt");
    assert!(prompt.contains("def test_add(self):"), "{prompt}");
    assert!(!prompt.contains("def test_sub_7(self):"), "{prompt}");
    // The prompt and the answer budget fit the window, and the transcript says what went where.
    let tokens: Value = serde_json::from_str(&read("iteration-1/prompt-tokens.json")).unwrap();
    let total = tokens["total"].as_u64().unwrap();
    let max_tokens = tokens["max_tokens"].as_u64().unwrap();
    assert!(total + max_tokens <= 4096, "{tokens}");
    assert!(max_tokens >= 256, "{tokens}");
    let names: Vec<&str> = tokens["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|section| section["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"system"), "{names:?}");
    assert!(names.contains(&"code: calc.py"), "{names:?}");
    assert!(
        names
            .iter()
            .any(|name| name.starts_with("code: test_calc.py:")),
        "{names:?}"
    );
}
