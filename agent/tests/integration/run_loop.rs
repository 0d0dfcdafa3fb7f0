//! `run_task` as a library, with the scripted backend: the infill (block rewrite) path, the
//! budget, and the outcome's shape. The binary's behaviour is covered by the top-level
//! `tests/run_cli.rs`.

use std::sync::Mutex;
use std::time::Duration;

use hone_agent::testing::{CallKind, Script, ScriptedCall, ScriptedModel};
use hone_agent::{run_task, Event, GenerationMode, RunRequest, RunStatus};

const CALC: &str = "def add(a, b):\n    return a - b\n";
const TEST: &str = "import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), CALC).unwrap();
    std::fs::write(dir.path().join("test_calc.py"), TEST).unwrap();
    let git = git2::Repository::init(dir.path()).unwrap();
    let mut index = git.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("t", "t@example.com").unwrap();
    git.commit(Some("HEAD"), &signature, &signature, "init", &tree, &[])
        .unwrap();
    dir
}

fn request(dir: &tempfile::TempDir) -> RunRequest {
    let mut request = RunRequest::new(dir.path(), "fix add");
    request.test_command = Some("python3 -m unittest -q".into());
    request.plan = false;
    request.record = false;
    request
}

fn infill(fills: &[&str]) -> ScriptedCall {
    ScriptedCall {
        kind: CallKind::Infill,
        purpose: None,
        expect: vec!["calc.py".into()],
        responses: vec![],
        fills: fills.iter().map(|fill| vec![(*fill).to_owned()]).collect(),
    }
}

#[test]
fn run_task_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let dir = repo();
    let model = ScriptedModel::new(Script::default());
    let request = request(&dir);
    let future = run_task(&request, &model, &hone_agent::NoEvents);
    assert_send(&future);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infill_rewrites_the_planned_region_at_several_lengths() {
    let dir = repo();
    let model = ScriptedModel::new(Script {
        calls: vec![infill(&[
            "def add(a, b):\n    return a * b",
            "def add(a, b):\n    return a + b",
        ])],
        supports_infill: true,
        default_candidates: Some(2),
    });
    let events = Mutex::new(Vec::<Event>::new());
    let sink = |event: &Event| events.lock().unwrap().push(event.clone());
    let outcome = run_task(&request(&dir), &model, &sink).await.unwrap();
    model.finish().unwrap();
    assert_eq!(
        outcome.summary.status,
        RunStatus::Passed,
        "{:?}",
        outcome.summary
    );
    assert_eq!(
        outcome.changes.files[0].after.as_deref(),
        Some("def add(a, b):\n    return a + b\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("calc.py")).unwrap(),
        CALC,
        "the tree is untouched"
    );
    let events = events.into_inner().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::RunStarted { mode, .. } if mode == "infill")));
    let phases: Vec<&str> = outcome
        .phase_seconds
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    for phase in ["baseline test", "context", "generate", "apply", "test"] {
        assert!(phases.contains(&phase), "{phase} timed: {phases:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infill_is_refused_on_a_backend_without_it() {
    let dir = repo();
    let model = ScriptedModel::new(Script {
        calls: vec![],
        supports_infill: false,
        default_candidates: None,
    });
    let mut forced = request(&dir);
    forced.mode = GenerationMode::Infill;
    let error = run_task(&forced, &model, &hone_agent::NoEvents)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("does not support infill"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_stops_the_run() {
    let dir = repo();
    let model = ScriptedModel::new(Script::default());
    let mut request = request(&dir);
    request.budget = Some(Duration::ZERO);
    request.baseline = false;
    let outcome = run_task(&request, &model, &hone_agent::NoEvents)
        .await
        .unwrap();
    assert_eq!(outcome.summary.status, RunStatus::Budget);
    assert!(
        outcome.summary.reason.contains("budget"),
        "{}",
        outcome.summary.reason
    );
    assert!(outcome.changes.is_empty());
}
