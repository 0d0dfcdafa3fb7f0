//! End-to-end tests of `hone generate`, `hone engine sample` and `hone bench` on the tiny parity
//! checkpoints (random weights, char-level tokenizer: the text is gibberish; the tests check the
//! mechanics, flags, JSON shapes and exit codes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::{parity, parity_v2, stdout_json};
use serde_json::{json, Value};

fn hone(args: &[&str]) -> Output {
    common::hone()
        .args(args)
        .env_remove("HONE_MODEL")
        .output()
        .unwrap()
}

#[test]
fn generate_prints_text_and_json_stats() {
    let model = parity("llada-tiny");
    let model = model.to_str().unwrap();
    let plain = hone(&[
        "generate",
        "--model",
        model,
        "--device",
        "cpu",
        "--gen-length",
        "16",
        "--block-length",
        "8",
        "def add(a, b):",
    ]);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );

    let json = stdout_json(&hone(&[
        "generate",
        "--model",
        model,
        "--device",
        "cpu",
        "--gen-length",
        "16",
        "--block-length",
        "8",
        "--cache",
        "dual",
        "--tokens-per-step",
        "2",
        "--no-early-stop",
        "--json",
        "def add(a, b):",
    ]));
    let usage = &json["usage"];
    assert_eq!(usage["prompt_tokens"], 14);
    assert_eq!(usage["generated_tokens"], 16);
    assert_eq!(usage["forward_passes"], 8, "16 tokens at 2 per step");
    assert_eq!(usage["tokens_per_forward"], 2.0);
    assert!(usage["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(usage["tokens_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(json["candidates"].as_array().unwrap().len(), 1);
}

#[test]
fn generate_infills_between_prefix_and_suffix_at_several_lengths() {
    let dir = tempfile::TempDir::new().unwrap();
    let suffix = dir.path().join("suffix.txt");
    std::fs::write(&suffix, "\n    return c\n").unwrap();
    let model = parity("dream-tiny");
    let json = stdout_json(&hone(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
        "--block-length",
        "4",
        "--infill",
        "--suffix",
        suffix.to_str().unwrap(),
        "--hole-lengths",
        "4,8",
        "--candidates",
        "2",
        "--json",
        "def f(a, b):\n    c = ",
    ]));
    let candidates = json["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 4);
    for candidate in candidates {
        let filled = candidate["filled"].as_str().unwrap();
        assert!(filled.starts_with("def f(a, b):\n    c = "), "{filled}");
        assert!(filled.ends_with("\n    return c\n"), "{filled}");
    }
}

/// A length that is not a whole number of blocks ends with a short block, the rule `hone serve`
/// applies to `max_tokens`: 16 tokens with the default block of 32, 30 tokens in blocks of 8.
#[test]
fn generate_accepts_a_short_last_block_like_serve() {
    let model = parity("llada-tiny");
    let model = model.to_str().unwrap();
    for (gen_length, extra) in [("16", vec![]), ("30", vec!["--block-length", "8"])] {
        let mut args = vec![
            "generate",
            "--model",
            model,
            "--device",
            "cpu",
            "--gen-length",
            gen_length,
            "--json",
        ];
        args.extend(extra);
        args.push("def add(a, b):");
        let json = stdout_json(&hone(&args));
        let length: usize = gen_length.parse().unwrap();
        assert_eq!(
            json["candidates"][0]["hole_lengths"],
            serde_json::json!([length]),
            "{json}"
        );
    }
}

#[test]
fn generate_refuses_bad_settings_with_exit_2() {
    let model = parity("llada-tiny");
    let model = model.to_str().unwrap();
    for (flags, needle) in [
        (vec!["--threshold", "1.5"], "(0, 1]"),
        (vec!["--candidates", "0"], "zero candidates"),
        (
            vec![
                "--sampler",
                "llada",
                "--gen-length",
                "32",
                "--block-length",
                "8",
                "--steps",
                "6",
            ],
            "split evenly",
        ),
        (
            vec!["--gen-length", "1024", "--block-length", "32"],
            "context",
        ),
    ] {
        let mut args = vec!["generate", "--model", model, "--device", "cpu"];
        args.extend(flags);
        args.push("hello");
        let output = hone(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn engine_sample_checks_parity_cases_and_fails_on_mismatch() {
    for case in ["llada-tiny", "dream-tied"] {
        let dir = parity(case);
        let output = hone(&[
            "engine",
            "sample",
            "--model",
            dir.to_str().unwrap(),
            "--cases",
            dir.join("generate.json").to_str().unwrap(),
            "--json",
        ]);
        let json = stdout_json(&output);
        assert_eq!(json["all_match"], true, "{case}: {json}");
    }

    // Change one expected id: exit 1 and the mismatch is named.
    let dir = parity("llada-tiny");
    let mut cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("generate.json")).unwrap()).unwrap();
    let first = &mut cases["cases"][0]["expected_ids"][0];
    let last = first.as_array().unwrap().len() - 1;
    first[last] = Value::from((first[last].as_u64().unwrap() + 1) % 200);
    let temp = tempfile::TempDir::new().unwrap();
    let path = temp.path().join("cases.json");
    std::fs::write(&path, serde_json::to_string(&cases).unwrap()).unwrap();
    let output = hone(&[
        "engine",
        "sample",
        "--model",
        dir.to_str().unwrap(),
        "--cases",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("MISMATCH"));
}

/// A parity case's settings go through the same resolution as `hone generate`'s flags: a bad name
/// or an unsupported combination is refused with generate's error line, and exit 2.
#[test]
fn engine_sample_refuses_a_bad_case_with_generates_error() {
    let dir = parity("llada-tiny");
    let model = dir.to_str().unwrap();
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("generate.json")).unwrap()).unwrap();
    let temp = tempfile::TempDir::new().unwrap();
    for (field, value, generate_flags) in [
        ("sampler", json!("nope"), vec!["--sampler", "nope"]),
        ("remasking", json!("nope"), vec!["--remasking", "nope"]),
        (
            "sampler",
            json!("dream"),
            vec!["--sampler", "dream", "--cfg-scale", "1"],
        ),
    ] {
        let mut case = cases["cases"][3].clone();
        assert_eq!(case["cfg_scale"], 1.0, "the case with guidance");
        case[field] = value;
        if field == "sampler" && case[field] == "dream" {
            case["max_new_tokens"] = case["gen_length"].clone();
        }
        let path = temp.path().join("cases.json");
        std::fs::write(&path, json!({ "cases": [case] }).to_string()).unwrap();
        let sample = hone(&[
            "engine",
            "sample",
            "--model",
            model,
            "--cases",
            path.to_str().unwrap(),
        ]);
        let mut args = vec!["generate", "--model", model, "--device", "cpu"];
        args.extend(&generate_flags);
        args.push("hi");
        let generate = hone(&args);
        assert_eq!(sample.status.code(), Some(2), "{field}");
        assert_eq!(generate.status.code(), Some(2), "{generate_flags:?}");
        assert_eq!(error_line(&sample), error_line(&generate), "{field}");
    }
}

#[test]
fn bench_runs_a_chosen_subset_on_a_random_model() {
    let json = stdout_json(&hone(&[
        "bench",
        "--random-config",
        "llada-tiny",
        "--device",
        "cpu",
        "--prompt-lengths",
        "8",
        "--gen-lengths",
        "16",
        "--block-length",
        "8",
        "--samplers",
        "fast,llada",
        "--caches",
        "none,prefix,dual",
        "--tokens-per-step",
        "2",
        "--thresholds",
        "none",
        "--batches",
        "1,2",
        "--warmup",
        "0",
        "--repetitions",
        "1",
        "--json",
    ]));
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "(3 caches + llada) x 2 batch sizes");
    for result in results {
        assert!(result["step_ms"].as_f64().unwrap() > 0.0);
        if result["case"]["sampler"] == "fast" {
            assert_eq!(result["forwards"], 8);
            assert_eq!(
                result["tokens_per_forward"].as_f64().unwrap() * 8.0,
                result["tokens"].as_f64().unwrap()
            );
        }
    }
    assert_eq!(json["cache_speedups"].as_array().unwrap().len(), 4);
    assert!(
        results.iter().all(|r| r.get("breakdown").is_none()),
        "no breakdown unless asked for"
    );

    let output = hone(&["bench", "--device", "cpu"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "either --model or --random-config is required"
    );
}

/// The first `error:` line on stderr.
fn error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"))
        .to_owned()
}

