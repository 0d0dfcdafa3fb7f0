//! `hone apply PATCH_FILE`: parse a patch in any supported format, apply it in a sandbox of the
//! working tree, run the tests there, and only if they pass apply it to the working tree (or commit
//! exactly its changes). `--check` verifies and reports without touching anything.
//! Exit codes: 0 applied (or verified with --check), 1 edit or tests failed, 2 bad input.

use crate::flags;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hone_tools::{Repository, TestChoice, Verdict, VerifyOptions};

use crate::exit::{Hinted, FAILURE};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Patch file: SEARCH/REPLACE blocks, unified diff, `*** Begin Patch`, or whole-file blocks
    /// (`-` reads stdin).
    #[arg(required_unless_present = "recover")]
    pub patch: Option<PathBuf>,
    /// Only finish (or discard) an apply that was interrupted (crash, kill -9) in this repository.
    #[arg(long, exclusive = true)]
    pub recover: bool,
    /// Test command run in the sandbox (default: detected from Cargo.toml, package.json, ...).
    #[arg(long, value_name = "CMD")]
    pub test: Option<String>,
    /// Apply without running any test.
    #[arg(long, conflicts_with = "test")]
    pub no_test: bool,
    /// Verify in the sandbox and report; never touch the working tree.
    #[arg(long, conflicts_with = "commit")]
    pub check: bool,
    /// Commit the verified patch (exactly its changes, on top of HEAD).
    #[arg(long, requires = "message")]
    pub commit: bool,
    /// Commit message for --commit.
    #[arg(short, long, value_name = "MSG")]
    pub message: Option<String>,
    /// Limit for the test run, e.g. 90s or 10m (plain numbers are seconds).
    #[arg(long, default_value = "10m", value_parser = flags::duration)]
    pub timeout: Duration,
    /// Print one JSON object (verdict, blocks, test report, diff) instead of text.
    #[arg(long)]
    pub json: bool,
    /// How the test command is confined: strict (default), workspace or off (`hone sandbox check`).
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<hone_tools::SandboxMode>,
    /// The patch may change tests (edit test files, add skip markers) and still be verified.
    #[arg(long)]
    pub allow_test_edits: bool,
}

