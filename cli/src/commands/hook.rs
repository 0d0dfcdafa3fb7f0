//! `hone hook`: install, remove and list hone's git hooks, and `hone hook run NAME ARGS`, the entry
//! point the installed scripts (and the pre-commit framework, via `.pre-commit-hooks.yaml`) call.
//! The hooks themselves live in `crate::hooks`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use hone_tools::hooks::{self as install, HookState, HOOK_NAMES};

#[derive(Debug, clap::Subcommand)]
pub enum HookCommand {
    /// Install hone's hooks (default: all three). An existing hook is kept and runs first.
    Install(InstallArgs),
    /// Remove hone's hooks (default: all) and put back the hooks they replaced.
    Uninstall(UninstallArgs),
    /// Show where hooks live and which of hone's are installed.
    List,
    /// Run one hook the way git does (what the installed scripts call).
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Hooks to install: pre-commit, prepare-commit-msg, pre-push (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(HOOK_NAMES))]
    pub hooks: Vec<String>,
    /// Also install when an older backup is in the way (it is renamed, never deleted), and rewrite
    /// hone's scripts even when unchanged.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Hooks to remove (default: all of hone's).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(HOOK_NAMES))]
    pub hooks: Vec<String>,
    /// Also remove hone's scripts that were edited since install (a copy is kept as
    /// NAME.hone-edited).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The hook: pre-commit, prepare-commit-msg or pre-push.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(HOOK_NAMES))]
    pub name: String,
    /// The arguments git passed to the hook.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(command: HookCommand) -> anyhow::Result<ExitCode> {
    match command {
        HookCommand::Install(args) => install_hooks(args),
        HookCommand::Uninstall(args) => uninstall_hooks(args),
        HookCommand::List => list_hooks(),
        HookCommand::Run(args) => crate::hooks::run_hook(&args.name, &args.args),
    }
}

fn chosen(hooks: Vec<String>) -> Vec<String> {
    if hooks.is_empty() {
        HOOK_NAMES.iter().map(|name| (*name).to_owned()).collect()
    } else {
        hooks
    }
}

fn current_dir() -> anyhow::Result<PathBuf> {
    std::env::current_dir().context("could not read the current directory")
}

fn install_hooks(args: InstallArgs) -> anyhow::Result<ExitCode> {
    let dir = crate::hooks::git::hooks_dir(&current_dir()?)?;
    let exe = std::env::current_exe().context("could not find the path of the hone binary")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let mut out = std::io::stdout().lock();
    for name in chosen(args.hooks) {
        let outcome = install::install(&dir, &name, &exe, args.force)?;
        writeln!(out, "{name}: {outcome}")?;
    }
    writeln!(out, "hooks folder: {}", dir.display())?;
    Ok(ExitCode::SUCCESS)
}

fn uninstall_hooks(args: UninstallArgs) -> anyhow::Result<ExitCode> {
    let dir = crate::hooks::git::hooks_dir(&current_dir()?)?;
    let mut out = std::io::stdout().lock();
    let mut kept = false;
    for name in chosen(args.hooks) {
        let outcome = install::uninstall(&dir, &name, args.force)?;
        if outcome == install::Outcome::KeptEdited {
            kept = true;
            writeln!(
                out,
                "{name}: {outcome} (pass --force to remove it; a copy of your edits is kept)"
            )?;
        } else {
            writeln!(out, "{name}: {outcome}")?;
        }
    }
    Ok(if kept {
        ExitCode::from(crate::exit::FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

fn list_hooks() -> anyhow::Result<ExitCode> {
    let dir = crate::hooks::git::hooks_dir(&current_dir()?)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "hooks folder: {}", dir.display())?;
    for name in HOOK_NAMES {
        let text = match install::state(&dir, name) {
            HookState::Absent => "not installed".to_owned(),
            HookState::Hone { chained: false } => "hone".to_owned(),
            HookState::Hone { chained: true } => format!(
                "hone, after the previous hook ({})",
                install::backup_path(&dir, name).display()
            ),
            HookState::Foreign => "another hook (not hone's)".to_owned(),
        };
        writeln!(out, "{name:<20} {text}")?;
    }
    let top = crate::hooks::git::toplevel(&current_dir()?)?;
    let settings = crate::hooks::settings::HookSettings::load(&top)?;
    writeln!(
        out,
        "settings: test = {}, fix = {}, budget = {:.0} s, fail_open = {}",
        settings
            .test
            .as_deref()
            .map_or_else(|| "(detected)".to_owned(), |test| format!("`{test}`")),
        format!("{:?}", settings.fix).to_lowercase(),
        settings.budget.as_secs_f64(),
        settings.fail_open
    )?;
    Ok(ExitCode::SUCCESS)
}