/// `hone bench` builds its ModelSpec and resolves its sampler and cache names the way `hone
/// generate` does, and checks its thresholds with the same flag parser: a bad value gets the same
/// error and exit 2 (bench refuses it before building any model).
#[test]
fn bench_refuses_a_bad_value_with_generates_error() {
    let model = parity("llada-tiny");
    let model = model.to_str().unwrap();
    for (bench_flag, generate_flag, value) in [
        ("--samplers", "--sampler", "nope"),
        ("--caches", "--cache", "nope"),
        ("--dtype", "--dtype", "f64"),
        ("--arch", "--arch", "nope"),
        ("--thresholds", "--threshold", "1.5"),
    ] {
        let bench = hone(&[
            "bench",
            "--random-config",
            "llada-tiny",
            "--device",
            "cpu",
            bench_flag,
            value,
        ]);
        let generate = hone(&[
            "generate",
            "--model",
            model,
            "--device",
            "cpu",
            generate_flag,
            value,
            "hi",
        ]);
        assert_eq!(bench.status.code(), Some(2), "{bench_flag} {value}");
        assert_eq!(generate.status.code(), Some(2), "{generate_flag} {value}");
        // The same message; clap names its own flag in front of it.
        let (bench, generate) = (error_line(&bench), error_line(&generate));
        let reason = |line: &str, flag: &str| {
            line.split_once(&format!("for '{flag}"))
                .and_then(|(_, rest)| rest.split_once(": "))
                .map_or_else(|| line.to_owned(), |(_, reason)| reason.to_owned())
        };
        assert_eq!(
            reason(&bench, bench_flag),
            reason(&generate, generate_flag),
            "{bench_flag} {value}"
        );
    }
}

