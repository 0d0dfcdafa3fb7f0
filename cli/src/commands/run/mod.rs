//! `hone run "task"`: the agent on this repository — plan, generate candidates, apply and test each in
//! a sandbox, iterate — then deliver the verified patch (apply to the tree and print the diff by
//! default; `--dry-run`, `--commit`, `--branch NAME`, `--patch FILE`). Progress goes to stderr, the
//! summary (or JSON Lines events with `--json`) to stdout. Exit 0: a verified patch; 1: no candidate
//! passed (the best attempt is printed, the tree untouched); 2: bad input or setup.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use hone_agent::events::Event;
use hone_agent::{GenerationMode, RunOutcome, RunRequest, Sampling};

use crate::backends::{self, BackendKind, ModelSettings};
use crate::config::Config;
use crate::exit::{Hinted, FAILURE};
use crate::flags::{self, caps};

mod display;

use display::Display;

/// Print a line on stdout; a closed pipe (`hone ... | head`) is not an error worth a panic.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// What to do, in plain words (e.g. "make the failing test pass").
    pub task: String,

    /// Test command (run with `sh -c` in the sandbox); detected from the project when absent.
    #[arg(long)]
    pub test: Option<String>,
    /// Limit for one test run, e.g. 90s or 5m (default 10m).
    #[arg(long, value_parser = flags::duration)]
    pub test_timeout: Option<Duration>,
    /// Candidates per iteration (default: 4 on the local engine, 1 over HTTP).
    #[arg(long, short = 'n', value_parser = flags::count::<{ caps::CANDIDATES }>)]
    pub candidates: Option<usize>,
    /// Iterations of generate → test → feedback (default 4).
    #[arg(long, value_parser = flags::count::<{ caps::ITERATIONS }>)]
    pub max_iterations: Option<usize>,
    /// Wall-clock budget for the whole run, e.g. 5m.
    #[arg(long, value_parser = flags::duration)]
    pub budget: Option<Duration>,
    /// Candidates tested at once (default: the number of cores).
    #[arg(long, short = 'j', value_parser = flags::count::<{ caps::JOBS }>)]
    pub jobs: Option<usize>,
    /// Files the task is about (ranked first).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<String>,
    /// How candidates are written: auto (infill on the local engine), edit-blocks or infill.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: ModeArg,
    /// Skip asking the model for a plan (use the context ranking and failing-test lines).
    #[arg(long)]
    pub no_plan: bool,
    /// Skip the test run before generating (failing tests are then not in the first prompt).
    #[arg(long)]
    pub no_baseline: bool,

    /// Backend: local (the diffusion engine) or openai (any OpenAI-compatible endpoint).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Local: model folder or hub id (default: fredzzp/open-dcoder-0.5B on CPU,
    /// apple/DiffuCoder-7B-cpGRPO on CUDA); openai: model name.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// Local: override architecture detection (llada or dream).
    #[arg(long)]
    pub arch: Option<String>,
    /// Local: auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Local: f32, bf16 or f16.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Local: quantize the linear layers at load, q8_0 or q4k (see `hone generate --help`).
    #[arg(long, value_parser = crate::flags::quantization)]
    pub quantize: Option<hone_engine::models::Quantization>,
    /// OpenAI: base URL up to /v1 (default https://api.openai.com/v1).
    #[arg(long)]
    pub base_url: Option<String>,
    /// OpenAI: name of the environment variable that holds the API key.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// OpenAI: the model's context window in tokens; the prompt is then budgeted to fit it with
    /// room for the answer.
    #[arg(long, value_name = "TOKENS")]
    pub context_window: Option<usize>,
    /// OpenAI: extra request header NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// TEST ONLY (with the hidden `--backend scripted`): the JSON script of model answers.
    #[arg(long, hide = true)]
    pub script: Option<PathBuf>,

    /// Sampling temperature, 0 (greedy) to 10.
    #[arg(long, value_parser = flags::temperature)]
    pub temperature: Option<f32>,
    /// Nucleus sampling: keep the most likely tokens whose probabilities add up to P (0 < P <= 1).
    #[arg(long, value_name = "P", value_parser = flags::probability)]
    pub top_p: Option<f32>,
    /// Base seed (candidate i uses seed + i).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Diffusion steps (local).
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub steps: Option<usize>,
    /// Diffusion block length (local).
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub block_length: Option<usize>,
    /// Confidence threshold for parallel decoding (local), above 0 and at most 1.
    #[arg(long, value_parser = flags::probability)]
    pub threshold: Option<f32>,
    /// Longest answer in tokens.
    #[arg(long, value_parser = flags::count::<{ caps::TOKENS }>)]
    pub max_tokens: Option<usize>,

    /// Print the diff only; change nothing.
    #[arg(long, conflicts_with_all = ["commit", "branch"])]
    pub dry_run: bool,
    /// Commit the verified patch (message generated from the diff; your git hooks run).
    #[arg(long)]
    pub commit: bool,
    /// Commit on a new branch NAME without moving HEAD or touching the working tree.
    #[arg(long, value_name = "NAME", conflicts_with = "commit")]
    pub branch: Option<String>,
    /// Write the patch to FILE instead of applying it.
    #[arg(long, value_name = "FILE")]
    pub patch: Option<PathBuf>,
    /// Run even with uncommitted changes (the sandbox includes them; only the patch is applied on top).
    #[arg(long)]
    pub allow_dirty: bool,
    /// How tests are confined: strict (default: bubblewrap, read-only file system except the
    /// sandbox and a private /tmp, no network), workspace, or off. See `hone sandbox check`.
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<hone_tools::SandboxMode>,
    /// The task may change tests: candidates that edit tests, add skip markers or run fewer
    /// tests can pass, and plans may target test code.
    #[arg(long)]
    pub allow_test_edits: bool,
    /// JSON Lines events on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Do not write a transcript under .git/hone/runs.
    #[arg(long)]
    pub no_record: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Auto,
    EditBlocks,
    Infill,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let repo = hone_tools::Repository::discover(&cwd).map_err(|error| {
        Hinted::new(
            error,
            ["run `hone run` inside a git repository (or `git init` one first)"],
        )
    })?;
    let root = repo.root().to_path_buf();
    drop(repo);
    let config = crate::config::load_noting_untrusted(Some(&root))?;
    let settings = model_settings(&args, &config)?;
    let mut request = run_request(&args, &config, &root);
    // Everything that can refuse the run without a model, before a local model (GBs) is loaded.
    let checked = hone_agent::run::preflight(&request)?;
    request.test_command = Some(checked.test_command);
    let backend = backends::open(&settings)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let display = Display::new(args.json, request.max_iterations);
    let sink = |event: &Event| display.event(event);
    let outcome = runtime.block_on(hone_agent::run_task(
        &request,
        backend.model.as_ref(),
        &sink,
    ))?;
    display.finish();
    let code = deliver(&args, &outcome, &backend, &runtime);
    // `run.finished` is the last JSON event, after `delivered`, whatever delivery did.
    display.release_finished();
    let code = code?;
    backend.finish()?;
    Ok(code)
}

