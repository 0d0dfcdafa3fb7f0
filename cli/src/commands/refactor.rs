//! `hone refactor "instruction" --glob 'src/**/*.rs'`: the same instruction applied to every
//! matching file as its own agent task (N at a time, each verified by the tests in its own
//! sandbox), then the verified per-file diffs merged into one patch (`crate::hooks::merge`:
//! conflicting edits of one file are reported and left out, never blended), the merged patch
//! verified once more, and delivered like `hone run` delivers: applied to the working tree, or only
//! printed (`--dry-run`) or written (`--patch FILE`).

use crate::flags::{self, caps};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use hone_agent::batch::{merge, run_parallel, FileResult};
use hone_agent::run::{run_task, RunRequest};

#[derive(Debug, clap::Args)]
pub struct RefactorArgs {
    /// What to do to each file.
    pub instruction: String,
    /// Files to work on (globset syntax, repository-relative, e.g. 'src/**/*.rs'); repeatable.
    #[arg(long, short = 'g', required = true)]
    pub glob: Vec<String>,
    /// Files worked on at once.
    #[arg(long, short = 'j', default_value_t = 1, value_parser = flags::count::<{ caps::JOBS }>)]
    pub jobs: usize,
    /// Test command that verifies each file's change and the merged patch (default: configured or
    /// detected).
    #[arg(long)]
    pub test: Option<String>,
    /// Agent iterations per file.
    #[arg(long, default_value_t = 4, value_parser = flags::count::<{ caps::ITERATIONS }>)]
    pub max_iterations: usize,
    /// Wall-clock budget per file, e.g. 5m (plain numbers are seconds).
    #[arg(long, value_parser = flags::duration)]
    pub budget: Option<Duration>,
    /// Print the merged patch; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the merged patch to this file instead of applying it.
    #[arg(long)]
    pub patch: Option<PathBuf>,
    /// Work on a tree with uncommitted changes (they are part of every sandbox).
    #[arg(long)]
    pub allow_dirty: bool,
    #[command(flatten)]
    pub model: crate::hooks::model::ModelArgs,
}

fn say(text: &str) {
    note!("hone: {text}");
}

/// How one file's task ended.
enum FileOutcome {
    Changed(FileResult),
    Unchanged,
    Failed(String),
}

