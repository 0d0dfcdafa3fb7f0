//! `hone context --json` without the rest of hone, for scripts/context-bench.py (builds in seconds
//! where the `hone` binary takes minutes). Same output shape: the ranking as JSON.
//! Run: `cargo build --release -p hone-tools --example context_bench`, then
//! `context_bench context --json --top 10 "task"` inside a repository.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use hone_tools::{ContextQuery, Repository};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut top = 10;
    let mut task = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "context" | "--json" => {}
            "--top" => {
                top = iter
                    .next()
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(10)
            }
            other => task = Some(other.to_string()),
        }
    }
    let Some(task) = task else {
        eprintln!("usage: context_bench context --json [--top N] TASK");
        return ExitCode::from(2);
    };
    let result = std::env::current_dir()
        .map_err(|error| error.to_string())
        .and_then(|cwd| Repository::discover(&cwd).map_err(|error| error.to_string()))
        .and_then(|repo| {
            let query = ContextQuery {
                task,
                top,
                ..Default::default()
            };
            hone_tools::select_context(&repo, &query).map_err(|error| error.to_string())
        })
        .and_then(|ranking| serde_json::to_string(&ranking).map_err(|error| error.to_string()));
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
