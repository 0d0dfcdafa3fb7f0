//! The command-line interface as a user meets it: every numeric flag refuses zero, negative and huge
//! values with exit 2 and one `error:` line before any work starts, and the help of `hone` and of
//! each command is snapshot-tested (insta), so a change to the interface is a deliberate one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

fn hone(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    common::hone()
        .args(args)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap()
}

/// Each command with the arguments it needs to parse, and its numeric flags. `zero_ok` flags
/// accept 0 (a warm-up count), so only negative and huge values are refused for them.
const NUMERIC_FLAGS: &[(&[&str], &[&str], &[&str])] = &[
    (
        &["run", "a task"],
        &[
            "--candidates",
            "--max-iterations",
            "--jobs",
            "--test-timeout",
            "--budget",
            "--steps",
            "--block-length",
            "--max-tokens",
            "--top-p",
            "--threshold",
        ],
        &["--temperature"],
    ),
    (&["apply", "fix.diff"], &["--timeout"], &[]),
    (&["batch", "tasks.jsonl"], &["--jobs", "--timeout"], &[]),
    (
        &["refactor", "do it", "-g", "*.py"],
        &["--jobs", "--max-iterations", "--budget"],
        &[],
    ),
    (&["context", "a task"], &["--top"], &[]),
    (
        &["bench", "--random-config", "llada-tiny"],
        &[
            "--block-length",
            "--repetitions",
            "--prompt-lengths",
            "--gen-lengths",
            "--batches",
            "--tokens-per-step",
        ],
        &["--warmup"],
    ),
    (
        &["serve", "--model", "m"],
        &[
            "--max-batch",
            "--max-queue",
            "--max-body-bytes",
            "--shutdown-timeout",
            "--header-timeout",
        ],
        &["--batch-window-ms"],
    ),
    (
        &[
            "engine",
            "forward",
            "--model",
            "m",
            "--input",
            "x.safetensors",
        ],
        &["--block-causal"],
        &[],
    ),
];

