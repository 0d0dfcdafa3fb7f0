//! `hone sandbox check`: which confinement test commands get on this machine, and why. The policy
//! itself is resolved in `crate::confinement`, shared by every command that runs tests.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use hone_tools::{Mechanism, SandboxMode};

use crate::confinement::resolve;
use crate::exit::FAILURE;

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Say which confinement tests get here and why (exit 0: as asked; 1: weaker than asked).
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Check this mode instead of the configured one (strict, workspace or off).
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<SandboxMode>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: SandboxCommand) -> anyhow::Result<ExitCode> {
    let SandboxCommand::Check(args) = command;
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let root = hone_tools::Repository::discover(&cwd)
        .ok()
        .map(|repo| repo.root().to_path_buf());
    let config = crate::config::load(root.as_deref())?;
    let (policy, origin) = resolve(&config, args.sandbox);
    let status = hone_tools::confine::status(policy.mode);
    let as_asked = match policy.mode {
        SandboxMode::Off => status.mechanism == Mechanism::Unconfined,
        _ => status.mechanism == Mechanism::Bubblewrap,
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "mode": policy.mode,
            "mode_from": origin,
            "mechanism": status.mechanism,
            "reason": status.reason,
            "bwrap": status.bwrap,
            "network": policy.network,
            "writable": policy.writable,
            "include": config.sandbox.include,
            "landlock_enforced": status.landlock_enforced,
            "as_asked": as_asked,
        });
        writeln!(stdout, "{value}")?;
    } else {
        writeln!(stdout, "mode: {} (from {origin})", policy.mode.name())?;
        writeln!(
            stdout,
            "confinement: {} ({})",
            status.mechanism.name(),
            status.reason
        )?;
        if status.mechanism == Mechanism::Bubblewrap {
            writeln!(
                stdout,
                "writable: the sandbox folder, {}, the shared cargo target (Rust repositories){}",
                if policy.mode == SandboxMode::Strict {
                    "a private /tmp"
                } else {
                    "/tmp and the user's caches"
                },
                policy
                    .writable
                    .iter()
                    .map(|path| format!(", {}", path.display()))
                    .collect::<String>()
            )?;
            writeln!(
                stdout,
                "read-only: everything else (your repository and $HOME included)"
            )?;
            writeln!(
                stdout,
                "network: {}",
                if policy.network {
                    "allowed (network = true)"
                } else {
                    "none (own network namespace)"
                }
            )?;
            writeln!(
                stdout,
                "processes: own PID namespace, killed with the test and with hone"
            )?;
        } else if policy.mode != SandboxMode::Off {
            writeln!(
                stdout,
                "fallback: no-new-privs only; tests can write anywhere you can and use the network"
            )?;
        }
        writeln!(
            stdout,
            "landlock: {}",
            if status.landlock_enforced {
                "enforced by this kernel, not used by hone (bubblewrap or no-new-privs instead)"
            } else {
                "not enforced by this kernel"
            }
        )?;
        if !config.sandbox.include.is_empty() {
            writeln!(
                stdout,
                "included ignored paths: {}",
                config.sandbox.include.join(", ")
            )?;
        }
    }
    stdout.flush()?;
    Ok(if as_asked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
