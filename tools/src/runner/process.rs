//! Spawning a command in its own process group, enforcing the timeout on the whole group (nix
//! `killpg`: SIGTERM, then SIGKILL after a grace period), capturing stdout and stderr through one
//! pipe (so they stay interleaved) with head and tail kept when the output is long, and scrubbing
//! secrets and git hook variables from the environment. The command is built by
//! `crate::confine::command` (bubblewrap, the fallback, or plain `sh -c`) and its group is
//! registered with `super::interrupt` while it runs, so an interrupt of hone can end it.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{parse_test_output, RunOptions, TestReport};
use crate::error::{Error, Result};

/// Time between SIGTERM and SIGKILL on timeout.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// Run `command` with `sh -c` under `options`; a non-zero exit or a timeout is reported in the
/// `TestReport`, not as an error.
pub fn run_command(command: &str, options: &RunOptions) -> Result<TestReport> {
    let spawn_error = |source| Error::Spawn {
        command: command.to_string(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let writer_err = writer.try_clone().map_err(spawn_error)?;
    let (mut builder, mechanism) =
        crate::confine::command(command, &options.cwd, options.confinement.as_ref());
    builder
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_err)
        // Its own process group, so a timeout can kill every grandchild with one signal.
        .process_group(0);
    if options.scrub_env {
        builder.env_clear().envs(scrub_environment());
    }
    builder.envs(options.extra_env.iter().map(|(name, value)| (name, value)));
    let start = Instant::now();
    let (mut child, _running) = super::interrupt::spawn(&mut builder).map_err(spawn_error)?;
    // The builder holds the pipe's write ends; drop them or the reader never sees end-of-file.
    drop(builder);
    let group = Pid::from_raw(child.id() as i32);
    let cap = options.output_cap.max(1);
    // The reader fills a shared buffer, so that output is kept even if a process that escaped the
    // group (setsid) holds the pipe open and the reader never finishes.
    let captured = Arc::new(Mutex::new(Captured::default()));
    let (done_sender, done) = mpsc::channel::<()>();
    {
        let captured = Arc::clone(&captured);
        std::thread::spawn(move || {
            capture(reader, cap, &captured);
            let _ = done_sender.send(());
        });
    }
    let mut timed_out = false;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() >= options.timeout {
            timed_out = true;
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + KILL_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = killpg(group, Signal::SIGKILL);
            break child.wait().ok();
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // Children left behind in the group would keep the pipe open (and run on): end them.
    let _ = killpg(group, Signal::SIGKILL);
    let duration = start.elapsed();
    let _ = done.recv_timeout(Duration::from_secs(2));
    let captured = std::mem::take(
        &mut *captured
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let exit_code = status.and_then(|status| status.code());
    let signalled = status.and_then(|status| status.signal());
    let mut output = captured.render();
    if let (Some(signal), false) = (signalled, timed_out) {
        output.push_str(&format!(
            "\n[hone: the command was killed by signal {signal}]\n"
        ));
    }
    if timed_out {
        output.push_str(&format!(
            "\n[hone: timed out after {:.1}s; the process group was killed]\n",
            options.timeout.as_secs_f64()
        ));
    }
    let parsed = parse_test_output(&output);
    Ok(TestReport {
        command: command.to_string(),
        passed: !timed_out && exit_code == Some(0),
        exit_code: if timed_out { None } else { exit_code },
        timed_out,
        duration,
        output_truncated: captured.omitted > 0,
        output,
        framework: parsed.framework,
        tests_passed: parsed.passed,
        tests_failed: parsed.failed,
        failed_tests: parsed.failed_tests,
        confinement: mechanism,
    })
}

/// Output kept: the first `cap` bytes, the last `cap` bytes, and how many were dropped between.
#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: usize,
}

impl Captured {
    fn render(&self) -> String {
        let mut bytes = self.head.clone();
        if self.omitted > 0 {
            bytes.extend_from_slice(
                format!("\n[... {} bytes omitted ...]\n", self.omitted).as_bytes(),
            );
        }
        bytes.extend(self.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn capture(mut reader: std::io::PipeReader, cap: usize, shared: &Mutex<Captured>) {
    let mut buffer = [0u8; 8192];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let Ok(mut captured) = shared.lock() else {
            break;
        };
        let mut chunk = &buffer[..read];
        if captured.head.len() < cap {
            let take = (cap - captured.head.len()).min(chunk.len());
            captured.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        captured.tail.extend(chunk);
        while captured.tail.len() > cap {
            captured.tail.pop_front();
            captured.omitted += 1;
        }
    }
}

/// Variables passed through when scrubbing (exact names).
const KEEP: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "HOSTNAME",
    "CI",
    "COLUMNS",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "JAVA_HOME",
    "GOROOT",
    "GOPATH",
    "GOCACHE",
    "GOMODCACHE",
    "GOFLAGS",
    "GOPROXY",
    "GOTOOLCHAIN",
    "GO111MODULE",
    "CGO_ENABLED",
    "CC",
    "CXX",
    "AR",
    "LD_LIBRARY_PATH",
    "PKG_CONFIG_PATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "NODE_PATH",
    "NODE_OPTIONS",
    "NVM_DIR",
    "MAKEFLAGS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
];
/// Prefixes passed through when scrubbing (toolchains).
const KEEP_PREFIXES: &[&str] = &[
    "LC_",
    "CARGO_",
    "RUSTUP_",
    "RUST_",
    "XDG_",
    "PYTHON",
    "PIP_",
    "UV_",
    "NPM_CONFIG_",
    "JEST_",
];
/// Name fragments that mark a secret even under a kept prefix.
const SECRET_MARKERS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "PRIVATE",
    "CREDENTIAL",
    "AUTH",
    "SESSION",
    "COOKIE",
];

/// The environment to give a command: toolchain and locale variables (PATH, HOME, CARGO_*,
/// RUSTUP_*, GO*, PYTHON*, ...) minus anything that looks like a secret (TOKEN, SECRET, PASSWORD,
/// API_KEY, CREDENTIAL, ...). Git hook variables (`GIT_DIR`, `GIT_INDEX_FILE`, ...) are dropped:
/// they would point the tests' own git calls at the user's repository.
pub fn scrub_environment() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| keep_variable(name))
        .collect()
}

pub(crate) fn keep_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if SECRET_MARKERS.iter().any(|marker| upper.contains(marker)) {
        return false;
    }
    KEEP.contains(&name) || KEEP_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn secrets_and_git_variables_are_dropped() {
        assert!(keep_variable("PATH"));
        assert!(keep_variable("CARGO_HOME"));
        assert!(!keep_variable("CARGO_REGISTRY_TOKEN"));
        assert!(!keep_variable("OPENAI_API_KEY"));
        assert!(!keep_variable("GIT_INDEX_FILE"));
        assert!(!keep_variable("AWS_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = RunOptions::new(dir.path());
        options.output_cap = 100;
        let report = run_command("seq 1 10000; echo done >&2; exit 3", &options).unwrap();
        assert!(!report.passed);
        assert_eq!(report.exit_code, Some(3));
        assert!(report.output_truncated);
        assert!(report.output.starts_with("1\n2\n"));
        assert!(report.output.contains("bytes omitted"));
        assert!(
            report.output.trim_end().ends_with("done"),
            "{}",
            report.output
        );
    }

    #[test]
    fn timeout_kills_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-alive");
        let mut options = RunOptions::new(dir.path());
        options.timeout = Duration::from_millis(300);
        let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let start = Instant::now();
        let report = run_command(&command, &options).unwrap();
        assert!(report.timed_out);
        assert!(!report.passed);
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild survived the timeout");
    }

    #[test]
    fn output_survives_a_process_that_escaped_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let options = RunOptions::new(dir.path());
        let start = Instant::now();
        let report = run_command("setsid sleep 4 & echo kept; exit 0", &options).unwrap();
        assert!(report.passed);
        assert!(report.output.contains("kept"), "{}", report.output);
        assert!(start.elapsed() < Duration::from_millis(3500));
    }
}
