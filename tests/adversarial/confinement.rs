//! Confinement, interrupts and test integrity, probed against the `hone` binary: a test command
//! that writes to the real repository, to its `.git/config` and to `$HOME`, that opens a loopback
//! socket, or that leaves a `setsid` child behind must fail to do so (strict sandbox, the default);
//! SIGINT / SIGTERM during a test leave no process and no sandbox folder; patches that tamper with
//! the tests are not verified; and without bubblewrap (`HONE_BWRAP` naming nothing) hone says so
//! loudly and still runs the tests with no-new-privs.
//!
//! The probes that need bubblewrap check `hone sandbox check` first: without it they assert the
//! fallback's warning instead, unless `HONE_REQUIRE_BWRAP=1` (set by `.ci/run`) makes its absence
//! a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::calc::{CALC, FIX, TEST, TEST_CMD};
use crate::common::{git, text};

/// A repository, a scratch folder beside it (HOME, TMPDIR, markers), and the patch file.
struct Probe {
    repo: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Probe {
    fn new() -> Self {
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        let lib = "pub fn one() -> i32 {\n    1\n}\n\n#[test]\nfn is_one() {\n    assert_eq!(one(), 1);\n}\n";
        crate::common::init_repo(
            root,
            &[
                ("calc.py", CALC),
                ("test_calc.py", TEST),
                ("lib.rs", lib),
                (".gitignore", "__pycache__/\n"),
            ],
        );
        let scratch = tempfile::tempdir().unwrap();
        for dir in ["home", "tmp"] {
            std::fs::create_dir(scratch.path().join(dir)).unwrap();
        }
        let probe = Self { repo, scratch };
        probe.patch("fix.diff", FIX);
        probe
    }

    fn root(&self) -> &Path {
        self.repo.path()
    }

    fn home(&self) -> PathBuf {
        self.scratch.path().join("home")
    }

    /// hone's TMPDIR: where its sandbox folders go.
    fn tmp(&self) -> PathBuf {
        self.scratch.path().join("tmp")
    }

    fn patch(&self, name: &str, text: &str) -> PathBuf {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = crate::common::hone();
        command
            .args(args)
            .current_dir(self.root())
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp())
            .env("XDG_CONFIG_HOME", self.scratch.path().join("config"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("HONE_SANDBOX")
            .env_remove("HONE_CONFIG");
        command
    }

    fn hone(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `hone apply fix.diff --check --test CMD` plus `extra` flags.
    fn check_with(&self, test: &str, extra: &[&str]) -> Output {
        let patch = self.scratch.path().join("fix.diff");
        let mut args = vec!["apply", patch.to_str().unwrap(), "--check", "--test", test];
        args.extend_from_slice(extra);
        self.hone(&args)
    }

    fn sandbox_folders(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("hone-sandbox-"))
            .collect()
    }
}

/// True when bubblewrap confines tests here; false (after checking the fallback's warning) when
/// it does not and `HONE_REQUIRE_BWRAP` is unset.
fn bubblewrap(probe: &Probe) -> bool {
    let check = probe.hone(&["sandbox", "check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    if check.status.code() == Some(0) && stdout.contains("confinement: bubblewrap") {
        return true;
    }
    assert!(
        std::env::var_os("HONE_REQUIRE_BWRAP").is_none(),
        "bubblewrap is required here but does not confine tests: {}",
        text(&check)
    );
    let output = probe.check_with(TEST_CMD, &[]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("WARNING: tests are NOT confined"),
        "without bubblewrap the fallback must say so: {}",
        text(&output)
    );
    false
}

/// Processes whose command line starts with `token` (hone's own command line only contains it).
fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if line.starts_with(token) {
                found.push(format!("{name}: {line}"));
            }
        }
    }
    found
}

