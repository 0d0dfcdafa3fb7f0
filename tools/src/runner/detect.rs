//! Detecting a project's test command from its files: Cargo.toml, pyproject.toml / pytest.ini /
//! setup.cfg / tox.ini (pytest) or a `test*.py` layout (unittest), package.json (`scripts.test`),
//! go.mod, a Makefile with a `test:` target. The first match in that order wins.

use std::path::Path;

/// A detected test command and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DetectedCommand {
    pub command: String,
    /// E.g. "Cargo.toml found".
    pub reason: String,
}

fn found(command: &str, reason: &str) -> Option<DetectedCommand> {
    Some(DetectedCommand {
        command: command.to_string(),
        reason: reason.to_string(),
    })
}

/// The test command for the project at `root`, if one can be detected.
pub fn detect_test_command(root: &Path) -> Option<DetectedCommand> {
    let read = |name: &str| std::fs::read_to_string(root.join(name)).ok();
    if root.join("Cargo.toml").is_file() {
        return found("cargo test", "Cargo.toml found");
    }
    if let Some(makefile) = read("Makefile").or_else(|| read("makefile")) {
        if makefile.lines().any(|line| line.starts_with("test:")) {
            return found("make test", "Makefile has a `test:` target");
        }
    }
    if let Some(package) = read("package.json") {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&package) {
            if let Some(test) = json
                .pointer("/scripts/test")
                .and_then(|value| value.as_str())
            {
                if !test.contains("no test specified") {
                    return found("npm test", "package.json has scripts.test");
                }
            }
        }
    }
    if root.join("go.mod").is_file() {
        return found("go test ./...", "go.mod found");
    }
    let pytest_config = read("pytest.ini").is_some()
        || read("pyproject.toml").is_some_and(|text| text.contains("[tool.pytest"))
        || read("setup.cfg").is_some_and(|text| text.contains("[tool:pytest]"))
        || read("tox.ini").is_some_and(|text| text.contains("[pytest]"))
        || root.join("conftest.py").is_file();
    if pytest_config {
        return found("python3 -m pytest -q", "pytest configuration found");
    }
    let python =
        read("pyproject.toml").is_some() || read("setup.py").is_some() || has_python_tests(root);
    if python {
        return found(
            "python3 -m unittest discover -v",
            "Python project without pytest configuration",
        );
    }
    None
}

fn has_python_tests(root: &Path) -> bool {
    let is_test = |name: &str| name.starts_with("test") && name.ends_with(".py");
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        is_test(&name)
            || (name == "tests"
                && std::fs::read_dir(entry.path())
                    .map(|inner| {
                        inner
                            .flatten()
                            .any(|file| is_test(&file.file_name().to_string_lossy()))
                    })
                    .unwrap_or(false))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn detect_with(files: &[(&str, &str)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        detect_test_command(dir.path()).map(|detected| detected.command)
    }

    #[test]
    fn detects_each_ecosystem() {
        assert_eq!(
            detect_with(&[("Cargo.toml", "[package]\n")]).as_deref(),
            Some("cargo test")
        );
        assert_eq!(
            detect_with(&[("Makefile", "all:\n\ntest:\n\tpytest\n")]).as_deref(),
            Some("make test")
        );
        assert_eq!(
            detect_with(&[("package.json", r#"{"scripts":{"test":"jest"}}"#)]).as_deref(),
            Some("npm test")
        );
        assert_eq!(
            detect_with(&[(
                "package.json",
                r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#
            )]),
            None
        );
        assert_eq!(
            detect_with(&[("go.mod", "module x\n")]).as_deref(),
            Some("go test ./...")
        );
        assert_eq!(
            detect_with(&[("pyproject.toml", "[tool.pytest.ini_options]\n")]).as_deref(),
            Some("python3 -m pytest -q")
        );
        assert_eq!(
            detect_with(&[("tests/test_a.py", "")]).as_deref(),
            Some("python3 -m unittest discover -v")
        );
        assert_eq!(detect_with(&[("README.md", "hi")]), None);
    }
}
