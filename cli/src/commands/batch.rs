//! `hone batch TASKS.jsonl`: run many tasks (patch tasks verified with the tests, or agent tasks),
//! N at a time, each in its own sandbox, writing one result line per task the moment it finishes.
//! `--resume` continues an interrupted run without running a finished id twice; `--predictions`
//! also writes SWE-bench style predictions. Parsing and running tasks, the worker pool and the
//! results file live in `hone_agent::batch`; this module parses flags, adds hints and prints.

use crate::flags::{self, caps};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use hone_agent::batch::{
    parse_tasks, run_parallel, run_patch_task, AgentTasks, BatchTask, ResultsFile, Status,
    TaskResult,
};

#[derive(Debug, clap::Args)]
pub struct BatchArgs {
    /// The tasks, one JSON object per line:
    /// {"id", "task", "repo"?, "test"?, "files"?, "patch"?}. Relative `repo` paths are relative to
    /// this file's folder; without `repo` a task runs on the current repository.
    pub tasks: PathBuf,
    /// Tasks run at once (each in its own sandbox).
    #[arg(long, short = 'j', default_value_t = 1, value_parser = flags::count::<{ caps::JOBS }>)]
    pub jobs: usize,
    /// Results file, one JSON line per task (default: TASKS with `.results.jsonl`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an earlier run: ids already in the results file are skipped.
    #[arg(long)]
    pub resume: bool,
    /// Also write SWE-bench predictions (instance_id, model_name_or_path, model_patch) here.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Name recorded as `model_name_or_path` in the predictions.
    #[arg(long, default_value = "hone")]
    pub model_name: String,
    /// Per-task limit for the tests, e.g. 90s or 10m (plain numbers are seconds).
    #[arg(long, default_value = "10m", value_parser = flags::duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub model: crate::hooks::model::ModelArgs,
}

/// `tasks.jsonl` -> `tasks.results.jsonl`, beside it.
fn default_out(tasks: &Path) -> PathBuf {
    let stem = tasks.file_stem().map_or_else(
        || "tasks".into(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    tasks.with_file_name(format!("{stem}.results.jsonl"))
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.tasks).map_err(|error| {
        crate::exit::Hinted::new(
            anyhow::anyhow!("could not read {}: {error}", args.tasks.display()),
            ["pass a JSON Lines file of tasks"],
        )
    })?;
    let cwd = std::env::current_dir().context("could not read the current directory")?;
    let base = args
        .tasks
        .parent()
        .map_or_else(|| cwd.clone(), |parent| cwd.join(parent));
    let tasks = parse_tasks(&text, &base, &cwd)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.tasks));
    let (mut results_file, resumed) = ResultsFile::open(&out, args.resume)?;
    if resumed.dropped_bytes > 0 {
        say(&format!(
            "dropped an incomplete last line ({} bytes) left by an interrupted run; that task runs again",
            resumed.dropped_bytes
        ));
    }
    let todo: Vec<BatchTask> = tasks
        .iter()
        .filter(|task| !resumed.done.contains(&task.id))
        .cloned()
        .collect();
    if args.resume {
        say(&format!(
            "{} of {} tasks already done, {} to run",
            tasks.len() - todo.len(),
            tasks.len(),
            todo.len()
        ));
    }

    let timeout = args.timeout;
    let config =
        crate::config::load_noting_untrusted(crate::hooks::git::toplevel(&cwd).ok().as_deref())?;
    // The model is opened only when some task has no patch.
    let backend = if todo.iter().any(|task| task.patch.is_none()) {
        Some(crate::hooks::model::open(&args.model, &config)?)
    } else {
        None
    };
    let sandbox_for: hone_agent::batch::SandboxFor =
        std::sync::Arc::new(crate::confinement::task_sandbox);
    let agent = AgentTasks::new(
        backend.as_ref().map(|backend| backend.model.clone()),
        config.run_defaults(),
        sandbox_for.clone(),
    );
    let progress = progress_bar(todo.len() as u64);
    let started = Instant::now();
    let mut finished: Vec<TaskResult> = Vec::new();
    let interrupted = crate::interrupt::interrupt_flag(
        "interrupted: finishing the running tasks (Ctrl-C again to quit now; --resume continues)",
    );
    run_parallel(
        todo,
        args.jobs,
        interrupted,
        |task: BatchTask| {
            let agent = agent.clone();
            let sandbox_for = sandbox_for.clone();
            async move {
                match task.patch.clone() {
                    // Sandbox creation and the tests block: off the async workers.
                    Some(patch) => {
                        let id = task.id.clone();
                        tokio::task::spawn_blocking(move || {
                            run_patch_task(&task, &patch, timeout, &sandbox_for)
                        })
                        .await
                        .unwrap_or_else(|error| hone_agent::batch::error_result(&id, 0.0, &error))
                    }
                    None => agent.run(&task, timeout).await,
                }
            }
        },
        |result: TaskResult| -> anyhow::Result<()> {
            results_file.append(&result)?;
            progress.set_message(format!("{} {}", result.id, status_word(result.status)));
            progress.inc(1);
            finished.push(result);
            Ok(())
        },
    )?;
    progress.finish_and_clear();
    if let Some(backend) = &backend {
        backend.finish()?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut all: HashMap<String, TaskResult> = resumed
        .results
        .into_iter()
        .map(|result| (result.id.clone(), result))
        .collect();
    let ran = finished.len();
    for result in finished {
        all.insert(result.id.clone(), result);
    }
    let ordered: Vec<&TaskResult> = tasks.iter().filter_map(|task| all.get(&task.id)).collect();
    if let Some(path) = &args.predictions {
        write_predictions(path, &ordered, &args.model_name)?;
    }
    let count = |status: Status| {
        ordered
            .iter()
            .filter(|result| result.status == status)
            .count()
    };
    let (verified, applied, failed, errors) = (
        count(Status::Verified),
        count(Status::Applied),
        count(Status::Failed),
        count(Status::Error),
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{} tasks: {verified} verified, {applied} applied (no tests), {failed} failed, {errors} errors; \
         ran {ran} in {elapsed:.1} s ({:.2} tasks/s); results in {}",
        ordered.len(),
        if elapsed > 0.0 { ran as f64 / elapsed } else { 0.0 },
        out.display()
    )?;
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        say(&format!(
            "stopped early: {} of {} tasks have results; rerun with --resume to finish",
            ordered.len(),
            tasks.len()
        ));
        return Ok(ExitCode::from(130));
    }
    Ok(if failed + errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Verified => "verified",
        Status::Applied => "applied",
        Status::Failed => "failed",
        Status::Error => "error",
    }
}

fn say(text: &str) {
    note!("hone: {text}");
}

fn progress_bar(length: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} tasks {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// SWE-bench predictions, one JSON line per task, written whole then renamed into place.
fn write_predictions(path: &Path, results: &[&TaskResult], model: &str) -> anyhow::Result<()> {
    let mut text = String::new();
    for result in results {
        let line = serde_json::json!({
            "instance_id": result.id,
            "model_name_or_path": model,
            "model_patch": result.diff,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("could not write in {}", dir.display()))?;
    file.write_all(text.as_bytes())?;
    file.persist(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}