#[test]
fn a_test_cannot_write_the_repository_its_git_config_or_home() {
    let probe = Probe::new();
    if !bubblewrap(&probe) {
        return;
    }
    let escaped = probe.root().join("escaped.txt");
    let config = probe.root().join(".git").join("config");
    let config_before = std::fs::read(&config).unwrap();
    let home_file = probe.home().join("pwned");
    let test = format!(
        "echo x > {}; echo '[alias] x = !touch /tmp/pwned' >> {}; echo x > \"$HOME/pwned\"; {TEST_CMD}",
        escaped.display(),
        config.display()
    );
    let output = probe.check_with(&test, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(!escaped.exists(), "the write to the repository landed");
    assert_eq!(
        std::fs::read(&config).unwrap(),
        config_before,
        ".git/config changed"
    );
    assert!(!home_file.exists(), "the write to $HOME landed");
    assert_eq!(
        std::fs::read_to_string(probe.root().join("calc.py")).unwrap(),
        CALC
    );
}

#[test]
fn a_test_cannot_reach_a_loopback_socket() {
    let probe = Probe::new();
    if !bubblewrap(&probe) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let test = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\"; {TEST_CMD}"
    );
    let output = probe.check_with(&test, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "the test connected to the host's loopback: {accepted:?}"
    );
}

