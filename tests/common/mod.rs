//! Helpers shared by the end-to-end tests of the `hone` binary: the binary itself, the committed
//! fixtures, `git` for building repositories, and reading a run's output. Each `tests/*.rs` file is
//! its own test binary and includes this module with `mod common;` (the `adversarial` folder with
//! a `#[path]`); what isolation a command needs (HOME, `HONE_*` variables) stays with each file.
// A helper one test binary does not use is still used by another.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `hone` binary under test.
pub const HONE: &str = env!("CARGO_BIN_EXE_hone");

/// A command running the `hone` binary under test.
pub fn hone() -> Command {
    Command::new(HONE)
}

/// A committed fixture: `tests/fixtures/<path>`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A tiny checkpoint of the first parity set (`tests/fixtures/parity/<case>`).
pub fn parity(case: &str) -> PathBuf {
    fixture("parity").join(case)
}

/// A tiny checkpoint of the second parity set (`tests/fixtures/parity-v2/<case>`).
pub fn parity_v2(case: &str) -> PathBuf {
    fixture("parity-v2").join(case)
}

/// `program` in `dir` with a fixed git identity, without the machine's git configuration and
/// outside any repository the test runner's environment points at.
pub fn isolated(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE");
    command
}

/// Run `git` in `dir` with a fixed identity and without the machine's git configuration; panics
/// with git's stderr when it fails, and returns its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = isolated("git", dir).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Make `dir` a git repository on `main` with a local identity (so that hone can commit there) and,
/// when `files` is not empty, a first commit holding them.
pub fn init_repo(dir: &Path, files: &[(&str, &str)]) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Test"]);
    git(dir, &["config", "user.email", "test@example.invalid"]);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    if !files.is_empty() {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "initial"]);
    }
}

/// A run's exit code, stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The stdout of a run that must have succeeded (panics with its stderr otherwise).
pub fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The stdout of a run that must have succeeded, as one JSON document.
pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&succeeded(output)).unwrap()
}

/// A SEARCH/REPLACE block editing `path`, fenced as a model writes it.
pub fn edit_block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n```\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n")
}

/// A one-file Python project whose test fails until `FIX` is applied.
pub mod calc {
    pub const CALC: &str = "def add(a, b):\n    return a - b\n";
    pub const TEST: &str = "import unittest\nfrom calc import add\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n\nif __name__ == '__main__':\n    unittest.main()\n";
    pub const TEST_CMD: &str = "python3 -m unittest -q test_calc";
    pub const FIX: &str =
        "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n";
}
