//! Git hooks: where hooks live (`git`; the scripts are written by `hone_tools::hooks`), the hooks
//! themselves (`pre_commit`, `commit_msg`, `pre_push`), the tree check they share (`check`: a
//! hone-tools sandbox of the index or a commit plus the test runner), their settings (`settings`),
//! model (`model`, also used by `hone batch` and `hone refactor`) and fixer (`fixer`: the agent on
//! the staged content). The batch runner lives in `hone_agent::batch`; the clap types in
//! `commands::{hook, batch, refactor}`.

pub mod check;
pub mod commit_msg;
pub mod fixer;
pub mod git;
pub mod model;
pub mod pre_commit;
pub mod pre_push;
pub mod settings;

use std::process::ExitCode;

use anyhow::Context;

/// Run hook `name` with git's arguments, from the current directory (git runs hooks at the top of
/// the working tree).
pub fn run_hook(name: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let dir = std::env::current_dir().context("could not read the current directory")?;
    let top = git::toplevel(&dir)?;
    let settings = settings::HookSettings::load(&top)?;
    match name {
        "pre-commit" => pre_commit::run(&top, &settings),
        "prepare-commit-msg" => commit_msg::run(&top, &settings, args),
        "pre-push" => pre_push::run(&top, &settings, args),
        other => Err(crate::exit::Hinted::new(
            anyhow::anyhow!("unknown hook `{other}`"),
            ["hone runs pre-commit, prepare-commit-msg and pre-push"],
        )
        .into()),
    }
}
