//! Locations: paths and line numbers named in stack traces, compiler errors and task text.

use std::sync::LazyLock;

use regex::Regex;

use super::Location;

static PYTHON_FRAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"File "([^"]+)", line (\d+)"#).ok());
static PATH_LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"((?:[A-Za-z]:)?[\w.@+/\\-]*[\w-]\.[A-Za-z][A-Za-z0-9]{0,5})(?::(\d+))?(?::\d+)?")
        .ok()
});

/// Paths with optional line numbers found in `text` (Python/Rust/Go/JS/Java traces, `path:line:col`).
pub fn extract_locations(text: &str) -> Vec<Location> {
    let mut found: Vec<Location> = Vec::new();
    let mut push = |path: &str, line: Option<usize>| {
        let path = path.trim_start_matches("./").replace('\\', "/");
        let location = Location { path, line };
        if !found.contains(&location) {
            found.push(location);
        }
    };
    if let Some(pattern) = PYTHON_FRAME.as_ref() {
        for captures in pattern.captures_iter(text) {
            if let (Some(path), Some(line)) = (captures.get(1), captures.get(2)) {
                push(path.as_str(), line.as_str().parse().ok());
            }
        }
    }
    if let Some(pattern) = PATH_LINE.as_ref() {
        for captures in pattern.captures_iter(text) {
            let Some(path) = captures.get(1) else {
                continue;
            };
            let path = path.as_str();
            // `a.b` words (versions, `self.x`, `e.g`) are not paths; require a slash or a line number.
            let line = captures.get(2).and_then(|line| line.as_str().parse().ok());
            if path.contains('/') || line.is_some() || looks_like_file(path) {
                push(path, line);
            }
        }
    }
    found
}

fn looks_like_file(word: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "rs", "py", "go", "js", "ts", "tsx", "jsx", "java", "c", "h", "cc", "cpp", "hpp", "rb",
        "php", "cs", "kt", "swift", "toml", "json", "yaml", "yml", "md", "sh", "mjs", "cjs",
        "scala", "lua", "sql",
    ];
    word.rsplit_once('.')
        .is_some_and(|(stem, extension)| !stem.is_empty() && EXTENSIONS.contains(&extension))
}
