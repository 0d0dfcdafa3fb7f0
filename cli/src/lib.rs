//! hone's command line: clap types, configuration, terminal output and exit codes, plus the adapters
//! that plug the local engine and HTTP backends into the agent. Libraries below never print; this crate
//! owns stdout (data) and stderr (progress, logs, errors).

/// A line on stderr that a closed pipe cannot turn into a panic (use instead of `eprintln!`).
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}

/// A line of a report on stdout, best effort (a closed stdout is not worth a panic; commands that
/// stream data write with `?` instead so that a closed pipe stops the work).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod backends;
mod commands;
pub mod config;
mod confinement;
pub mod engine_options;
pub mod exit;
mod flags;
mod hints;
mod hooks;
mod interrupt;
pub mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// hone: a code assistant built on a local masked-diffusion language model.
#[derive(Debug, Parser)]
#[command(
    name = "hone",
    version,
    about = "A code assistant whose generator is a local masked-diffusion language model: it plans \
             edits, generates whole blocks of code at once, tests them in sandboxes and hands you \
             only a verified patch.",
    after_help = "Start with `hone run \"make the failing test pass\"` in a git repository; \
                  `hone <COMMAND> --help` describes each command."
)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work on a task in this repository: plan, generate, apply and test in a sandbox, iterate.
    Run(commands::run::RunArgs),
    /// List or show the transcripts of earlier runs.
    Runs(commands::runs::RunsArgs),
    /// Generate text with the local diffusion engine.
    Generate(commands::generate::GenerateArgs),
    /// Benchmark the engine on a fixed workload.
    Bench(commands::bench::BenchArgs),
    /// Low-level engine tools: forward pass, model info, sampler parity.
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Rank the repository's files and regions by relevance to a task.
    Context(commands::context::ContextArgs),
    /// Apply a patch (any supported format) in a sandbox, test it, and keep it only if green.
    Apply(commands::apply::ApplyArgs),
    /// Serve the engine as an OpenAI-compatible HTTP API.
    Serve(commands::serve::ServeArgs),
    /// Install, remove, list or run hone's git hooks.
    #[command(subcommand)]
    Hook(commands::hook::HookCommand),
    /// Run many tasks (JSON Lines) in isolated sandboxes.
    Batch(commands::batch::BatchArgs),
    /// Apply one instruction to each file matching a glob, verify, and merge the results.
    Refactor(commands::refactor::RefactorArgs),
    /// How test commands are confined here (`hone sandbox check`).
    #[command(subcommand)]
    Sandbox(commands::sandbox::SandboxCommand),
    /// Let this repository's .hone.toml choose the backend, model, endpoint and credentials.
    Trust(commands::trust::TrustArgs),
}

#[derive(Debug, Subcommand)]
pub enum EngineCommand {
    /// Run one forward pass on ids from a safetensors file and write the raw logits.
    Forward(commands::engine_forward::ForwardArgs),
    /// Describe a checkpoint: architecture, parameters, dtype, special ids, memory.
    Info(commands::engine_info::InfoArgs),
    /// Run sampler cases (parity `generate.json` format) and compare with their expected ids.
    Sample(commands::engine_sample::SampleArgs),
}

/// Entry point of the `hone` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    // Commands that run tests stop them and remove their sandboxes when interrupted; batch and
    // refactor handle Ctrl-C themselves (finish what runs, keep the results), SIGTERM here.
    let signals = match cli.command {
        Command::Run(_) | Command::Apply(_) | Command::Hook(_) => Some(true),
        Command::Batch(_) | Command::Refactor(_) => Some(false),
        _ => None,
    };
    if let Some(interrupt) = signals {
        if let Err(error) = confinement::stop_on_signals(interrupt) {
            tracing::warn!("{error:#}: an interrupt may leave tests running");
        }
    }
    if !matches!(&cli.command, Command::Apply(args) if args.recover) {
        finish_interrupted_apply();
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Runs(args) => commands::runs::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Engine(EngineCommand::Forward(args)) => commands::engine_forward::run(args),
        Command::Engine(EngineCommand::Info(args)) => commands::engine_info::run(args),
        Command::Engine(EngineCommand::Sample(args)) => commands::engine_sample::run(args),
        Command::Context(args) => commands::context::run(args),
        Command::Apply(args) => commands::apply::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Hook(command) => commands::hook::run(command),
        Command::Batch(args) => commands::batch::run(args),
        Command::Refactor(args) => commands::refactor::run(args),
        Command::Sandbox(command) => commands::sandbox::run(command),
        Command::Trust(args) => commands::trust::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => exit::report(&error),
    }
}

/// Every hone command first completes an apply that a crash or `kill -9` interrupted in the
/// repository around the current folder (or discards it if it had not started writing), so the tree
/// is never seen half-patched. Silent when there is nothing to do or no repository.
fn finish_interrupted_apply() {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let Ok(repo) = hone_tools::Repository::discover(&cwd) else {
        return;
    };
    match hone_tools::recover_interrupted_apply(repo.root()) {
        Ok(Some(hone_tools::edits::Recovery::RolledForward { files, root })) => note!(
            "hone: finished an interrupted apply in {} ({files} paths)",
            root.display()
        ),
        Ok(Some(hone_tools::edits::Recovery::Discarded)) | Ok(None) => {}
        Err(error) => note!("hone: could not finish an interrupted apply: {error}"),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: piped logs (CI, `git commit` running a hook) stay plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .try_init();
}
