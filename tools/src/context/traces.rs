//! Traces read as traces: the frames of Python tracebacks, Rust panics and backtraces, JavaScript
//! stacks, Go goroutine dumps and Java stack traces, in order from the innermost (where the error
//! was raised) outwards, with frames of installed packages, the standard library and test runners
//! marked so they do not count. The ranking then weighs a frame by its place: the raising frame and
//! the innermost frame in the repository's own source first, frames named in the error message
//! next, the rest fading with distance.

use std::sync::LazyLock;

use regex::Regex;

use super::task::is_error_message;

/// One frame of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The path as written (absolute, relative, or for Java a package path built from the class).
    pub path: String,
    pub line: Option<usize>,
    /// The function (or method) of the frame, when the trace says.
    pub function: Option<String>,
    /// Installed package, standard library, runtime or test runner: not the repository's code.
    pub external: bool,
}

/// A parsed trace: frames innermost first, and the error message lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub frames: Vec<Frame>,
    pub messages: Vec<String>,
}

static PYTHON: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"^\s*File "([^"]+)", line (\d+)(?:, in (\S+))?"#).ok());
static RUST_PANIC: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"panicked at (?:'.*?', |.*?, )?([^\s:'`]+\.rs):(\d+)(?::\d+)?").ok()
});
static RUST_FRAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\s*\d+:\s+(?:0x[0-9a-f]+ - )?(\S+)").ok());
static RUST_AT: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\s*at (\S+\.rs):(\d+)(?::\d+)?\s*$").ok());
static JS_FRAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\s*at (?:(?:async )?([^\s(]+) \()?(?:file://)?([^\s()]+?):(\d+):\d+\)?\s*$").ok()
});
static JAVA_FRAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\s*at (?:[\w.]+/)?([\w$.]+)\.([\w$<>]+)\(([\w$]+\.(?:java|kt|scala|groovy)):(\d+)\)",
    )
    .ok()
});
static GO_FUNCTION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([\w./*()-]+)\.([\w$]+)\(.*\)\s*$").ok());
static GO_PATH: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?\s*$").ok());

/// All traces' frames in `text`, innermost first within each trace; traces in text order.
pub fn parse_traces(text: &str) -> Vec<Trace> {
    let lines: Vec<&str> = text.lines().collect();
    let mut traces: Vec<Trace> = Vec::new();
    let mut python: Vec<Frame> = Vec::new();
    let mut outermost_first = false;
    let mut current = Trace::default();
    let flush = |current: &mut Trace, python: &mut Vec<Frame>, traces: &mut Vec<Trace>| {
        if !python.is_empty() {
            python.reverse();
            current.frames.append(python);
        }
        if !current.frames.is_empty() || !current.messages.is_empty() {
            traces.push(std::mem::take(current));
        }
    };
    let mut pending_function: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("Traceback (most recent call last)") {
            flush(&mut current, &mut python, &mut traces);
            outermost_first = true;
            continue;
        }
        if let Some(captures) = PYTHON.as_ref().and_then(|re| re.captures(line)) {
            let path = captures.get(1).map_or("", |m| m.as_str()).to_string();
            let function = captures.get(3).map(|m| m.as_str().to_string());
            let external = is_external_python(&path, function.as_deref());
            let frame = Frame {
                line: captures.get(2).and_then(|m| m.as_str().parse().ok()),
                function,
                external,
                path,
            };
            // Python prints the outermost frame first; the innermost (raising) frame last.
            if outermost_first || !python.is_empty() {
                python.push(frame);
            } else {
                current.frames.push(frame);
            }
            continue;
        }
        if let Some(captures) = RUST_PANIC.as_ref().and_then(|re| re.captures(line)) {
            flush(&mut current, &mut python, &mut traces);
            outermost_first = false;
            let path = captures.get(1).map_or("", |m| m.as_str()).to_string();
            current.messages.push(trimmed.to_string());
            // The message may be on the next line (Rust 1.73+: `panicked at src/x.rs:1:2:\nmsg`).
            if line.trim_end().ends_with(':') {
                if let Some(next) = lines.get(index + 1) {
                    current.messages.push(next.trim().to_string());
                }
            }
            current.frames.push(Frame {
                external: is_external_rust(&path, None),
                line: captures.get(2).and_then(|m| m.as_str().parse().ok()),
                function: None,
                path,
            });
            continue;
        }
        if let Some(captures) = RUST_AT.as_ref().and_then(|re| re.captures(line)) {
            let path = captures.get(1).map_or("", |m| m.as_str()).to_string();
            let function = pending_function.take();
            current.frames.push(Frame {
                external: is_external_rust(&path, function.as_deref()),
                line: captures.get(2).and_then(|m| m.as_str().parse().ok()),
                function,
                path,
            });
            continue;
        }
        if let Some(captures) = JAVA_FRAME.as_ref().and_then(|re| re.captures(line)) {
            let class = captures.get(1).map_or("", |m| m.as_str());
            let file = captures.get(3).map_or("", |m| m.as_str());
            let package: Vec<&str> = class
                .split('.')
                .take_while(|part| part.chars().next().is_some_and(char::is_lowercase))
                .collect();
            let path = if package.is_empty() {
                file.to_string()
            } else {
                format!("{}/{file}", package.join("/"))
            };
            current.frames.push(Frame {
                external: is_external_java(class),
                line: captures.get(4).and_then(|m| m.as_str().parse().ok()),
                function: captures.get(2).map(|m| m.as_str().to_string()),
                path,
            });
            continue;
        }
        if let Some(captures) = JS_FRAME.as_ref().and_then(|re| re.captures(line)) {
            let path = captures.get(2).map_or("", |m| m.as_str()).to_string();
            current.frames.push(Frame {
                external: is_external_js(&path),
                line: captures.get(3).and_then(|m| m.as_str().parse().ok()),
                function: captures
                    .get(1)
                    .map(|m| m.as_str().rsplit('.').next().unwrap_or("").to_string()),
                path,
            });
            continue;
        }
        if let Some(captures) = GO_PATH.as_ref().and_then(|re| re.captures(line)) {
            let path = captures.get(1).map_or("", |m| m.as_str()).to_string();
            let function = pending_function.take();
            current.frames.push(Frame {
                external: is_external_go(&path),
                line: captures.get(2).and_then(|m| m.as_str().parse().ok()),
                function,
                path,
            });
            continue;
        }
        if let Some(captures) = RUST_FRAME.as_ref().and_then(|re| re.captures(line)) {
            // `  3: my_crate::module::function` (the `at` line follows).
            let symbol = captures.get(1).map_or("", |m| m.as_str());
            let is_hash = |part: &str| {
                part.len() == 17
                    && part.starts_with('h')
                    && part[1..].bytes().all(|b| b.is_ascii_hexdigit())
            };
            let name = symbol
                .rsplit("::")
                .find(|part| !part.starts_with('{') && !part.is_empty() && !is_hash(part))
                .unwrap_or(symbol);
            pending_function = Some(name.to_string());
            continue;
        }
        if let Some(captures) = GO_FUNCTION.as_ref().and_then(|re| re.captures(trimmed)) {
            if lines
                .get(index + 1)
                .is_some_and(|next| GO_PATH.as_ref().is_some_and(|re| re.is_match(next)))
            {
                pending_function = captures.get(2).map(|m| m.as_str().to_string());
                continue;
            }
        }
        if trimmed.starts_with("goroutine ") || trimmed.starts_with("stack backtrace:") {
            continue;
        }
        if is_error_message(trimmed) || trimmed.starts_with("panic: ") {
            current.messages.push(trimmed.to_string());
            // A Python trace ends at its exception line.
            if !python.is_empty() {
                flush(&mut current, &mut python, &mut traces);
                outermost_first = false;
            }
        }
    }
    flush(&mut current, &mut python, &mut traces);
    traces
}

fn is_external_python(path: &str, function: Option<&str>) -> bool {
    let path = path.replace('\\', "/");
    let stdlib = path.contains("/lib/python") && !path.contains("-packages/")
        || path.contains("/lib64/python")
        || path.starts_with('<')
        || path.contains("/Lib/");
    let runner = [
        "/_pytest/",
        "/pytest/",
        "/pluggy/",
        "/unittest/",
        "/nose/",
        "/runpy.py",
    ]
    .iter()
    .any(|dir| path.contains(dir))
        || function.is_some_and(|function| function == "<module>" && path.ends_with("pytest"));
    // Frames in site-packages may still be the repository's own code installed there; the ranking
    // resolves them by their path below `site-packages/`, so they are not external here.
    stdlib || runner
}

fn is_external_rust(path: &str, function: Option<&str>) -> bool {
    path.starts_with("/rustc/")
        || path.contains("/.cargo/registry/")
        || path.contains("/.rustup/")
        || path.starts_with("library/std/")
        || path.starts_with("library/core/")
        || function.is_some_and(|function| {
            [
                "rust_begin_unwind",
                "__rust_start_panic",
                "lang_start",
                "call_once",
            ]
            .contains(&function)
        })
}

fn is_external_js(path: &str) -> bool {
    path.starts_with("node:")
        || path.contains("/node_modules/")
        || path.starts_with("internal/")
        || path == "<anonymous>"
}

fn is_external_go(path: &str) -> bool {
    path.contains("/go/src/runtime/")
        || path.contains("/src/testing/")
        || path.contains("/go/pkg/mod/")
        || path.starts_with("/usr/local/go/")
        || path.starts_with("/usr/lib/go")
        || path.contains("/libexec/src/")
}

fn is_external_java(class: &str) -> bool {
    [
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "com.sun.",
        "kotlin.",
        "scala.",
        "org.junit.",
        "junit.",
        "org.apache.maven.",
        "org.gradle.",
        "org.testng.",
    ]
    .iter()
    .any(|prefix| class.starts_with(prefix))
}

/// The path below `site-packages/` (or `dist-packages/`), when the frame is in an installed package.
pub fn installed_relative(path: &str) -> Option<&str> {
    ["site-packages/", "dist-packages/"]
        .iter()
        .find_map(|marker| path.split_once(marker).map(|(_, rest)| rest))
}

/// A frame's weight by its role, and the role in words (for `--explain`).
pub struct FrameWeight {
    pub weight: f64,
    pub role: &'static str,
}

/// Weigh the repository frames of one trace. `frames` are the trace's frames that resolved to a
/// repository file, innermost first, with `is_source` telling source from tests; `position` is the
/// index among them. The raising frame is the innermost frame of the whole trace when it is in the
/// repository.
pub fn frame_weight(
    position: usize,
    innermost_source: Option<usize>,
    raising: bool,
    matches_message: bool,
) -> FrameWeight {
    if raising {
        return FrameWeight {
            weight: 1.0,
            role: "the raising frame",
        };
    }
    if innermost_source == Some(position) {
        return FrameWeight {
            weight: 0.95,
            role: "the innermost frame in the repository's source",
        };
    }
    let fade = 0.75f64.powi(position.min(12) as i32);
    if matches_message {
        FrameWeight {
            weight: 0.6 + 0.25 * fade,
            role: "a frame named in the error message",
        }
    } else {
        FrameWeight {
            weight: 0.2 + 0.45 * fade,
            role: "an outer frame",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_frames_innermost_first_with_runner_and_stdlib_marked() {
        let text = "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/_pytest/runner.py\", line 5, in call\n  File \"/repo/tests/test_app.py\", line 9, in test_run\n  File \"/repo/src/app.py\", line 20, in run\n  File \"/usr/lib/python3.11/json/decoder.py\", line 3, in decode\nValueError: bad\n";
        let traces = parse_traces(text);
        assert_eq!(traces.len(), 1);
        let frames = &traces[0].frames;
        let paths: Vec<&str> = frames.iter().map(|frame| frame.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/lib/python3.11/json/decoder.py",
                "/repo/src/app.py",
                "/repo/tests/test_app.py",
                "/usr/lib/python3.11/site-packages/_pytest/runner.py"
            ]
        );
        assert!(frames[0].external && frames[3].external);
        assert!(!frames[1].external && !frames[2].external);
        assert_eq!(frames[1].function.as_deref(), Some("run"));
        assert_eq!(traces[0].messages, ["ValueError: bad"]);
    }

    #[test]
    fn rust_go_js_and_java_frames() {
        let rust = "thread 'main' panicked at src/parse.rs:12:9:\nindex out of bounds\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:597:5\n   1: mycrate::parse::header\n             at ./src/parse.rs:12:9\n   2: mycrate::main\n             at ./src/main.rs:4:5\n";
        let frames = &parse_traces(rust)[0].frames;
        assert_eq!(frames[0].path, "src/parse.rs");
        assert!(frames[1].external);
        assert_eq!(frames[2].function.as_deref(), Some("header"));
        assert_eq!(frames[3].path, "./src/main.rs");

        let go = "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nexample.com/app/cmd.parse(...)\n\t/home/u/app/cmd/parse.go:14 +0x1d\nmain.main()\n\t/home/u/app/main.go:8 +0x25\n";
        let frames = &parse_traces(go)[0].frames;
        assert_eq!(frames[0].path, "/home/u/app/cmd/parse.go");
        assert_eq!(frames[0].function.as_deref(), Some("parse"));

        let js = "TypeError: x is undefined\n    at render (/app/src/view.js:10:5)\n    at Module._compile (node:internal/modules/cjs/loader:1105:14)\n";
        let frames = &parse_traces(js)[0].frames;
        assert_eq!(frames[0].path, "/app/src/view.js");
        assert_eq!(frames[0].function.as_deref(), Some("render"));
        assert!(frames[1].external);

        let java = "Exception in thread \"main\" java.lang.NullPointerException\n\tat com.acme.shop.Cart.total(Cart.java:42)\n\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1541)\n";
        let frames = &parse_traces(java)[0].frames;
        assert_eq!(frames[0].path, "com/acme/shop/Cart.java");
        assert_eq!(frames[0].function.as_deref(), Some("total"));
    }
}