fn assert_refused(command: &[&str], flag: &str, value: &str) {
    let mut args = command.to_vec();
    let pair = format!("{flag}={value}");
    args.push(&pair);
    let output = hone(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "hone {args:?} should exit 2; stderr: {stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "hone {args:?}: {stderr}");
    assert!(
        errors[0].contains(flag),
        "the error names the flag: {}",
        errors[0]
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout for a refused flag: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn numeric_flags_refuse_zero_negative_and_huge_values() {
    for (command, flags, zero_ok) in NUMERIC_FLAGS {
        for flag in flags.iter() {
            for value in ["0", "-1", "100000000000000000000000"] {
                assert_refused(command, flag, value);
            }
        }
        for flag in zero_ok.iter() {
            for value in ["-1", "100000000000000000000000"] {
                assert_refused(command, flag, value);
            }
        }
    }
}

/// `hone generate`'s numeric flags, checked against a tiny fixture checkpoint so the refusal is
/// about the flag, not the model: (flag, the setting's name in the message, extra arguments, values
/// refused).
const GENERATE_FLAGS: &[(&str, &str, &[&str], &[&str])] = &[
    ("--gen-length", "gen_length", &[], &["0", "-1", HUGE]),
    ("--steps", "steps", &[], &["0", "-1", HUGE]),
    ("--block-length", "block_length", &[], &["0", "-1", HUGE]),
    ("-n", "candidates", &[], &["0", "-1", HUGE]),
    (
        "--hole-lengths",
        "hole-lengths",
        &["--infill"],
        &["0", "-1", HUGE],
    ),
    (
        "--tokens-per-step",
        "tokens_per_step",
        &[],
        &["0", "-1", HUGE],
    ),
    ("--top-k", "top_k", &[], &["0", "-1", HUGE]),
    ("--top-p", "top_p", &[], &["0", "-1", HUGE]),
    ("--threshold", "threshold", &[], &["0", "-1", HUGE]),
    ("--temperature", "temperature", &[], &["-1", HUGE]),
    (
        "--steps-per-block",
        "steps_per_block",
        &[],
        &["0", "-1", HUGE],
    ),
    ("--minimal-topk", "minimal_topk", &[], &["0", "-1", HUGE]),
    ("--max-post-steps", "max_post_steps", &[], &["-1", HUGE]),
    (
        "--num-to-transfer",
        "num_to_transfer",
        &[],
        &["0", "-1", HUGE],
    ),
    (
        "--editing-threshold",
        "editing_threshold",
        &[],
        &["0", "-1", HUGE],
    ),
    ("--cfg-scale", "cfg_scale", &[], &["-1"]),
    ("--seed", "seed", &[], &["-1", HUGE]),
];

const HUGE: &str = "100000000000000000000000";

#[test]
fn generate_numeric_flags_refuse_zero_negative_and_huge_values() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/parity/llada-tiny"
    );
    for (flag, setting, extra, values) in GENERATE_FLAGS {
        for value in values.iter() {
            let mut args = vec!["generate", "--model", model, "--device", "cpu"];
            args.extend(extra.iter());
            let pair = format!("{flag}={value}");
            args.extend([pair.as_str(), "def add(a, b):"]);
            let output = hone(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "hone {args:?}: {stderr}");
            let errors: Vec<&str> = stderr
                .lines()
                .filter(|line| line.starts_with("error:"))
                .collect();
            assert_eq!(errors.len(), 1, "hone {args:?}: {stderr}");
            assert!(
                errors[0].contains(flag) || errors[0].contains(setting),
                "the error names the flag or its setting: {}",
                errors[0]
            );
            assert!(output.stdout.is_empty(), "hone {args:?}: nothing on stdout");
        }
    }
}

#[test]
fn durations_read_the_same_way_everywhere() {
    // A unit the parser does not know is refused by every duration flag with the same words.
    for (command, flag) in [
        (&["run", "a task"][..], "--budget"),
        (&["apply", "fix.diff"][..], "--timeout"),
        (&["batch", "tasks.jsonl"][..], "--timeout"),
        (&["refactor", "x", "-g", "*.py"][..], "--budget"),
        (&["serve", "--model", "m"][..], "--shutdown-timeout"),
        (&["serve", "--model", "m"][..], "--header-timeout"),
    ] {
        let mut args = command.to_vec();
        args.extend([flag, "5 fortnights"]);
        let output = hone(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("unknown duration unit"),
            "{args:?}: {stderr}"
        );
    }
}

fn help(args: &[&str]) -> String {
    let output = hone(args);
    assert_eq!(output.status.code(), Some(0), "hone {args:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_of_hone_and_every_command() {
    insta::assert_snapshot!("hone", help(&["--help"]));
    for command in [
        &["run"][..],
        &["runs"],
        &["runs", "show"],
        &["generate"],
        &["bench"],
        &["engine", "forward"],
        &["engine", "info"],
        &["engine", "sample"],
        &["context"],
        &["apply"],
        &["serve"],
        &["hook", "install"],
        &["hook", "uninstall"],
        &["batch"],
        &["refactor"],
        &["sandbox", "check"],
        &["trust"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let text = help(&args);
        insta::assert_snapshot!(command.join("-"), text);
        // Every flag has a description: on its own line after two spaces, or on the next line,
        // indented further.
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if indent > 6 || !trimmed.starts_with('-') {
                continue;
            }
            let same_line = trimmed.contains("  ");
            let next_line = lines.get(index + 1).is_some_and(|next| {
                let next_trimmed = next.trim_start();
                !next_trimmed.is_empty() && next.len() - next_trimmed.len() > indent
            });
            assert!(
                same_line || next_line,
                "`hone {}` has a flag without help: {line}",
                command.join(" ")
            );
        }
    }
}