pub fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let Some(patch_path) = args.patch.clone() else {
        return recover();
    };
    let text = read_patch(&patch_path)?;
    let patch = hone_tools::parse_patch(&text).map_err(|error| {
        Hinted::new(
            anyhow::anyhow!("{}: {error}", patch_path.display()),
            ["supported formats: SEARCH/REPLACE blocks, unified diff, `*** Begin Patch`, path + fenced whole file"],
        )
    })?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = Repository::discover(&cwd)
        .map_err(|error| Hinted::new(error, ["run hone apply inside a git repository"]))?;
    let mut options = VerifyOptions::new(&repo);
    options.test = match (&args.test, args.no_test) {
        (Some(command), _) => TestChoice::Command(command.clone()),
        (None, true) => TestChoice::Skip,
        (None, false) => TestChoice::Detect,
    };
    options.timeout = args.timeout;
    let config = crate::config::load(Some(repo.root()))?;
    options.allow_test_edits = args.allow_test_edits;
    if options.test != TestChoice::Skip {
        options.sandbox.confinement = crate::confinement::policy_for_tests(&config, args.sandbox);
    }
    options
        .sandbox
        .link_ignored
        .extend(config.sandbox.include.iter().cloned());
    let verification =
        hone_tools::verify_patch(&repo, &patch, &options).map_err(|error| match error {
            hone_tools::Error::NoTestCommand { .. } => {
                Hinted::new(error, ["or pass --no-test to apply without testing"])
            }
            other => Hinted::new(other, Vec::<String>::new()),
        })?;

    let mut applied = false;
    let mut commit = None;
    let mut final_report = None;
    if verification.verdict == Verdict::Verified && !args.check {
        let apply_options = hone_tools::ApplyOptions::default();
        let report = if args.commit {
            let message = args.message.as_deref().unwrap_or_default();
            let (report, oid) = hone_tools::commit_patch(&repo, &patch, message, &apply_options)
                .map_err(|error| {
                    Hinted::new(
                        error,
                        ["use --check to verify only, or apply without --commit"],
                    )
                })?;
            commit = oid;
            report
        } else {
            hone_tools::apply_to_worktree(&repo, &patch, &apply_options)?
        };
        applied = report.written;
        final_report = Some(report);
    }

    let mut stdout = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "verdict": verification.verdict,
            "applied": applied,
            "commit": commit.map(|oid| oid.to_string()),
            "blocks": verification.apply.blocks,
            "test": verification.test,
            "test_integrity": verification.test_integrity,
            "diff": verification.diff,
            "report": hone_tools::render_for_people(&verification.apply),
        });
        writeln!(stdout, "{value}")?;
    } else {
        write!(
            stdout,
            "{}",
            hone_tools::render_for_people(&verification.apply)
        )?;
        if let Some(test) = &verification.test {
            writeln!(
                stdout,
                "tests: `{}` {} in {:.1}s{}",
                test.command,
                if test.passed {
                    "passed"
                } else if test.timed_out {
                    "TIMED OUT"
                } else {
                    "FAILED"
                },
                test.duration.as_secs_f64(),
                match (test.tests_passed, test.tests_failed) {
                    (Some(passed), Some(failed)) => format!(" ({passed} passed, {failed} failed)"),
                    _ => String::new(),
                }
            )?;
            if !test.passed {
                for name in &test.failed_tests {
                    writeln!(stdout, "  failing: {name}")?;
                }
                writeln!(stdout, "--- test output ---\n{}", test.output.trim_end())?;
            }
        }
        match verification.verdict {
            Verdict::Verified if args.check => {
                writeln!(stdout, "verified in a sandbox; nothing applied (--check)")?;
                write!(stdout, "{}", verification.diff)?;
            }
            Verdict::Verified => {
                if let Some(oid) = commit {
                    writeln!(stdout, "committed {oid}")?;
                } else if applied {
                    writeln!(stdout, "applied to the working tree")?;
                }
                write!(stdout, "{}", verification.diff)?;
            }
            Verdict::EditFailed => writeln!(
                stdout,
                "the patch did not apply; the working tree is untouched"
            )?,
            Verdict::TestsFailed if !verification.test_integrity.is_empty() => writeln!(
                stdout,
                "not verified: the patch {} (pass --allow-test-edits if the task is to change tests); the working tree is untouched",
                verification.test_integrity.join("; ")
            )?,
            Verdict::TestsFailed => writeln!(
                stdout,
                "tests failed with the patch; the working tree is untouched"
            )?,
        }
    }
    stdout.flush()?;
    let success = verification.verdict == Verdict::Verified && (args.check || applied);
    if let (Some(report), false) = (&final_report, applied) {
        // Verified in the sandbox but the tree changed since: say so on stderr.
        crate::output::stderr_text(format_args!("{}", hone_tools::render_for_people(report)));
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}

/// `hone apply --recover`: the startup check already finished any interrupted apply; say so.
fn recover() -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = Repository::discover(&cwd).map_err(|error| {
        Hinted::new(error, ["run hone apply --recover inside a git repository"])
    })?;
    let message = match hone_tools::recover_interrupted_apply(repo.root())? {
        Some(hone_tools::edits::Recovery::RolledForward { files, .. }) => {
            format!("finished an interrupted apply ({files} paths)")
        }
        Some(hone_tools::edits::Recovery::Discarded) => {
            "discarded an interrupted apply that had not touched the tree".to_string()
        }
        None => "no interrupted apply to recover".to_string(),
    };
    writeln!(std::io::stdout().lock(), "{message}")?;
    Ok(ExitCode::SUCCESS)
}

fn read_patch(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the patch from stdin")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|error| {
        Hinted::new(
            anyhow::anyhow!("cannot read {}: {error}", path.display()),
            ["pass the path of a patch file, or - for stdin"],
        )
        .into()
    })
}
