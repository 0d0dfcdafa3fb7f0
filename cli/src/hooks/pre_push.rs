//! pre-push: test the commits being pushed. git writes one line per ref on stdin
//! (`<local ref> <local sha> <remote ref> <remote sha>`); the tip of each pushed ref (deletions
//! skipped, repeated commits tested once) is exported to a sandbox and tested there, so the
//! verdict is about what leaves the machine, not the working tree. Under the pre-commit framework
//! the commit comes in `PRE_COMMIT_TO_REF` instead.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use hone_tools::TreeSource;

use super::check::{check_tree, Check};
use super::pre_commit::{out_of_budget, say};
use super::settings::HookSettings;
use hone_tools::describe_failure;

/// One ref being pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    pub local_ref: String,
    pub local_sha: String,
}

/// The refs to test from git's pre-push input, in order, without deletions or repeats.
pub fn parse_refs(input: &str) -> Vec<PushedRef> {
    let mut refs: Vec<PushedRef> = Vec::new();
    for line in input.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_sha, _, _] = fields[..] else {
            continue;
        };
        let deletion = local_sha.bytes().all(|byte| byte == b'0');
        if deletion || refs.iter().any(|seen| seen.local_sha == local_sha) {
            continue;
        }
        refs.push(PushedRef {
            local_ref: local_ref.to_owned(),
            local_sha: local_sha.to_owned(),
        });
    }
    refs
}

pub fn run(top: &Path, settings: &HookSettings, args: &[String]) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("could not read the pushed refs")?;
    let mut refs = parse_refs(&input);
    if refs.is_empty() {
        if let Ok(to) = std::env::var("PRE_COMMIT_TO_REF") {
            refs.push(PushedRef {
                local_ref: to.clone(),
                local_sha: to,
            });
        }
    }
    let remote = args.first().map_or("the remote", String::as_str);
    let mut failed = false;
    for pushed in &refs {
        let remaining = settings.budget.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Ok(out_of_budget(
                settings,
                "not every pushed commit was tested",
                "push",
            ));
        }
        let short: String = pushed.local_sha.chars().take(10).collect();
        let source = TreeSource::Revision(pushed.local_sha.clone());
        match check_tree(top, &source, settings.test.as_deref(), remaining)? {
            Check::NoCommand => {
                say(
                    "pre-push: no test command configured or detected; set hook.test in .hone.toml",
                );
                return Ok(ExitCode::SUCCESS);
            }
            Check::Ran(report) if report.passed => say(&format!(
                "pre-push: {} ({short}) passes `{}` ({:.1} s)",
                pushed.local_ref,
                report.command,
                report.duration.as_secs_f64()
            )),
            Check::Ran(report) if report.timed_out => {
                return Ok(out_of_budget(settings, "the tests did not finish", "push"));
            }
            Check::Ran(report) => {
                failed = true;
                say(&format!(
                    "pre-push: {} ({short}) fails its tests\n{}",
                    pushed.local_ref,
                    describe_failure(&report)
                ));
            }
        }
    }
    if failed {
        say(&format!(
            "push to {remote} blocked; push anyway with `git push --no-verify`"
        ));
        return Ok(ExitCode::from(crate::exit::FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn deletions_and_repeats_are_skipped() {
        let zero = "0".repeat(40);
        let a = "a".repeat(40);
        let input = format!(
            "refs/heads/main {a} refs/heads/main {zero}\n\
             refs/heads/gone {zero} refs/heads/gone {a}\n\
             refs/tags/v1 {a} refs/tags/v1 {zero}\n\
             garbage\n"
        );
        assert_eq!(
            parse_refs(&input),
            [PushedRef {
                local_ref: "refs/heads/main".into(),
                local_sha: a
            }]
        );
    }
}
