//! End-to-end tests of `hone batch` on patch tasks (no model needed) over fixture repositories
//! built in tempdirs: every task verified with `--jobs 2`, a run killed half-way then resumed
//! without running a finished task twice or losing one, and SWE-bench predictions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{edit_block as edit, git};

/// Two repositories (`a`, `b`), each with `value.txt` = "bad", and `count` tasks whose patches
/// fix it and add a file of their own. Each task's test logs its id to `log/ran.log` (outside the
/// repositories), so a test can count how often each task really ran; tests run confined, so the
/// user config `hone.toml` beside it (pass it as `HONE_CONFIG`) makes `log/` writable.
fn fixture(count: usize, test_delay: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let repo = dir.path().join(name);
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("value.txt"), "bad\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "start"]);
    }
    let log_dir = dir.path().join("log");
    std::fs::create_dir(&log_dir).unwrap();
    std::fs::write(
        dir.path().join("hone.toml"),
        format!(
            "[sandbox]\nwritable = [{:?}]\n",
            log_dir.display().to_string()
        ),
    )
    .unwrap();
    let log = log_dir.join("ran.log");
    let mut lines = String::new();
    for index in 0..count {
        let id = format!("task-{index:02}");
        let repo = if index % 2 == 0 { "a" } else { "b" };
        let patch = format!(
            "--- a/value.txt\n+++ b/value.txt\n@@ -1 +1 @@\n-bad\n+good\n\
             --- /dev/null\n+++ b/{id}.txt\n@@ -0,0 +1 @@\n+{id}\n"
        );
        let test = format!(
            "{test_delay}echo {id} >> '{}'; test \"$(cat value.txt)\" = good && test -f {id}.txt",
            log.display()
        );
        let line = serde_json::json!({"id": id, "task": "fix value.txt", "repo": repo, "test": test, "patch": patch});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks, lines).unwrap();
    (dir, tasks)
}

