//! Measures hone-tools on a generated 10,000-file repository: context ranking time, sandbox
//! materialisation time (working tree and index; without and with the sandbox's `.git`) and
//! test-runner overhead (plain and confined).
//! Run: `cargo run --release -p hone-tools --example measure [FILES]`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use hone_tools::{ContextQuery, Repository, RunOptions, Sandbox, SandboxOptions, TreeSource};

fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let start = Instant::now();
    generate(root, count);
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .status()
            .unwrap();
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=m",
        "-c",
        "user.email=m@x",
        "commit",
        "-q",
        "-m",
        "generated",
    ]);
    let bytes: u64 = walk_size(root);
    println!(
        "generated {count} files ({:.1} MB) in {:.1}s",
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    let repo = Repository::discover(root).unwrap();

    let query = ContextQuery {
        task: "fix the overflow in parse_record_header when the checksum is negative".into(),
        failure_output: Some("thread 'main' panicked at src/module_42/file_4242.rs:17:9:\nattempt to add with overflow\n".into()),
        top: 10,
        ..Default::default()
    };
    let mut times = Vec::new();
    let cpu = cpu_ms();
    for _ in 0..5 {
        let start = Instant::now();
        let ranking = hone_tools::select_context(&repo, &query).unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(ranking.files_considered >= count);
    }
    report("context ranking", &times);
    println!(
        "  CPU time per ranking (all threads): {:.0} ms",
        (cpu_ms() - cpu) / 5.0
    );
    let mut list_times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let files = repo.list_files().unwrap();
        list_times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(files.len() >= count);
    }
    report(
        "  of which listing files (git2 index + status)",
        &list_times,
    );
    let documents: Vec<(String, String)> = repo
        .list_files()
        .unwrap()
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(root.join(&file.path)).unwrap();
            (file.path, text)
        })
        .collect();
    let mut rank_times = Vec::new();
    let cpu = cpu_ms();
    for _ in 0..5 {
        let start = Instant::now();
        let ranking = hone_tools::context::rank_documents(&documents, &query);
        rank_times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(!ranking.files.is_empty());
    }
    report("  of which BM25 ranking in memory", &rank_times);
    println!(
        "  CPU time per in-memory ranking: {:.0} ms",
        (cpu_ms() - cpu) / 5.0
    );

    // `without .git`: the files and links only (what sandboxes held before they had a `.git`).
    // Interleaved, ten of each: on a shared machine the minimum is the number to compare.
    let bare = SandboxOptions {
        git: false,
        ..SandboxOptions::default()
    };
    let full = SandboxOptions::default();
    for source in [TreeSource::Index, TreeSource::WorkTree] {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..10 {
            for (slot, options) in [&bare, &full].into_iter().enumerate() {
                let start = Instant::now();
                let sandbox = Sandbox::create(&repo, &source, options).unwrap();
                times[slot].push(start.elapsed().as_secs_f64() * 1000.0);
                assert!(sandbox.file_count() >= count);
            }
        }
        report(&format!("sandbox {source:?} (without .git)"), &times[0]);
        report(&format!("sandbox {source:?} (with .git)"), &times[1]);
    }

    let options = RunOptions::new(root);
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let test = hone_tools::run_command("true", &options).unwrap();
        assert!(test.passed);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report("runner: `true` via hone", &times);
    let sandbox = Sandbox::create(&repo, &TreeSource::Index, &SandboxOptions::default()).unwrap();
    let confined = sandbox.run_options();
    let mut times = Vec::new();
    let mut mechanism = None;
    for _ in 0..10 {
        let start = Instant::now();
        let test = hone_tools::run_command("true", &confined).unwrap();
        assert!(test.passed, "{}", test.output);
        mechanism = Some(test.confinement);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report(&format!("runner: `true` confined ({mechanism:?})"), &times);
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        Command::new("sh").args(["-c", "true"]).status().unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    report("runner: `sh -c true` bare", &times);
}

/// CPU time (user + system, all threads) of this process so far, in ms, from /proc/self/stat:
/// on a shared, overloaded machine, CPU time says more about the cost than wall time.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks * 10.0
}

fn report(name: &str, times: &[f64]) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{name}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} runs)",
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len()
    );
}

/// Rust-like source files of a few KB each, 100 per folder, with varied identifiers.
fn generate(root: &Path, count: usize) {
    let words = [
        "parse", "record", "header", "buffer", "index", "render", "config", "token", "stream",
        "cache", "route", "store", "query", "merge", "limit", "batch",
    ];
    for i in 0..count {
        let dir = root.join(format!("src/module_{}", i / 100));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = format!("//! Module {i}.\n\nuse std::collections::HashMap;\n\n");
        for f in 0..6 {
            let a = words[(i * 7 + f) % words.len()];
            let b = words[(i * 13 + f * 3) % words.len()];
            text.push_str(&format!(
                "pub fn {a}_{b}_{f}(input: &[u8], table: &mut HashMap<u32, u64>) -> Option<u64> {{\n    let mut total = 0u64;\n    for (k, byte) in input.iter().enumerate() {{\n        total = total.wrapping_add(u64::from(*byte) * {i});\n        table.insert(k as u32, total);\n    }}\n    if total > {f} {{ Some(total) }} else {{ None }}\n}}\n\n"
            ));
        }
        std::fs::write(dir.join(format!("file_{i}.rs")), text).unwrap();
    }
}

fn walk_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name() == ".git" {
            continue;
        }
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            walk_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