pub fn run(args: RefactorArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("could not read the current directory")?;
    let repo = hone_tools::Repository::discover(&cwd)?;
    let root = repo.root().to_owned();
    let mut globs = globset::GlobSetBuilder::new();
    for pattern in &args.glob {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|error| {
                crate::exit::Hinted::new(
                    anyhow::anyhow!("bad --glob `{pattern}`: {error}"),
                    ["use globset syntax relative to the repository root, e.g. 'src/**/*.rs'"],
                )
            })?;
        globs.add(glob);
    }
    let globs = globs.build()?;
    let files: Vec<String> = repo
        .list_files()?
        .into_iter()
        .filter(|file| {
            file.kind != hone_tools::FileKind::Submodule
                && file.kind != hone_tools::FileKind::Symlink
        })
        .map(|file| file.path)
        .filter(|path| globs.is_match(path))
        .collect();
    if files.is_empty() {
        return Err(crate::exit::Hinted::new(
            anyhow::anyhow!("no file of the repository matches {}", args.glob.join(", ")),
            ["globs are relative to the repository root; quote them so the shell does not expand them"],
        )
        .into());
    }
    let config = crate::config::load_noting_untrusted(Some(&root))?;
    let backend = crate::hooks::model::open(&args.model, &config)?;
    let model = backend.model.clone();
    let test = args.test.clone().or_else(|| config.test.clone());
    let defaults = config.run_defaults();

    let started = Instant::now();
    say(&format!(
        "{} files match; {} at a time",
        files.len(),
        args.jobs
    ));
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} files {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut outcomes: Vec<(String, FileOutcome)> = Vec::new();
    let interrupted = crate::interrupt::interrupt_flag(
        "interrupted: finishing the running files (Ctrl-C again to quit now)",
    );
    run_parallel(
        files.clone(),
        args.jobs,
        interrupted,
        |file: String| {
            let task = format!(
                "{}\n\nApply this to the file `{file}` only; change other files only if the change requires it.",
                args.instruction
            );
            let mut request = RunRequest::new(root.clone(), task);
            crate::confinement::configure_request(&mut request, &root);
            // The user chose this file: when it is a test file, editing it is the task.
            request.allow_test_edits = hone_tools::runner::integrity::is_test_path(&file);
            request.files = vec![file.clone()];
            request.test_command = test.clone();
            request.max_iterations = args.max_iterations;
            request.budget = args.budget;
            // Configured candidates (and a configured budget when --budget is absent).
            defaults.apply(&mut request);
            request.max_iterations = args.max_iterations;
            request.allow_dirty = args.allow_dirty;
            // The workers already run files in parallel: one core's worth of candidates each.
            request.jobs = 1;
            let model = model.clone();
            async move {
                let outcome = match run_task(&request, model.as_ref(), &hone_agent::NoEvents).await
                {
                    Ok(outcome) if outcome.passed() && outcome.changes.is_empty() => {
                        FileOutcome::Unchanged
                    }
                    Ok(outcome) if outcome.passed() => FileOutcome::Changed(FileResult {
                        target: file.clone(),
                        diff: outcome.changes.unified_diff(),
                    }),
                    Ok(outcome) => FileOutcome::Failed(outcome.summary.reason.clone()),
                    Err(error) => FileOutcome::Failed(crate::hints::inline(&error.into())),
                };
                (file, outcome)
            }
        },
        |(file, outcome)| -> anyhow::Result<()> {
            bar.set_message(file.clone());
            bar.inc(1);
            outcomes.push((file, outcome));
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        say("stopped early: nothing applied");
        return Ok(ExitCode::from(130));
    }
    // Merge in the glob's file order, whatever order the tasks finished in.
    outcomes.sort_by_key(|(file, _)| files.iter().position(|candidate| candidate == file));
    let mut changed = Vec::new();
    let mut failed = 0;
    for (file, outcome) in outcomes {
        match outcome {
            FileOutcome::Changed(result) => changed.push(result),
            FileOutcome::Unchanged => say(&format!("{file}: nothing to change")),
            FileOutcome::Failed(reason) => {
                failed += 1;
                say(&format!("{file}: no verified change ({reason})"));
            }
        }
    }
    let merged = merge(&changed)?;
    for conflict in &merged.conflicts {
        say(&format!(
            "{}: left out: its change also edits {}, which the change for {} already edits (rerun it alone after applying)",
            conflict.target, conflict.path, conflict.kept
        ));
    }
    if merged.diff.is_empty() {
        say(&format!(
            "no verified change to deliver ({:.1} s)",
            started.elapsed().as_secs_f64()
        ));
        return Ok(if failed == 0 && merged.conflicts.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::FAILURE)
        });
    }
    backend.finish()?;
    let delivered = deliver(&repo, &merged.diff, test.as_deref(), &args)?;
    say(&format!(
        "{} of {} files changed, {} failed, {} conflicts ({:.1} s)",
        merged.included.len(),
        files.len(),
        failed,
        merged.conflicts.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(if delivered && failed == 0 && merged.conflicts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

/// Verify the merged patch as a whole, then print, write or apply it. False when it failed.
fn deliver(
    repo: &hone_tools::Repository,
    diff: &str,
    test: Option<&str>,
    args: &RefactorArgs,
) -> anyhow::Result<bool> {
    let patch = hone_tools::parse_patch(diff)?;
    let mut options = hone_tools::VerifyOptions::new(repo);
    crate::confinement::configure(&mut options.sandbox, repo.root());
    // Test files among the chosen targets may change (each part was checked on its own).
    options.allow_test_edits = patch
        .paths()
        .iter()
        .any(|path| hone_tools::runner::integrity::is_test_path(path));
    if let Some(test) = test {
        options.test = hone_tools::TestChoice::Command(test.to_owned());
    }
    let verification = match hone_tools::verify_patch(repo, &patch, &options) {
        Err(hone_tools::Error::NoTestCommand { .. }) => {
            options.test = hone_tools::TestChoice::Skip;
            hone_tools::verify_patch(repo, &patch, &options)?
        }
        other => other?,
    };
    if verification.verdict != hone_tools::Verdict::Verified {
        say("the merged patch does not pass the tests although each part did; nothing applied");
        if let Some(report) = &verification.test {
            say(&hone_tools::describe_failure(report));
        }
        return Ok(false);
    }
    if args.dry_run {
        std::io::stdout().lock().write_all(diff.as_bytes())?;
    } else if let Some(path) = &args.patch {
        std::fs::write(path, diff)
            .with_context(|| format!("could not write {}", path.display()))?;
        say(&format!(
            "merged patch written to {}; apply it with `hone apply {}`",
            path.display(),
            path.display()
        ));
    } else {
        let report =
            hone_tools::apply_to_worktree(repo, &patch, &hone_tools::ApplyOptions::default())?;
        if !report.is_success() {
            say(&hone_tools::render_for_people(&report));
            return Ok(false);
        }
        std::io::stdout().lock().write_all(diff.as_bytes())?;
    }
    Ok(true)
}