fn model_settings(args: &RunArgs, config: &Config) -> anyhow::Result<ModelSettings> {
    let mut settings = ModelSettings::from_config(args.backend, config)?;
    if let Some(model) = &args.model {
        settings.model = Some(model.clone());
    }
    settings.arch = args.arch.clone();
    if let Some(device) = &args.device {
        settings.device = device.clone();
    }
    if let Some(dtype) = &args.dtype {
        settings.dtype = Some(dtype.clone());
    }
    if let Some(quantize) = args.quantize {
        settings.quantize = quantize;
    }
    if let Some(base_url) = &args.base_url {
        settings.base_url = Some(base_url.clone());
    }
    if let Some(api_key_env) = &args.api_key_env {
        settings.api_key_env = Some(api_key_env.clone());
    }
    for header in &args.headers {
        let Some((name, value)) = header.split_once('=') else {
            return Err(Hinted::new(
                anyhow::anyhow!("--header {header:?} is not NAME=VALUE"),
                ["e.g. --header X-Team=tools"],
            )
            .into());
        };
        settings
            .headers
            .push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(window) = args.context_window.filter(|window| *window < 1024) {
        return Err(Hinted::new(
            anyhow::anyhow!("--context-window {window} is too small for a prompt and an answer"),
            ["pass the model's real window in tokens (at least 1024), or leave it out"],
        )
        .into());
    }
    settings.context_window = args.context_window;
    settings.script = args.script.clone();
    Ok(settings)
}

fn run_request(args: &RunArgs, config: &Config, root: &std::path::Path) -> RunRequest {
    let mut request = RunRequest::new(root, args.task.clone());
    request.test_command = args.test.clone().or_else(|| config.test.clone());
    if let Some(timeout) = args.test_timeout.or(config.test_timeout) {
        request.test_timeout = timeout;
    }
    request.candidates = args.candidates.or(config.candidates);
    request.max_iterations = args
        .max_iterations
        .or(config.max_iterations)
        .unwrap_or(4)
        .max(1);
    request.budget = args.budget.or(config.budget);
    request.jobs = args.jobs.unwrap_or(0);
    request.files = args.files.clone();
    request.mode = match args.mode {
        ModeArg::Auto => GenerationMode::Auto,
        ModeArg::EditBlocks => GenerationMode::EditBlocks,
        ModeArg::Infill => GenerationMode::Infill,
    };
    request.plan = !args.no_plan;
    request.baseline = !args.no_baseline;
    request.allow_dirty = args.allow_dirty;
    request.record = !args.no_record;
    request.allow_test_edits = args.allow_test_edits;
    request.confinement = crate::confinement::policy_for_tests(config, args.sandbox);
    request.include = config.sandbox.include.clone();
    let sampling = &config.sampling;
    request.sampling = Sampling {
        temperature: args.temperature.or(sampling.temperature),
        top_p: args.top_p.or(sampling.top_p),
        seed: args.seed.or(sampling.seed),
        steps: args.steps.or(sampling.steps),
        block_length: args.block_length.or(sampling.block_length),
        threshold: args.threshold.or(sampling.threshold),
    };
    if let Some(max_tokens) = args.max_tokens.or(sampling.max_tokens) {
        request.max_tokens = max_tokens;
    }
    request
}

/// Deliver the outcome and print the summary; returns the exit code.
fn deliver(
    args: &RunArgs,
    outcome: &RunOutcome,
    backend: &backends::Backend,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let summary = &outcome.summary;
    let diff = &summary.diff;
    if !outcome.passed() {
        if args.json {
            return Ok(ExitCode::from(FAILURE));
        }
        say!(
            "hone: no verified patch ({}) after {} iteration(s), {} candidate(s) tested",
            summary.reason,
            summary.iterations,
            summary.candidates_tested
        );
        if diff.is_empty() {
            say!("no candidate applied; nothing was changed");
        } else {
            say!("best attempt (NOT applied; your tree is untouched):\n{diff}");
        }
        print_footer(outcome);
        return Ok(ExitCode::from(FAILURE));
    }
    let mut delivered: Vec<String> = Vec::new();
    if let Some(path) = &args.patch {
        hone_agent::delivery::write_patch(path, &outcome.changes)?;
        delivered.push(format!("patch written to {}", path.display()));
    }
    let message = if args.commit || args.branch.is_some() {
        Some(runtime.block_on(hone_agent::commit_message(
            backend.model.as_ref(),
            Some(&args.task),
            diff,
        )))
    } else {
        None
    };
    if let (Some(name), Some(message)) = (&args.branch, &message) {
        let commit =
            hone_agent::delivery::commit_on_branch(&outcome.root, &outcome.changes, name, message)?;
        delivered.push(format!(
            "committed {} on new branch {name} (HEAD not moved)",
            short(&commit)
        ));
    } else if let (true, Some(message)) = (args.commit, &message) {
        let commit = hone_agent::delivery::commit(&outcome.root, &outcome.changes, message)
            .map_err(|error| Hinted::new(error, ["the patch is in the working tree; commit it yourself or fix the hook that refused it"]).with_code(FAILURE))?;
        delivered.push(format!("applied and committed {}", short(&commit)));
    } else if !args.dry_run && args.patch.is_none() {
        hone_agent::delivery::apply_to_tree(&outcome.root, &outcome.changes)?;
        delivered.push("applied to the working tree".to_owned());
    }
    if args.dry_run {
        delivered.push("dry run: nothing changed".to_owned());
    }
    if args.json {
        /// The `delivered` event; `event` comes first, as in every other event.
        #[derive(serde::Serialize)]
        struct Delivered<'a> {
            event: &'static str,
            actions: &'a [String],
            commit_message: Option<&'a str>,
        }
        let line = serde_json::to_string(&Delivered {
            event: "delivered",
            actions: &delivered,
            commit_message: message.as_deref(),
        })?;
        say!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    {
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), "{diff}");
    }
    if !diff.ends_with('\n') && !diff.is_empty() {
        say!();
    }
    say!(
        "hone: verified patch ({} file(s)) after {} iteration(s), {} candidate(s) tested: {}",
        summary.files.len(),
        summary.iterations,
        summary.candidates_tested,
        delivered.join("; ")
    );
    print_footer(outcome);
    Ok(ExitCode::SUCCESS)
}

fn print_footer(outcome: &RunOutcome) {
    let summary = &outcome.summary;
    say!(
        "time {:.1} s (model {:.1} s, tests {:.1} s); tokens {} in / {} out; NFE {}",
        summary.seconds,
        summary.model_seconds,
        summary.test_seconds,
        summary.prompt_tokens,
        summary.completion_tokens,
        summary.nfe
    );
    if let Some(dir) = &summary.transcript {
        say!("transcript: {dir} (hone runs show {})", summary.id);
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
