//! What the hooks obey, resolved once from the configuration (`[hook]` in .hone.toml and
//! `HONE_*`): the check/test command, what to do about a failure (`fix`), the time budget and
//! whether running out of it lets the commit or push through (`fail_open`).

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
pub use crate::config::HookFix as FixMode;

/// Default budget: long enough for a small test suite, short enough not to stall a commit.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

/// The hooks' settings and the configuration they came from (for the model).
#[derive(Debug, Clone)]
pub struct HookSettings {
    /// Command run on the staged content or pushed commit (`hook.test`, else `test`; None: detect).
    pub test: Option<String>,
    pub fix: FixMode,
    /// Wall-clock budget of one hook run.
    pub budget: Duration,
    /// When the budget runs out before a verdict: let the commit/push through (true) or block it.
    pub fail_open: bool,
    pub config: Config,
}

impl HookSettings {
    /// The settings for the repository at `top`.
    pub fn load(top: &Path) -> anyhow::Result<Self> {
        Ok(Self::from_config(crate::config::load_noting_untrusted(
            Some(top),
        )?))
    }

    pub fn from_config(config: Config) -> Self {
        Self {
            test: config.hook.test.clone().or_else(|| config.test.clone()),
            fix: config.hook.fix,
            budget: config.hook.budget.unwrap_or(DEFAULT_BUDGET),
            fail_open: config.hook.fail_open,
            config,
        }
    }
}