#[test]
fn bench_breakdown_reports_the_parts_of_a_step() {
    let args = [
        "bench",
        "--random-config",
        "llada-tiny",
        "--device",
        "cpu",
        "--prompt-lengths",
        "8",
        "--gen-lengths",
        "16",
        "--block-length",
        "8",
        "--samplers",
        "fast",
        "--caches",
        "dual",
        "--tokens-per-step",
        "2",
        "--thresholds",
        "none",
        "--warmup",
        "0",
        "--repetitions",
        "1",
        "--breakdown",
    ];
    let json = stdout_json(&hone(&[&args[..], &["--json"]].concat()));
    let breakdown = &json["results"][0]["breakdown"];
    for part in ["layers", "head", "scoring", "host"] {
        assert!(
            breakdown[format!("{part}_ms")].as_f64().unwrap() >= 0.0,
            "{part}"
        );
        assert!(
            breakdown[format!("{part}_share")].as_f64().is_some(),
            "{part}"
        );
    }
    assert!(breakdown["layers_ms"].as_f64().unwrap() > 0.0);
    let table = hone(&args);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("per step: layers"), "{text}");
}

/// `hone engine sample` runs every case of the second parity set (`mdm`, `llada2` with its
/// `generate` output, `llada21`, LLaDA-MoE's `llada`) and exits 0.
#[test]
fn engine_sample_passes_every_parity_v2_case() {
    for case in ["odc-tiny", "llada2-tiny", "llada21-tiny", "llada-moe-tiny"] {
        let dir = parity_v2(case);
        let output = hone(&[
            "engine",
            "sample",
            "--model",
            dir.to_str().unwrap(),
            "--cases",
            dir.join("generate.json").to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(output.status.code(), Some(0), "{case}");
        let json = stdout_json(&output);
        assert_eq!(json["all_match"], true, "{case}: {json}");
    }
}

/// `hone generate` on the new families picks each family's own sampler and runs end to end
/// (gibberish text: the weights are random).
#[test]
fn generate_runs_the_new_families_with_their_own_samplers() {
    for (case, sampler) in [
        ("odc-tiny", "mdm"),
        ("llada2-tiny", "llada2"),
        ("llada21-tiny", "llada21"),
    ] {
        let dir = parity_v2(case);
        let output = hone(&[
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--gen-length",
            "16",
            "--json",
            "def add(a, b):",
        ]);
        assert_eq!(output.status.code(), Some(0), "{case}");
        let json = stdout_json(&output);
        assert_eq!(json["settings"]["sampler"], sampler, "{case}: {json}");
        let ids = json["candidates"][0]["ids"].as_array().unwrap();
        assert!(!ids.is_empty() && ids.len() <= 16, "{case}: {json}");
    }
    // Open-dCoder infills between a prefix and a suffix; LLaDA2 refuses with the reason (exit 2).
    let temp = tempfile::TempDir::new().unwrap();
    let suffix = temp.path().join("suffix.txt");
    std::fs::write(&suffix, "\n    return c\n").unwrap();
    let infill = |case: &str| {
        hone(&[
            "generate",
            "--model",
            parity_v2(case).to_str().unwrap(),
            "--infill",
            "--suffix",
            suffix.to_str().unwrap(),
            "--gen-length",
            "8",
            "def add(a, b):\n    c = ",
        ])
    };
    assert_eq!(infill("odc-tiny").status.code(), Some(0));
    let refused = infill("llada2-tiny");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cannot infill before a suffix"), "{stderr}");
}
