//! pre-commit: test exactly what is staged. The index (git's `GIT_INDEX_FILE` included, so
//! `git commit -a` and `git commit PATH` are checked as they will be committed) is exported to a
//! sandbox and the check/test command runs there; the working tree is never read or written, so
//! unstaged changes cannot leak into the verdict nor be touched. On failure the commit is blocked
//! (exit 1); `hook.fix` may add a suggested fix (a patch file for `hone apply`) or, opt-in, stage a
//! verified fix. The time budget decides what happens when no verdict came in time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use hone_tools::TreeSource;

use super::check::{check_tree, Check};
use super::git::git;
use super::settings::{FixMode, HookSettings};
use hone_tools::describe_failure;

/// Print a line for the person committing (git shows hook stderr).
pub(crate) fn say(text: &str) {
    note!("hone: {}", text.trim_end());
}

/// Budget ran out before a verdict: let it through or block, as configured.
pub(crate) fn out_of_budget(settings: &HookSettings, what: &str, action: &str) -> ExitCode {
    if settings.fail_open {
        say(&format!(
            "{what} within hook.budget ({:.0} s): letting the {action} through (hook.fail_open = true)",
            settings.budget.as_secs_f64()
        ));
        ExitCode::SUCCESS
    } else {
        say(&format!(
            "{what} within hook.budget ({:.0} s): {action} blocked (hook.fail_open = false)",
            settings.budget.as_secs_f64()
        ));
        say("hint: raise hook.budget, set hook.fail_open = true, or skip once with --no-verify");
        ExitCode::from(crate::exit::FAILURE)
    }
}

pub fn run(top: &Path, settings: &HookSettings) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let report = match check_tree(
        top,
        &TreeSource::Index,
        settings.test.as_deref(),
        settings.budget,
    )? {
        Check::NoCommand => {
            say("pre-commit: no test command configured or detected; set hook.test in .hone.toml");
            return Ok(ExitCode::SUCCESS);
        }
        Check::Ran(report) => report,
    };
    if report.passed {
        say(&format!(
            "pre-commit: `{}` passed on the staged content ({:.1} s)",
            report.command,
            started.elapsed().as_secs_f64()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if report.timed_out {
        return Ok(out_of_budget(
            settings,
            "the tests did not finish",
            "commit",
        ));
    }
    say(&format!(
        "pre-commit: the staged content fails its tests\n{}",
        describe_failure(&report)
    ));
    if settings.fix != FixMode::Off {
        let remaining = settings.budget.saturating_sub(started.elapsed());
        if fix(top, settings, &report, remaining)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    say("commit blocked; fix the staged content, or commit anyway with `git commit --no-verify`");
    Ok(ExitCode::from(crate::exit::FAILURE))
}

/// Ask the agent for a fix of the staged content; write it to a patch file and, with
/// `fix = "stage"`, apply it to the index and the working tree. True when the fix is staged (the
/// commit may go on).
fn fix(
    top: &Path,
    settings: &HookSettings,
    report: &hone_tools::TestReport,
    remaining: Duration,
) -> anyhow::Result<bool> {
    if remaining < Duration::from_secs(1) {
        say("no hook.budget left to look for a fix");
        return Ok(false);
    }
    let Some(diff) = super::fixer::propose_fix(top, settings, report, remaining)? else {
        return Ok(false);
    };
    let file = write_fix(top, &diff)?;
    let shown = file
        .strip_prefix(top)
        .unwrap_or(&file)
        .display()
        .to_string();
    if settings.fix == FixMode::Stage {
        match stage_fix(top, &file) {
            Ok(()) => {
                say(&format!(
                    "a verified fix was applied and staged (also kept in {shown}); review it with `git show` after the commit"
                ));
                return Ok(true);
            }
            Err(error) => say(&format!(
                "could not stage the fix without touching unstaged changes: {error:#}"
            )),
        }
    }
    say(&format!(
        "a verified fix is in {shown}\n  apply it with: hone apply {shown}"
    ));
    Ok(false)
}

/// Keep a fix under `.git/hone/fixes/` (never tracked) and return its path.
fn write_fix(top: &Path, diff: &str) -> anyhow::Result<PathBuf> {
    let dir = super::git::hone_dir(top)?.join("fixes");
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let path = dir.join(format!("pre-commit-{stamp}.patch"));
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("could not write {}", path.display()))?;
    file.write_all(diff.as_bytes())?;
    Ok(path)
}

/// Apply the fix to the index and to the working tree, both or neither. Both are checked first:
/// when unstaged edits sit where the fix goes, `git apply` refuses and nothing changes.
fn stage_fix(top: &Path, patch: &Path) -> anyhow::Result<()> {
    let patch = patch.to_string_lossy().into_owned();
    git(top, ["apply", "--check", "--cached", patch.as_str()])?;
    git(top, ["apply", "--check", patch.as_str()])?;
    git(top, ["apply", "--cached", patch.as_str()])?;
    if let Err(error) = git(top, ["apply", patch.as_str()]) {
        // Undo the index half so the two stay consistent.
        let _ = git(top, ["apply", "--cached", "--reverse", patch.as_str()]);
        return Err(error);
    }
    Ok(())
}