fn results(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn run_counts(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in std::fs::read_to_string(dir.join("log").join("ran.log"))
        .unwrap_or_default()
        .lines()
    {
        *counts.entry(id.to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn twenty_patch_tasks_with_two_jobs_are_all_verified() {
    let (dir, tasks) = fixture(20, "");
    let out = dir.path().join("results.jsonl");
    let predictions = dir.path().join("preds.jsonl");
    let output = common::hone()
        .args([
            "batch",
            tasks.to_str().unwrap(),
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--predictions",
            predictions.to_str().unwrap(),
            "--model-name",
            "hone-test",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("20 tasks: 20 verified"));

    let results = results(&out);
    assert_eq!(results.len(), 20);
    let mut ids: Vec<&str> = results
        .iter()
        .map(|result| result["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    for result in &results {
        assert_eq!(result["status"], "verified", "{result}");
        let id = result["id"].as_str().unwrap();
        let diff = result["diff"].as_str().unwrap();
        assert!(
            diff.contains("+good") && diff.contains(&format!("+{id}")),
            "{diff}"
        );
        for key in ["iterations", "seconds", "tokens", "error"] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
    }
    // The repositories are never written to.
    for name in ["a", "b"] {
        assert_eq!(git(&dir.path().join(name), &["status", "--porcelain"]), "");
    }
    let predictions = results_of(&predictions);
    assert_eq!(predictions.len(), 20);
    assert_eq!(predictions[0]["instance_id"], "task-00");
    assert_eq!(predictions[0]["model_name_or_path"], "hone-test");
    assert!(predictions[0]["model_patch"]
        .as_str()
        .unwrap()
        .contains("+good"));
}

/// `results` under another name, for tests where a local `results` shadows it.
fn results_of(path: &Path) -> Vec<serde_json::Value> {
    results(path)
}

#[test]
fn a_killed_run_resumes_without_running_a_finished_task_twice() {
    let (dir, tasks) = fixture(20, "sleep 0.3; ");
    let out = dir.path().join("results.jsonl");
    let mut child = common::hone()
        .env("HONE_CONFIG", dir.path().join("hone.toml"))
        .args([
            "batch",
            tasks.to_str().unwrap(),
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while results(&out).len() < 6 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Tests the killed run had started may still finish (they are in their own process group).
    std::thread::sleep(Duration::from_millis(800));
    let first: Vec<String> = results(&out)
        .iter()
        .map(|result| result["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(first.len() >= 6 && first.len() < 20, "{}", first.len());
    let before = run_counts(dir.path());

    let output = common::hone()
        .env("HONE_CONFIG", dir.path().join("hone.toml"))
        .args([
            "batch",
            tasks.to_str().unwrap(),
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an existing results file needs --resume"
    );

    let output = common::hone()
        .env("HONE_CONFIG", dir.path().join("hone.toml"))
        .args([
            "batch",
            tasks.to_str().unwrap(),
            "--jobs",
            "2",
            "--resume",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let all = results(&out);
    let mut ids: Vec<String> = all
        .iter()
        .map(|result| result["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort_unstable();
    let expected: Vec<String> = (0..20).map(|index| format!("task-{index:02}")).collect();
    assert_eq!(ids, expected, "every task exactly once in the results");
    assert!(all.iter().all(|result| result["status"] == "verified"));
    let after = run_counts(dir.path());
    for id in &first {
        assert_eq!(
            after[id], before[id],
            "{id} finished before the kill and ran again"
        );
        assert_eq!(after[id], 1, "{id}");
    }
    for id in &expected {
        assert!(after.get(id).copied().unwrap_or(0) >= 1, "{id} never ran");
    }
}

#[test]
fn bad_task_lines_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    std::fs::write(&tasks, "{\"id\": \"a\", \"patch\": \"x\"}\nnot json\n").unwrap();
    let output = common::hone()
        .current_dir(dir.path())
        .args(["batch", "tasks.jsonl"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2"));
    assert!(
        !dir.path().join("tasks.results.jsonl").exists()
            || std::fs::read(dir.path().join("tasks.results.jsonl"))
                .unwrap()
                .is_empty()
    );
}

/// A repository with src/one.py and src/two.py, and a scripted run per file (plan, then `edit`).
fn refactor_fixture(edits: [String; 2]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("src/one.py"), "def one():\n    return 1\n").unwrap();
    std::fs::write(repo.join("src/two.py"), "def two():\n    return 2\n").unwrap();
    std::fs::write(repo.join("README.md"), "# numbers\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    let [first, second] = edits;
    let script = serde_json::json!({"calls": [
        {"kind": "chat", "purpose": "plan", "expect": ["src/one.py"], "responses": ["src/one.py:1-2: add a docstring"]},
        {"kind": "chat", "purpose": "edit", "responses": [first]},
        {"kind": "chat", "purpose": "plan", "expect": ["src/two.py"], "responses": ["src/two.py:1-2: add a docstring"]},
        {"kind": "chat", "purpose": "edit", "responses": [second]},
    ]});
    std::fs::write(dir.path().join("script.json"), script.to_string()).unwrap();
    (dir, repo)
}

fn refactor(dir: &Path, repo: &Path) -> std::process::Output {
    common::hone()
        .current_dir(repo)
        .args([
            "refactor",
            "add a docstring",
            "--glob",
            "src/**/*.py",
            "--jobs",
            "1",
        ])
        .args([
            "--test",
            "python3 -m py_compile src/one.py src/two.py",
            "--backend",
            "scripted",
            "--script",
        ])
        .arg(dir.join("script.json"))
        .env("HONE_CONFIG", dir.join("none.toml"))
        .output()
        .unwrap()
}

#[test]
fn refactor_merges_each_files_verified_change() {
    let (dir, repo) = refactor_fixture([
        edit(
            "src/one.py",
            "def one():",
            "def one():\n    \"\"\"One.\"\"\"",
        ),
        edit(
            "src/two.py",
            "def two():",
            "def two():\n    \"\"\"Two.\"\"\"",
        ),
    ]);
    let output = refactor(dir.path(), &repo);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("src/one.py")).unwrap(),
        "def one():\n    \"\"\"One.\"\"\"\n    return 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("src/two.py")).unwrap(),
        "def two():\n    \"\"\"Two.\"\"\"\n    return 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "# numbers\n"
    );
}

#[test]
fn refactor_reports_conflicting_edits_and_never_blends_them() {
    // one.py's task also edits two.py, which two.py's own task edits differently.
    let stray = format!(
        "{}\n{}",
        edit(
            "src/one.py",
            "def one():",
            "def one():\n    \"\"\"One.\"\"\""
        ),
        edit(
            "src/two.py",
            "def two():",
            "def two():\n    \"\"\"Two, says one.\"\"\""
        )
    );
    let (dir, repo) = refactor_fixture([
        stray,
        edit(
            "src/two.py",
            "def two():",
            "def two():\n    \"\"\"Two.\"\"\"",
        ),
    ]);
    let output = refactor(dir.path(), &repo);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("src/one.py: left out") && stderr.contains("src/two.py"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("src/one.py")).unwrap(),
        "def one():\n    return 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("src/two.py")).unwrap(),
        "def two():\n    \"\"\"Two.\"\"\"\n    return 2\n"
    );
}

#[test]
fn a_task_without_a_patch_goes_to_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("py");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(
        repo.join("test_calc.py"),
        "import unittest\n\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n",
    )
    .unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    let task = serde_json::json!({"id": "swe-1", "task": "make test_add pass", "repo": "py", "test": "python3 -m unittest -q"});
    std::fs::write(dir.path().join("tasks.jsonl"), format!("{task}\n")).unwrap();
    let script = serde_json::json!({"calls": [
        {"kind": "chat", "purpose": "plan", "responses": ["calc.py:1-2: add subtracts"]},
        {"kind": "chat", "purpose": "edit", "expect": ["test_add"], "responses": [edit("calc.py", "    return a - b", "    return a + b")]},
    ]});
    std::fs::write(dir.path().join("script.json"), script.to_string()).unwrap();
    let output = common::hone()
        .current_dir(dir.path())
        .args([
            "batch",
            "tasks.jsonl",
            "--backend",
            "scripted",
            "--script",
            "script.json",
            "--predictions",
            "preds.jsonl",
        ])
        .env("HONE_CONFIG", dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = &results(&dir.path().join("tasks.results.jsonl"))[0];
    assert_eq!(result["status"], "verified", "{result}");
    assert_eq!(result["iterations"], 1);
    assert!(result["diff"]
        .as_str()
        .unwrap()
        .contains("+    return a + b"));
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        "def add(a, b):\n    return a - b\n"
    );
    assert!(std::fs::read_to_string(dir.path().join("preds.jsonl"))
        .unwrap()
        .contains("swe-1"));
}

#[test]
fn ctrl_c_finishes_the_running_tasks_and_keeps_their_results() {
    let (dir, tasks) = fixture(10, "sleep 0.3; ");
    let out = dir.path().join("results.jsonl");
    let child = common::hone()
        .env("HONE_CONFIG", dir.path().join("hone.toml"))
        .args([
            "batch",
            tasks.to_str().unwrap(),
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while results(&out).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("--resume"));
    // Every task that started was finished and recorded: nothing ran without a result.
    let mut recorded: Vec<String> = results(&out)
        .iter()
        .map(|result| result["id"].as_str().unwrap().to_owned())
        .collect();
    recorded.sort_unstable();
    let mut ran: Vec<String> = run_counts(dir.path()).into_keys().collect();
    ran.sort_unstable();
    assert_eq!(recorded, ran);
    assert!(recorded.len() < 10, "stopped early");
}
