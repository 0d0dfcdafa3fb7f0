//! The `HONE_*` environment variables: the layer above the files, below the flags.

use std::time::Duration;

use super::{parse_duration, Config, HookFix};
use crate::{Error, Result};

impl Config {
    pub(crate) fn merge_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        let text = |name: &str| env(name).filter(|value| !value.is_empty());
        let number = |name: &str| -> Result<Option<usize>> {
            text(name)
                .map(|value| {
                    value
                        .parse::<usize>()
                        .map_err(|_| bad_env(name, &value, "a whole number"))
                })
                .transpose()
        };
        let duration = |name: &str| -> Result<Option<Duration>> {
            text(name)
                .map(|value| {
                    parse_duration(&value).map_err(|message| bad_env(name, &value, &message))
                })
                .transpose()
        };
        for (name, slot) in [
            ("HONE_BACKEND", &mut self.backend),
            ("HONE_MODEL", &mut self.model),
            ("HONE_BASE_URL", &mut self.base_url),
            ("HONE_API_KEY_ENV", &mut self.api_key_env),
            ("HONE_DEVICE", &mut self.device),
            ("HONE_TEST", &mut self.test),
            ("HONE_HOOK_TEST", &mut self.hook.test),
        ] {
            if let Some(value) = text(name) {
                *slot = Some(value);
            }
        }
        if let Some(value) = number("HONE_CANDIDATES")? {
            self.candidates = Some(value);
        }
        if let Some(value) = number("HONE_MAX_ITERATIONS")? {
            self.max_iterations = Some(value);
        }
        if let Some(value) = duration("HONE_BUDGET")? {
            self.budget = Some(value);
        }
        if let Some(value) = duration("HONE_HOOK_BUDGET")? {
            self.hook.budget = Some(value);
        }
        if let Some(value) = text("HONE_HOOK_FIX") {
            self.hook.fix = match value.as_str() {
                "off" => HookFix::Off,
                "suggest" => HookFix::Suggest,
                "stage" => HookFix::Stage,
                _ => return Err(bad_env("HONE_HOOK_FIX", &value, "off, suggest or stage")),
            };
        }
        if let Some(value) = text("HONE_SANDBOX") {
            self.sandbox.mode = Some(
                value
                    .parse()
                    .map_err(|_| bad_env("HONE_SANDBOX", &value, "strict, workspace or off"))?,
            );
        }
        if let Some(value) = text("HONE_SANDBOX_NETWORK") {
            self.sandbox.network = Some(match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(bad_env("HONE_SANDBOX_NETWORK", &value, "true or false")),
            });
        }
        if let Some(value) = text("HONE_HOOK_FAIL_OPEN") {
            self.hook.fail_open = match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(bad_env("HONE_HOOK_FAIL_OPEN", &value, "true or false")),
            };
        }
        Ok(())
    }
}

fn bad_env(name: &str, value: &str, expected: &str) -> Error {
    Error::ConfigEnv {
        name: name.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}