#[test]
fn a_setsid_child_does_not_outlive_the_test() {
    let probe = Probe::new();
    if !bubblewrap(&probe) {
        return;
    }
    let marker = probe.scratch.path().join("late");
    let token = format!("2.{}", std::process::id());
    let test = format!(
        "setsid sh -c 'sleep {token}; echo late > {}' & {TEST_CMD}",
        marker.display()
    );
    let output = probe.check_with(&test, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        processes_with(&format!("sleep {token}")),
        Vec::<String>::new(),
        "the setsid child survived the test"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(!marker.exists(), "the setsid child wrote its file later");
    assert!(probe.sandbox_folders().is_empty());
}

#[test]
fn sandboxes_have_a_readable_git_and_included_ignored_paths() {
    let probe = Probe::new();
    let root = probe.root();
    std::fs::write(root.join(".gitignore"), "__pycache__/\nvendor/\n").unwrap();
    git(root, &["commit", "-qam", "ignore vendor"]);
    std::fs::create_dir(root.join("vendor")).unwrap();
    std::fs::write(root.join("vendor").join("dep.py"), "VALUE = 3\n").unwrap();
    let head = git(root, &["rev-parse", "HEAD"]);
    let test = format!(
        "test \"$(git rev-parse HEAD)\" = {} && git status --porcelain && python3 -c 'import sys; sys.path.insert(0, \"vendor\"); import dep; assert dep.VALUE == 3' && {TEST_CMD}",
        head.trim()
    );
    let output = probe.check_with(&test, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// Send `signal` to `hone apply` (or `hone run`, whose baseline test is the one interrupted) while
/// its test runs.
fn interrupt(signal: &str, expected: i32, run: bool) {
    let probe = Probe::new();
    let token = format!("30.{}{}", std::process::id(), expected);
    let patch = probe.scratch.path().join("fix.diff");
    let script = probe.patch("script.json", "{\"calls\": []}");
    let test = format!("sleep {token}");
    let args: Vec<&str> = if run {
        let script = script.to_str().unwrap();
        vec![
            "run",
            "task",
            "--backend",
            "scripted",
            "--script",
            script,
            "--test",
            &test,
        ]
    } else {
        vec!["apply", patch.to_str().unwrap(), "--check", "--test", &test]
    };
    let mut child = probe
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&format!("sleep {token}")).is_empty() {
        assert!(Instant::now() < deadline, "the test never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!probe.sandbox_folders().is_empty());
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "hone did not exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(code, Some(expected), "{stderr}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        processes_with(&format!("sleep {token}")),
        Vec::<String>::new(),
        "the test survived {signal}"
    );
    assert_eq!(probe.sandbox_folders(), Vec::<String>::new(), "{stderr}");
}

#[test]
fn sigint_during_a_test_leaves_no_process_and_no_sandbox() {
    interrupt("-INT", 130, false);
}

#[test]
fn sigterm_during_a_test_leaves_no_process_and_no_sandbox() {
    interrupt("-TERM", 143, false);
}

#[test]
fn sigint_during_hone_run_leaves_no_process_and_no_sandbox() {
    interrupt("-INT", 130, true);
}

#[test]
fn tampered_tests_are_not_verified() {
    let probe = Probe::new();
    let cases = [
        (
            "assert-true.diff",
            "test_calc.py\n<<<<<<< SEARCH\n        self.assertEqual(add(1, 2), 3)\n=======\n        self.assertTrue(True)\n>>>>>>> REPLACE\n",
            "edits test file test_calc.py",
        ),
        (
            "skip.diff",
            "test_calc.py\n<<<<<<< SEARCH\n    def test_add(self):\n=======\n    @unittest.skip('later')\n    def test_add(self):\n>>>>>>> REPLACE\n",
            "test_calc.py",
        ),
        (
            "ignore.diff",
            "lib.rs\n<<<<<<< SEARCH\n#[test]\nfn is_one() {\n=======\n#[test]\n#[ignore]\nfn is_one() {\n>>>>>>> REPLACE\n",
            "#[ignore]",
        ),
    ];
    for (name, patch, reason) in cases {
        let path = probe.patch(name, patch);
        let args = ["apply", path.to_str().unwrap(), "--check", "--test", "true"];
        let output = probe.hone(&args);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("not verified") && stdout.contains(reason),
            "{name}: {}",
            text(&output)
        );
        let mut allowed = args.to_vec();
        allowed.push("--allow-test-edits");
        let output = probe.hone(&allowed);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name} allowed: {}",
            text(&output)
        );
    }
    // An honest fix is still verified.
    let output = probe.check_with(TEST_CMD, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn without_bubblewrap_hone_warns_and_falls_back_to_no_new_privs() {
    let probe = Probe::new();
    let missing = probe.scratch.path().join("no-such-bwrap");
    let check = probe
        .command(&["sandbox", "check"])
        .env("HONE_BWRAP", &missing)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("confinement: no-new-privs only"),
        "{stdout}"
    );
    assert!(stdout.contains("bwrap not found: HONE_BWRAP"), "{stdout}");

    let patch = probe.scratch.path().join("fix.diff");
    let output = probe
        .command(&[
            "apply",
            patch.to_str().unwrap(),
            "--check",
            "--test",
            "grep NoNewPrivs /proc/self/status; exit 1",
        ])
        .env("HONE_BWRAP", &missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("WARNING"))
        .collect();
    assert_eq!(warnings.len(), 1, "one loud line: {stderr}");
    assert!(warnings[0].contains("NOT confined"), "{stderr}");
    assert!(warnings[0].contains("pass --sandbox off"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("NoNewPrivs:\t1") || stdout.contains("NoNewPrivs: 1"),
        "{stdout}"
    );

    // --sandbox off is a choice, and still said out loud.
    let output = probe.check_with(TEST_CMD, &["--sandbox", "off"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("UNCONFINED"));
}

#[test]
fn hone_run_does_not_deliver_a_tampered_test() {
    let probe = Probe::new();
    let tamper = "The fix.\n\ntest_calc.py\n```\n<<<<<<< SEARCH\n        self.assertEqual(add(1, 2), 3)\n=======\n        self.assertTrue(True)\n>>>>>>> REPLACE\n```\n";
    let script = serde_json::json!({"calls": [
        {"kind": "chat", "purpose": "edit", "responses": [tamper]},
    ]});
    let script = probe.patch("tamper.json", &script.to_string());
    let output = probe.hone(&[
        "run",
        "make the test pass",
        "--backend",
        "scripted",
        "--script",
        script.to_str().unwrap(),
        "--test",
        TEST_CMD,
        "--no-plan",
        "--mode",
        "edit-blocks",
        "--candidates",
        "1",
        "--max-iterations",
        "1",
        "--no-record",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("edits test file test_calc.py"),
        "the report says why: {}",
        text(&output)
    );
    assert_eq!(
        std::fs::read_to_string(probe.root().join("test_calc.py")).unwrap(),
        TEST
    );
}
