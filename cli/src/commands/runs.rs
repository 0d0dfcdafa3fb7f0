//! `hone runs [show ID]`: list the transcripts of earlier runs (newest first) or show one: its
//! summary, the final diff and the files recorded (prompts, raw answers, edits, diffs, test logs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use hone_agent::transcript::{list_runs, read_run, RunListing};

use crate::exit::Hinted;

/// Print a line on stdout; a closed pipe (`hone ... | head`) is not an error worth a panic.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// Show one run (an id, a unique prefix of one, or `last`).
    Show {
        /// A run id, a unique prefix of one, or `last`.
        id: String,
    },
}

fn runs_dir() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let repo = hone_tools::Repository::discover(&cwd).map_err(|error| {
        Hinted::new(
            error,
            ["run `hone runs` inside the repository whose runs you want"],
        )
    })?;
    Ok(repo.git().commondir().join("hone").join("runs"))
}

fn field<'a>(run: &'a RunListing, name: &str) -> Option<&'a serde_json::Value> {
    run.summary.as_ref().and_then(|summary| summary.get(name))
}

pub fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let dir = runs_dir()?;
    match args.command {
        None => {
            let runs = list_runs(&dir)?;
            if args.json {
                for run in &runs {
                    say!(
                        "{}",
                        serde_json::json!({"id": run.id, "task": run.task, "summary": run.summary})
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if runs.is_empty() {
                say!("no runs recorded in {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            say!(
                "{:<22} {:<10} {:>5} {:>8}  task",
                "id",
                "status",
                "iter",
                "seconds"
            );
            for run in &runs {
                let status = field(run, "status").and_then(|v| v.as_str()).unwrap_or(
                    if run.error.is_some() {
                        "error"
                    } else {
                        "unfinished"
                    },
                );
                let iterations = field(run, "iterations")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                let seconds = field(run, "seconds")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0);
                let task = run
                    .task
                    .as_deref()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("");
                let task: String = task.chars().take(60).collect();
                say!(
                    "{:<22} {status:<10} {iterations:>5} {seconds:>8.1}  {task}",
                    run.id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(RunsCommand::Show { id }) => {
            let run = find(&dir, &id)?;
            if args.json {
                say!(
                    "{}",
                    serde_json::json!({"id": run.id, "dir": run.dir, "task": run.task, "summary": run.summary})
                );
                return Ok(ExitCode::SUCCESS);
            }
            say!("run {}", run.id);
            say!("folder: {}", run.dir.display());
            if let Some(task) = &run.task {
                say!("task: {task}");
            }
            match &run.summary {
                Some(summary) => {
                    for key in [
                        "status",
                        "reason",
                        "iterations",
                        "candidates_generated",
                        "candidates_tested",
                        "seconds",
                        "model_seconds",
                        "test_seconds",
                        "prompt_tokens",
                        "completion_tokens",
                        "nfe",
                    ] {
                        if let Some(value) = summary
                            .get(key)
                            .filter(|value| !value.is_null() && value.as_str() != Some(""))
                        {
                            say!(
                                "{key}: {}",
                                value
                                    .as_str()
                                    .map_or_else(|| value.to_string(), str::to_owned)
                            );
                        }
                    }
                }
                None => match &run.error {
                    Some(error) => say!("status: error\nerror: {error}"),
                    None => {
                        say!("status: unfinished (no summary.json: the run was interrupted)")
                    }
                },
            }
            say!("files:");
            for file in recorded_files(&run.dir) {
                say!("  {file}");
            }
            if let Ok(diff) = std::fs::read_to_string(run.dir.join("final.diff")) {
                if !diff.is_empty() {
                    say!("diff:\n{diff}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn find(dir: &std::path::Path, id: &str) -> anyhow::Result<RunListing> {
    let runs = list_runs(dir)?;
    if id == "last" {
        return runs
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no runs recorded in {}", dir.display()));
    }
    let matches: Vec<&RunListing> = runs.iter().filter(|run| run.id.starts_with(id)).collect();
    match matches.as_slice() {
        [one] => Ok(read_run(&one.dir)),
        [] => Err(Hinted::new(
            anyhow::anyhow!("no run `{id}` in {}", dir.display()),
            ["list runs with `hone runs`"],
        )
        .into()),
        many => Err(Hinted::new(
            anyhow::anyhow!("`{id}` matches {} runs", many.len()),
            ["give more of the id (see `hone runs`)"],
        )
        .into()),
    }
}

fn recorded_files(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(relative) = path.strip_prefix(base) {
                out.push(relative.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}
