//! End-to-end tests of `hone apply` and `hone context` on real git repositories in tempdirs: a
//! passing patch lands, a patch that breaks the tests or does not apply leaves the tree and index
//! byte-identical, timeouts kill grandchildren, --check and --commit behave, bad input exits 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::calc::{CALC, FIX, TEST, TEST_CMD};
use common::{git, init_repo};

const BREAK: &str =
    "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a * b\n>>>>>>> REPLACE\n";

/// A repository with the calculator, its test and `extra` files, committed.
fn calc_repo(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        ("calc.py", CALC),
        ("test_calc.py", TEST),
        (".gitignore", "__pycache__/\n"),
    ];
    files.extend_from_slice(extra);
    init_repo(dir.path(), &files);
    dir
}

fn fixture_repo() -> tempfile::TempDir {
    let dir = calc_repo(&[]);
    let root = dir.path();
    // A staged and an unstaged change elsewhere: both must survive every failure byte for byte.
    std::fs::write(root.join("notes.txt"), "staged\n").unwrap();
    git(root, &["add", "notes.txt"]);
    std::fs::write(root.join("notes.txt"), "staged\nand unstaged\n").unwrap();
    dir
}

/// Every file of the working tree plus the index file itself.
fn state(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            files.insert(
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    files.insert(
        ".git/index".into(),
        std::fs::read(root.join(".git/index")).unwrap(),
    );
    files
}

fn hone(dir: &Path, args: &[&str]) -> Output {
    common::hone()
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap()
}

/// `hone context ARGS --json` in `dir`, which must succeed.
fn context_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.insert(0, "context");
    args.push("--json");
    let output = hone(dir, &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The reason of `kind` (`"misspelled"`, `"flagged"`) among a ranked file's reasons in JSON.
fn reason_of<'a>(file: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    file["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|reason| reason["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} reason in {file}"))
}

fn write_patch(dir: &Path, text: &str) -> String {
    let path = dir.join("fix.patch");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn passing_patch_lands() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let patch = write_patch(outside.path(), FIX);
    let output = hone(repo.path(), &["apply", &patch, "--test", TEST_CMD]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("applied to the working tree") && stdout.contains("+    return a + b"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("calc.py")).unwrap(),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join("notes.txt")).unwrap(),
        "staged\nand unstaged\n"
    );
}

#[test]
fn patch_that_breaks_tests_does_not_land() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let before = state(repo.path());
    let patch = write_patch(outside.path(), BREAK);
    let output = hone(repo.path(), &["apply", &patch, "--test", TEST_CMD]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tests failed") && stdout.contains("test_add"),
        "{stdout}"
    );
    assert_eq!(
        state(repo.path()),
        before,
        "tree and index must be byte-identical"
    );
}

#[test]
fn edit_that_does_not_apply_reports_and_changes_nothing() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let before = state(repo.path());
    let text = format!("{FIX}\ncalc.py\n<<<<<<< SEARCH\ndef sub(a, b):\n=======\ndef minus(a, b):\n>>>>>>> REPLACE\n");
    let patch = write_patch(outside.path(), &text);
    let output = hone(repo.path(), &["apply", &patch, "--test", TEST_CMD]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 of 2 edit block(s) failed") && stdout.contains("not found"),
        "{stdout}"
    );
    assert_eq!(state(repo.path()), before);
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let before = state(repo.path());
    let marker = outside.path().join("grandchild-ran");
    let patch = write_patch(outside.path(), FIX);
    let command = format!("(sleep 3; touch {}) & sleep 60", marker.display());
    let start = std::time::Instant::now();
    let output = hone(
        repo.path(),
        &["apply", &patch, "--test", &command, "--timeout", "1"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("TIMED OUT"));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!marker.exists(), "a grandchild survived the timeout");
    assert_eq!(state(repo.path()), before);
}

#[test]
fn check_verifies_without_applying_and_commit_commits_only_the_patch() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let before = state(repo.path());
    let patch = write_patch(outside.path(), FIX);
    let output = hone(
        repo.path(),
        &["apply", &patch, "--test", TEST_CMD, "--check"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing applied"));
    assert_eq!(state(repo.path()), before);

    let output = hone(
        repo.path(),
        &[
            "apply", &patch, "--test", TEST_CMD, "--commit", "-m", "fix add",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let show = git(repo.path(), &["show", "--stat", "--format=%s", "HEAD"]);
    assert!(
        show.contains("fix add") && show.contains("calc.py") && !show.contains("notes.txt"),
        "{show}"
    );
    assert_eq!(
        git(repo.path(), &["status", "--porcelain"]).trim(),
        "AM notes.txt"
    );
}

#[test]
fn bad_input_exits_2() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    let missing = hone(repo.path(), &["apply", "no-such.patch"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("hint:"));
    let prose = write_patch(outside.path(), "just some words, no edits\n");
    assert_eq!(hone(repo.path(), &["apply", &prose]).status.code(), Some(2));
    let patch = write_patch(outside.path(), FIX);
    let no_repo = hone(outside.path(), &["apply", &patch]);
    assert_eq!(no_repo.status.code(), Some(2));
}

#[test]
fn context_ranks_files_with_reasons() {
    let repo = fixture_repo();
    let json = context_json(repo.path(), &["add returns the wrong sum", "--top", "2"]);
    let files = json["files"].as_array().unwrap();
    assert!(!files.is_empty() && files.len() <= 2);
    let paths: Vec<&str> = files
        .iter()
        .map(|file| file["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"calc.py"), "{paths:?}");
    let text = hone(repo.path(), &["context", "fix calc.py"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.lines().next().unwrap().contains("calc.py") && stdout.contains("named in the task"),
        "{stdout}"
    );
}

#[test]
fn context_for_a_syntax_error_task_points_at_the_line_that_does_not_parse() {
    let dir = calc_repo(&[(
        "status.py",
        "def codes(titles):\n    for title in titles:\n        if not if not title.startswith('/'):\n            yield title\n",
    )]);
    let root = dir.path();
    let json = context_json(root, &["Fix syntax error"]);
    let first = &json["files"][0];
    assert_eq!(first["path"], "status.py", "{json}");
    let flagged = reason_of(first, "flagged");
    assert_eq!(flagged["findings"][0]["code"], "syntax");
    assert_eq!(flagged["findings"][0]["line"], 3);
    let text = hone(root, &["context", "Fix syntax error"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("lint: syntax"), "{stdout}");
}

#[test]
fn context_for_a_typo_task_points_at_the_misspelling() {
    let dir = calc_repo(&[(
        "net.py",
        "def fetch(url):\n    # Wait to recieve the whole body.\n    return url\n",
    )]);
    let root = dir.path();
    let json = context_json(root, &["doc: fix typo"]);
    let first = &json["files"][0];
    assert_eq!(first["path"], "net.py", "{json}");
    let misspelled = reason_of(first, "misspelled");
    assert_eq!(misspelled["words"][0]["word"], "recieve");
    assert_eq!(misspelled["words"][0]["correction"], "receive");
    assert_eq!(misspelled["words"][0]["line"], 2);
    let text = hone(root, &["context", "doc: fix typo"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("possible misspellings: recieve -> receive (line 2)"),
        "{stdout}"
    );
}
