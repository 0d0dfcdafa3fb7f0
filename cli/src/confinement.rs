//! Confinement glue shared by every command that runs model-written code (run, apply, batch,
//! refactor, the hooks): resolving `--sandbox` and `[sandbox]` into the tools' `ConfinePolicy`, the
//! loud one-line warning when tests would run unconfined (printed once per process), and stopping
//! running tests and removing sandbox folders when hone gets SIGINT or SIGTERM (exit 130 / 143).
//! `hone sandbox check` (`commands::sandbox`) reports what this resolves to.

use std::sync::OnceLock;

use anyhow::Context as _;
use hone_tools::{ConfinePolicy, ConfineStatus, Mechanism, SandboxMode};

use crate::config::Config;

/// The confinement policy from the flag, then `HONE_SANDBOX` / config, then the default (strict),
/// and where the mode came from.
pub fn resolve(config: &Config, flag: Option<SandboxMode>) -> (ConfinePolicy, &'static str) {
    let (mode, origin) = match (flag, config.sandbox.mode) {
        (Some(mode), _) => (mode, "--sandbox"),
        (None, Some(mode)) => (mode, "config or HONE_SANDBOX"),
        (None, None) => (SandboxMode::Strict, "the default"),
    };
    let policy = ConfinePolicy {
        mode,
        network: config.sandbox.network.unwrap_or(false),
        writable: config.sandbox.writable.clone(),
    };
    (policy, origin)
}

/// The policy for a command that runs tests, after printing the one-line warning (once per
/// process) when tests would run weaker than bubblewrap.
pub fn policy_for_tests(config: &Config, flag: Option<SandboxMode>) -> ConfinePolicy {
    let (policy, _) = resolve(config, flag);
    warn_once(&hone_tools::confine::status(policy.mode));
    policy
}

/// `[sandbox]` of the repository's configuration, for commands without a `--sandbox` flag (hooks,
/// batch, refactor): the policy (after the warning) and the ignored paths linked in. A
/// configuration that does not load leaves the strict default (the error itself is reported where
/// the command loads its settings).
pub fn task_sandbox(root: &std::path::Path) -> hone_agent::batch::TaskSandbox {
    let config = Config::load(Some(root)).unwrap_or_default();
    hone_agent::batch::TaskSandbox {
        confinement: policy_for_tests(&config, None),
        include: config.sandbox.include.clone(),
    }
}

/// [`task_sandbox`] applied to sandbox options.
pub fn configure(options: &mut hone_tools::SandboxOptions, root: &std::path::Path) {
    let sandbox = task_sandbox(root);
    options.confinement = sandbox.confinement;
    options.link_ignored.extend(sandbox.include);
}

/// [`task_sandbox`] applied to an agent run request.
pub fn configure_request(request: &mut hone_agent::RunRequest, root: &std::path::Path) {
    let sandbox = task_sandbox(root);
    (request.confinement, request.include) = (sandbox.confinement, sandbox.include);
}

/// The loud one-line warning, once per process, when commands run weaker than bubblewrap.
fn warn_once(status: &ConfineStatus) {
    static WARNED: OnceLock<()> = OnceLock::new();
    let effect = "model-written code can write anywhere you can and use the network";
    let reason = &status.reason;
    let fix = "install bubblewrap (apt-get install bubblewrap)";
    let warning = match status.mechanism {
        Mechanism::Bubblewrap => return,
        Mechanism::Unconfined => format!("hone: WARNING: tests run UNCONFINED (--sandbox off): {effect}"),
        Mechanism::NoNewPrivileges => format!("hone: WARNING: tests are NOT confined ({reason}): {effect}; {fix} or pass --sandbox off to accept this"),
    };
    WARNED.get_or_init(|| note!("{warning}"));
}

/// On SIGTERM (and SIGINT when `interrupt`): kill every running test process group, remove every
/// sandbox folder, and exit 143 (130). The handlers are in place when this returns.
pub fn stop_on_signals(interrupt: bool) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    let (mut interrupt, mut terminate) = {
        let _entered = runtime.enter();
        let sigint = interrupt.then(|| signal(SignalKind::interrupt()));
        (
            sigint.transpose().context("handling SIGINT")?,
            signal(SignalKind::terminate()).context("handling SIGTERM")?,
        )
    };
    std::thread::Builder::new()
        .name("hone-signals".into())
        .spawn(move || {
            let code = runtime.block_on(async {
                let sigint = async {
                    match interrupt.as_mut() {
                        Some(stream) => stream.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sigint => 130,
                    _ = terminate.recv() => 143,
                }
            });
            let stopped = hone_tools::runner::interrupt::stop_all();
            note!(
                "hone: interrupted: stopped {} running test(s), removed {} sandbox folder(s)",
                stopped.groups,
                stopped.folders
            );
            std::process::exit(code);
        })
        .context("starting the signal handler")?;
    Ok(())
}
