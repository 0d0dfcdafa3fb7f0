//! End-to-end tests of `hone hook`: real `git` commands in tempdir repositories, with hone's hooks
//! installed by the `hone` binary. The check command is a tiny `sh` test on a file's content, so
//! the staged content, the working tree and the pushed commit can each be made to pass or fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::HONE;

/// Passes when value.txt says "good".
const CHECK: &str = r#"test "$(cat value.txt)" = good"#;

/// A `git` command isolated from the machine's configuration and from hone's user config.
fn command(program: &str, dir: &Path) -> Command {
    let mut command = common::isolated(program, dir);
    command
        .env("HONE_CONFIG", dir.join("no-user-config.toml"))
        .env_remove("HONE_BACKEND")
        .env_remove("HONE_MODEL")
        .env_remove("HONE_SCRIPT")
        .env_remove("HONE_SKIP_HOOKS");
    command
}

fn run(program: &str, dir: &Path, args: &[&str]) -> Output {
    command(program, dir).args(args).output().unwrap()
}

/// Run and require success.
fn ok(program: &str, dir: &Path, args: &[&str]) -> String {
    let output = run(program, dir, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A repository whose committed value.txt passes the check, with `[hook] test` configured.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    ok("git", &repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("value.txt"), "good\n").unwrap();
    std::fs::write(
        repo.join(".hone.toml"),
        format!("[hook]\ntest = '{CHECK}'\nbudget = 60\n"),
    )
    .unwrap();
    ok("git", &repo, &["add", "."]);
    ok("git", &repo, &["commit", "-q", "-m", "start"]);
    (dir, repo)
}

fn head(repo: &Path) -> String {
    ok("git", repo, &["rev-parse", "HEAD"])
}

#[test]
fn install_and_uninstall_keep_an_existing_hook_working() {
    let (dir, repo) = fixture();
    let log = dir.path().join("mine.log");
    let mine = format!("#!/bin/sh\necho ran >> '{}'\nexit 0\n", log.display());
    let hook = repo.join(".git/hooks/pre-commit");
    std::fs::write(&hook, &mine).unwrap();
    ok("chmod", &repo, &["755", hook.to_str().unwrap()]);

    let first = ok(HONE, &repo, &["hook", "install"]);
    assert!(
        first.contains("pre-commit: installed; the existing hook was kept"),
        "{first}"
    );
    let second = ok(HONE, &repo, &["hook", "install"]);
    assert!(second.contains("pre-commit: already installed"), "{second}");
    let listed = ok(HONE, &repo, &["hook", "list"]);
    assert!(listed.contains("after the previous hook"), "{listed}");

    std::fs::write(repo.join("value.txt"), "good\nstill good\n").unwrap();
    std::fs::write(
        repo.join(".hone.toml"),
        "[hook]\ntest = 'head -1 value.txt | grep -qx good'\n",
    )
    .unwrap();
    ok("git", &repo, &["add", "."]);
    let output = run("git", &repo, &["commit", "-m", "both hooks run"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("passed on the staged content"));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");

    let removed = ok(HONE, &repo, &["hook", "uninstall"]);
    assert!(
        removed.contains("pre-commit: removed; the previous hook is back"),
        "{removed}"
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), mine);
    assert!(!repo.join(".git/hooks/pre-commit.hone-backup").exists());
    assert!(!repo.join(".git/hooks/pre-push").exists());
    std::fs::write(repo.join("other.txt"), "x\n").unwrap();
    ok("git", &repo, &["add", "other.txt"]);
    ok("git", &repo, &["commit", "-q", "-m", "only mine"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\nran\n");
}

#[test]
fn a_failing_previous_hook_still_blocks_and_core_hooks_path_is_honoured() {
    let (_dir, repo) = fixture();
    ok("git", &repo, &["config", "core.hooksPath", ".githooks"]);
    std::fs::create_dir(repo.join(".githooks")).unwrap();
    std::fs::write(
        repo.join(".githooks/pre-commit"),
        "#!/bin/sh\necho 'no commits today' >&2\nexit 3\n",
    )
    .unwrap();
    ok("chmod", &repo, &["755", ".githooks/pre-commit"]);
    let installed = ok(
        HONE,
        &repo.join(".githooks"),
        &["hook", "install", "pre-commit"],
    );
    assert!(installed.contains(".githooks"), "{installed}");
    assert!(repo.join(".githooks/pre-commit.hone-backup").exists());
    assert!(!repo.join(".git/hooks/pre-commit").exists());

    let before = head(&repo);
    std::fs::write(repo.join("other.txt"), "x\n").unwrap();
    ok("git", &repo, &["add", "other.txt"]);
    let output = run("git", &repo, &["commit", "-m", "blocked"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no commits today"));
    assert_eq!(head(&repo), before);
}

#[test]
fn staged_content_is_tested_not_the_working_tree() {
    let (_dir, repo) = fixture();
    ok(HONE, &repo, &["hook", "install", "pre-commit"]);

    // Staged content fails, the working tree passes: blocked.
    std::fs::write(repo.join("value.txt"), "bad\n").unwrap();
    ok("git", &repo, &["add", "value.txt"]);
    std::fs::write(repo.join("value.txt"), "good\nunstaged extra line\r\n").unwrap();
    let before = head(&repo);
    let output = run("git", &repo, &["commit", "-m", "broken staged content"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fails its tests"), "{stderr}");
    assert_eq!(head(&repo), before);
    assert_eq!(
        std::fs::read(repo.join("value.txt")).unwrap(),
        b"good\nunstaged extra line\r\n"
    );
    assert_eq!(ok("git", &repo, &["show", ":value.txt"]), "bad\n");

    // Staged content passes, only unstaged changes are broken: committed, unstaged bytes kept.
    std::fs::write(repo.join("value.txt"), "good\n").unwrap();
    ok("git", &repo, &["add", "value.txt"]);
    std::fs::write(repo.join("notes.txt"), "notes\n").unwrap();
    ok("git", &repo, &["add", "notes.txt"]);
    let broken: &[u8] = b"bad\n\x00binary-ish \xff unstaged\n";
    std::fs::write(repo.join("value.txt"), broken).unwrap();
    std::fs::write(repo.join("untracked.txt"), "untracked\n").unwrap();
    let output = run("git", &repo, &["commit", "-m", "good staged content"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(head(&repo), before);
    assert_eq!(std::fs::read(repo.join("value.txt")).unwrap(), broken);
    assert_eq!(
        std::fs::read_to_string(repo.join("untracked.txt")).unwrap(),
        "untracked\n"
    );
    assert_eq!(ok("git", &repo, &["show", "HEAD:value.txt"]), "good\n");
    let status = ok("git", &repo, &["status", "--porcelain"]);
    assert!(
        status.contains(" M value.txt") && status.contains("?? untracked.txt"),
        "{status}"
    );
}

#[test]
fn commit_all_checks_the_temporary_index() {
    // `git commit -a` tests what -a stages (git passes a temporary GIT_INDEX_FILE to the hook).
    let (_dir, repo) = fixture();
    ok(HONE, &repo, &["hook", "install", "pre-commit"]);
    std::fs::write(repo.join("value.txt"), "bad\n").unwrap();
    let output = run("git", &repo, &["commit", "-a", "-m", "all"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("value.txt")).unwrap(),
        "bad\n"
    );
}

#[test]
fn prepare_commit_msg_drafts_a_message_with_the_scripted_backend() {
    let (dir, repo) = fixture();
    ok(HONE, &repo, &["hook", "install", "prepare-commit-msg"]);
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        r#"{"calls": [{"kind": "chat", "purpose": "commit-message", "expect": ["greeting.txt"],
            "responses": ["```\nAdd a greeting file\n\nSo that visitors are welcomed.\n```"]}]}"#,
    )
    .unwrap();
    std::fs::write(repo.join("greeting.txt"), "hello\n").unwrap();
    ok("git", &repo, &["add", "greeting.txt"]);
    let output = command("git", &repo)
        .args(["commit", "-q"])
        .env("GIT_EDITOR", "true")
        .env("HONE_BACKEND", "scripted")
        .env("HONE_SCRIPT", &script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        ok("git", &repo, &["log", "-1", "--format=%B"]).trim_end(),
        "Add a greeting file\n\nSo that visitors are welcomed."
    );

    // -m keeps the user's message; the strict script (no calls left) is not consulted.
    std::fs::write(repo.join("greeting.txt"), "hello again\n").unwrap();
    ok("git", &repo, &["add", "greeting.txt"]);
    let output = command("git", &repo)
        .args(["commit", "-q", "-m", "my own words"])
        .env("HONE_BACKEND", "scripted")
        .env("HONE_SCRIPT", &script)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        ok("git", &repo, &["log", "-1", "--format=%B"]).trim_end(),
        "my own words"
    );

    // No model configured: no draft and no noise (git then refuses the empty message itself).
    let output = command("git", &repo)
        .args(["commit", "-q"])
        .env("GIT_EDITOR", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hone"));
}

#[test]
fn pre_push_tests_the_pushed_commit() {
    let (dir, repo) = fixture();
    let remote = dir.path().join("remote.git");
    ok(
        "git",
        dir.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    ok(
        "git",
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    // An existing pre-push hook that reads the refs on stdin: it must still get all of them.
    let seen = dir.path().join("seen.txt");
    let previous = repo.join(".git/hooks/pre-push");
    std::fs::write(
        &previous,
        format!("#!/bin/sh\ncat > '{}'\n", seen.display()),
    )
    .unwrap();
    ok("chmod", &repo, &["755", previous.to_str().unwrap()]);
    ok(HONE, &repo, &["hook", "install", "pre-push"]);

    let output = run("git", &repo, &["push", "-q", "origin", "main"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("refs/heads/main"));
    let refs = std::fs::read_to_string(&seen).unwrap();
    assert!(
        refs.starts_with("refs/heads/main ") && refs.contains(head(&repo).trim()),
        "{refs}"
    );

    // A commit that fails, pushed from a working tree that passes: blocked.
    std::fs::write(repo.join("value.txt"), "bad\n").unwrap();
    ok("git", &repo, &["commit", "-q", "-a", "-m", "break it"]);
    std::fs::write(repo.join("value.txt"), "good\n").unwrap();
    let output = run("git", &repo, &["push", "-q", "origin", "main"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("fails its tests"));
    let remote_head = ok("git", &remote, &["rev-parse", "main"]);
    assert_ne!(remote_head, head(&repo));
}

#[test]
fn running_out_of_budget_follows_fail_open() {
    let (_dir, repo) = fixture();
    ok(HONE, &repo, &["hook", "install", "pre-commit"]);
    std::fs::write(
        repo.join(".hone.toml"),
        "[hook]\ntest = 'sleep 5'\nbudget = '1s'\nfail_open = true\n",
    )
    .unwrap();
    ok("git", &repo, &["add", ".hone.toml"]);
    let output = run("git", &repo, &["commit", "-m", "slow"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("letting the commit through"));

    std::fs::write(
        repo.join(".hone.toml"),
        "[hook]\ntest = 'sleep 5'\nbudget = '1s'\n",
    )
    .unwrap();
    ok("git", &repo, &["add", ".hone.toml"]);
    let output = run("git", &repo, &["commit", "-m", "slow and closed"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("commit blocked"));
}

const PY_GOOD: &str = "def add(a, b):\n    return a + b\n\n\ndef double(x):\n    return x * 2\n";
const PY_BROKEN: &str = "def add(a, b):\n    return a - b\n\n\ndef double(x):\n    return x * 2\n";
const PY_TEST: &str = "import unittest\n\nfrom calc import add, double\n\n\nclass TestCalc(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n    def test_double(self):\n        self.assertEqual(double(4), 8)\n";

/// A Python repository whose staged calc.py breaks `test_add`, with `hook.fix = FIX`, an unstaged
/// line appended to calc.py, and a script whose one edit call fixes the staged content.
fn python_fixture(fix: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    ok("git", &repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("calc.py"), PY_GOOD).unwrap();
    std::fs::write(repo.join("test_calc.py"), PY_TEST).unwrap();
    std::fs::write(
        repo.join(".hone.toml"),
        format!("[hook]\ntest = 'python3 -m unittest -q'\nfix = '{fix}'\nbudget = 60\n"),
    )
    .unwrap();
    ok("git", &repo, &["add", "."]);
    ok("git", &repo, &["commit", "-q", "-m", "start"]);
    ok(HONE, &repo, &["hook", "install", "pre-commit"]);
    std::fs::write(repo.join("calc.py"), PY_BROKEN).unwrap();
    ok("git", &repo, &["add", "calc.py"]);
    std::fs::write(
        repo.join("calc.py"),
        format!("{PY_BROKEN}# unstaged note\n"),
    )
    .unwrap();
    let fix = "Fix:\n\ncalc.py\n```\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n```\n";
    let script = dir.path().join("script.json");
    let calls = serde_json::json!({"calls": [{"kind": "chat", "purpose": "edit", "expect": ["test_add"], "responses": [fix]}]});
    std::fs::write(&script, calls.to_string()).unwrap();
    (dir, repo, script)
}

fn commit_with_script(repo: &Path, script: &Path) -> Output {
    command("git", repo)
        .args(["commit", "-m", "change calc"])
        .env("HONE_BACKEND", "scripted")
        .env("HONE_SCRIPT", script)
        .output()
        .unwrap()
}

#[test]
fn fix_suggest_writes_a_verified_patch_and_blocks() {
    let (_dir, repo, script) = python_fixture("suggest");
    let before = head(&repo);
    let output = commit_with_script(&repo, &script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let hint = stderr
        .lines()
        .find(|line| line.contains("hone apply "))
        .expect("an apply hint");
    let file = hint.trim().trim_start_matches("apply it with: hone apply ");
    let patch = std::fs::read_to_string(repo.join(file)).unwrap();
    assert!(patch.contains("+    return a + b"), "{patch}");
    assert_eq!(head(&repo), before);
    assert_eq!(ok("git", &repo, &["show", ":calc.py"]), PY_BROKEN);
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        format!("{PY_BROKEN}# unstaged note\n")
    );
}

#[test]
fn fix_stage_commits_the_fix_and_keeps_unstaged_changes() {
    let (_dir, repo, script) = python_fixture("stage");
    let output = commit_with_script(&repo, &script);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(ok("git", &repo, &["show", "HEAD:calc.py"]), PY_GOOD);
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        format!("{PY_GOOD}# unstaged note\n")
    );
    let unstaged = ok("git", &repo, &["diff"]);
    assert!(
        unstaged.contains("+# unstaged note") && !unstaged.contains("return a"),
        "{unstaged}"
    );
}

#[test]
fn hone_skip_hooks_lets_a_commit_through() {
    let (_dir, repo) = fixture();
    ok(HONE, &repo, &["hook", "install", "pre-commit"]);
    std::fs::write(repo.join("value.txt"), "bad\n").unwrap();
    ok("git", &repo, &["add", "value.txt"]);
    let output = command("git", &repo)
        .args(["commit", "-q", "-m", "skipped"])
        .env("HONE_SKIP_HOOKS", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(ok("git", &repo, &["show", "HEAD:value.txt"]), "bad\n");
}
