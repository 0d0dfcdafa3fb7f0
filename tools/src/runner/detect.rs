//! Detecting a project's test command from its files: Cargo.toml, pyproject.toml / pytest.ini /
//! setup.cfg / tox.ini, package.json (`scripts.test`), go.mod, a Makefile with a `test:` target.

use std::path::Path;

/// A detected test command and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DetectedCommand {
    pub command: String,
    /// E.g. "Cargo.toml found".
    pub reason: String,
}

/// The test command for the project at `root`, if one can be detected.
pub fn detect_test_command(root: &Path) -> Option<DetectedCommand> {
    let _ = root;
    None
}
