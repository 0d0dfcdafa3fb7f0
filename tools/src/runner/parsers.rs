//! Parsers for the output of cargo test, pytest, go test, node --test (TAP and spec reporters),
//! jest and Python unittest: counts and failing test names. Each recogniser looks for its
//! framework's summary line; the first that recognises the output wins.

use std::sync::LazyLock;

use regex::Regex;

/// A recognised test framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    Cargo,
    Pytest,
    GoTest,
    NodeTest,
    Jest,
    Unittest,
}

/// What the parsers extracted from an output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTests {
    pub framework: Option<Framework>,
    pub passed: Option<usize>,
    pub failed: Option<usize>,
    pub failed_tests: Vec<String>,
}

fn regex(pattern: &str) -> Regex {
    // The patterns are literals checked by the tests below; an invalid one would match nothing.
    Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()))
}

static CARGO_SUMMARY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^test result: \w+\. (\d+) passed; (\d+) failed"));
static CARGO_FAILED: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^test (\S+) \.\.\. FAILED"));
static PYTEST_SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?m)^=+ (.*\b(?:passed|failed|error|errors|no tests ran)\b.*) in [\d.]+s")
});
static PYTEST_FAILED: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^(?:FAILED|ERROR) (\S+)"));
static GO_FAILED: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^\s*--- FAIL: (\S+)"));
static GO_PASSED: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^\s*--- PASS: (\S+)"));
static GO_PACKAGE: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^(?:ok|FAIL|---)\s+\S+|^(?:PASS|FAIL)$"));
static TAP_SUMMARY_PASS: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^(?:# |ℹ )pass (\d+)"));
static TAP_SUMMARY_FAIL: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^(?:# |ℹ )fail (\d+)"));
static TAP_FAILED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^\s*not ok \d+ - (.+?)\s*(?:#.*)?$"));
static SPEC_FAILED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^\s*✖ (.+?)(?: \([\d.]+m?s\))?$"));
static JEST_SUMMARY: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^Tests:\s+(.*\d+ total)"));
static JEST_FAILED: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^\s*● (.+?)\s*$"));
static UNITTEST_RAN: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^Ran (\d+) tests? in"));
static UNITTEST_RESULT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^(OK|FAILED)\b(.*)$"));
static UNITTEST_FAILED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^(?:FAIL|ERROR): (\S+) \(([^)]+)\)"));
static COUNT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(\d+) (passed|failed|errors?|skipped|total)"));

/// Recognise the framework from the output and extract counts and failing names.
pub fn parse_test_output(output: &str) -> ParsedTests {
    cargo(output)
        .or_else(|| pytest(output))
        .or_else(|| unittest(output))
        .or_else(|| jest(output))
        .or_else(|| node(output))
        .or_else(|| go(output))
        .unwrap_or_default()
}

fn names(pattern: &Regex, output: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for captures in pattern.captures_iter(output) {
        if let Some(name) = captures.get(1) {
            let name = name.as_str().to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn count_of(text: &str, word: &str) -> usize {
    COUNT
        .captures_iter(text)
        .filter(|captures| {
            captures
                .get(2)
                .is_some_and(|kind| kind.as_str().starts_with(word))
        })
        .filter_map(|captures| captures.get(1)?.as_str().parse::<usize>().ok())
        .sum()
}

fn cargo(output: &str) -> Option<ParsedTests> {
    let mut any = false;
    let (mut passed, mut failed) = (0, 0);
    for captures in CARGO_SUMMARY.captures_iter(output) {
        any = true;
        passed += captures
            .get(1)
            .and_then(|m| m.as_str().parse::<usize>().ok())
            .unwrap_or(0);
        failed += captures
            .get(2)
            .and_then(|m| m.as_str().parse::<usize>().ok())
            .unwrap_or(0);
    }
    let failed_tests = names(&CARGO_FAILED, output);
    if !any && failed_tests.is_empty() {
        return None;
    }
    Some(ParsedTests {
        framework: Some(Framework::Cargo),
        passed: Some(passed),
        failed: Some(failed.max(failed_tests.len())),
        failed_tests,
    })
}

fn pytest(output: &str) -> Option<ParsedTests> {
    let summary = PYTEST_SUMMARY.captures_iter(output).last()?;
    let text = summary.get(1)?.as_str();
    Some(ParsedTests {
        framework: Some(Framework::Pytest),
        passed: Some(count_of(text, "passed")),
        failed: Some(count_of(text, "failed") + count_of(text, "error")),
        failed_tests: names(&PYTEST_FAILED, output),
    })
}

fn unittest(output: &str) -> Option<ParsedTests> {
    let ran: usize = UNITTEST_RAN
        .captures_iter(output)
        .last()?
        .get(1)?
        .as_str()
        .parse()
        .ok()?;
    let result = UNITTEST_RESULT.captures_iter(output).last();
    let (mut failed, mut errors) = (0, 0);
    if let Some(result) = &result {
        let detail = result.get(2).map_or("", |m| m.as_str());
        for part in detail
            .trim()
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
        {
            let mut pieces = part.trim().split('=');
            match (
                pieces.next(),
                pieces.next().and_then(|n| n.parse::<usize>().ok()),
            ) {
                (Some("failures"), Some(n)) => failed = n,
                (Some("errors"), Some(n)) => errors = n,
                _ => {}
            }
        }
    }
    let failed_tests = UNITTEST_FAILED
        .captures_iter(output)
        .filter_map(|captures| {
            let method = captures.get(1)?.as_str();
            let context = captures.get(2)?.as_str();
            // Python 3.11+ prints `(module.Class.method)`; older ones `(module.Class)`.
            Some(if context.ends_with(&format!(".{method}")) {
                context.to_string()
            } else {
                format!("{context}.{method}")
            })
        })
        .collect();
    Some(ParsedTests {
        framework: Some(Framework::Unittest),
        passed: Some(ran.saturating_sub(failed + errors)),
        failed: Some(failed + errors),
        failed_tests,
    })
}

fn jest(output: &str) -> Option<ParsedTests> {
    let summary = JEST_SUMMARY.captures_iter(output).last()?;
    let text = summary.get(1)?.as_str();
    let failed_tests = names(&JEST_FAILED, output)
        .into_iter()
        .filter(|name| name.contains(" › ") || !name.starts_with("Test suite failed"))
        .collect();
    Some(ParsedTests {
        framework: Some(Framework::Jest),
        passed: Some(count_of(text, "passed")),
        failed: Some(count_of(text, "failed")),
        failed_tests,
    })
}

fn node(output: &str) -> Option<ParsedTests> {
    let passed: usize = TAP_SUMMARY_PASS
        .captures_iter(output)
        .last()?
        .get(1)?
        .as_str()
        .parse()
        .ok()?;
    let failed: usize = TAP_SUMMARY_FAIL
        .captures_iter(output)
        .last()
        .and_then(|captures| captures.get(1)?.as_str().parse().ok())
        .unwrap_or(0);
    let mut failed_tests = names(&TAP_FAILED, output);
    if failed_tests.is_empty() {
        failed_tests = names(&SPEC_FAILED, output)
            .into_iter()
            .filter(|name| name != "failing tests:")
            .collect();
    }
    Some(ParsedTests {
        framework: Some(Framework::NodeTest),
        passed: Some(passed),
        failed: Some(failed),
        failed_tests,
    })
}

fn go(output: &str) -> Option<ParsedTests> {
    let failed_tests = names(&GO_FAILED, output);
    let passed = GO_PASSED.find_iter(output).count();
    if failed_tests.is_empty() && passed == 0 && !GO_PACKAGE.is_match(output) {
        return None;
    }
    if failed_tests.is_empty()
        && passed == 0
        && !output
            .lines()
            .any(|line| line.starts_with("ok  ") || line.starts_with("FAIL\t"))
    {
        return None;
    }
    Some(ParsedTests {
        framework: Some(Framework::GoTest),
        passed: Some(passed),
        failed: Some(failed_tests.len()),
        failed_tests,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn cargo_output() {
        let output = "running 3 tests\ntest a::ok ... ok\ntest a::bad ... FAILED\ntest b ... ok\n\nfailures:\n\nfailures:\n    a::bad\n\ntest result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let parsed = parse_test_output(output);
        assert_eq!(parsed.framework, Some(Framework::Cargo));
        assert_eq!((parsed.passed, parsed.failed), (Some(2), Some(1)));
        assert_eq!(parsed.failed_tests, ["a::bad"]);
    }

    #[test]
    fn pytest_output() {
        let output = "tests/test_x.py .F.\n=========================== short test summary info ============================\nFAILED tests/test_x.py::test_two - assert 1 == 2\n========================= 1 failed, 2 passed in 0.03s ==========================\n";
        let parsed = parse_test_output(output);
        assert_eq!(parsed.framework, Some(Framework::Pytest));
        assert_eq!((parsed.passed, parsed.failed), (Some(2), Some(1)));
        assert_eq!(parsed.failed_tests, ["tests/test_x.py::test_two"]);
    }

    #[test]
    fn unittest_output() {
        let output = "..F\n======================================================================\nFAIL: test_add (test_calc.CalcTest.test_add)\n----------------------------------------------------------------------\nTraceback (most recent call last):\nAssertionError: 3 != 4\n\n----------------------------------------------------------------------\nRan 3 tests in 0.001s\n\nFAILED (failures=1)\n";
        let parsed = parse_test_output(output);
        assert_eq!(parsed.framework, Some(Framework::Unittest));
        assert_eq!((parsed.passed, parsed.failed), (Some(2), Some(1)));
        assert_eq!(parsed.failed_tests, ["test_calc.CalcTest.test_add"]);
        let old_style =
            parse_test_output("ERROR: test_x (pkg.T)\nRan 1 test in 0.0s\nFAILED (errors=1)\n");
        assert_eq!(old_style.failed_tests, ["pkg.T.test_x"]);
    }

    #[test]
    fn go_output() {
        let output = "=== RUN   TestAdd\n--- FAIL: TestAdd (0.00s)\n    calc_test.go:8: got 3 want 4\n=== RUN   TestSub\n--- PASS: TestSub (0.00s)\nFAIL\nFAIL\texample.com/calc\t0.002s\n";
        let parsed = parse_test_output(output);
        assert_eq!(parsed.framework, Some(Framework::GoTest));
        assert_eq!((parsed.passed, parsed.failed), (Some(1), Some(1)));
        assert_eq!(parsed.failed_tests, ["TestAdd"]);
    }

    #[test]
    fn node_tap_and_spec_output() {
        let tap = "TAP version 13\n# Subtest: adds\nok 1 - adds\n# Subtest: subtracts\nnot ok 2 - subtracts\n  ---\n1..2\n# tests 2\n# pass 1\n# fail 1\n";
        let parsed = parse_test_output(tap);
        assert_eq!(parsed.framework, Some(Framework::NodeTest));
        assert_eq!((parsed.passed, parsed.failed), (Some(1), Some(1)));
        assert_eq!(parsed.failed_tests, ["subtracts"]);
        let spec = "✔ adds (0.5ms)\n✖ subtracts (1.1ms)\nℹ tests 2\nℹ pass 1\nℹ fail 1\n";
        let parsed = parse_test_output(spec);
        assert_eq!(parsed.failed_tests, ["subtracts"]);
    }

    #[test]
    fn jest_output() {
        let output = "FAIL src/sum.test.js\n  ● math › subtracts\n\n    expect(received).toBe(expected)\n\nTests:       1 failed, 3 passed, 4 total\nTime:        0.5 s\n";
        let parsed = parse_test_output(output);
        assert_eq!(parsed.framework, Some(Framework::Jest));
        assert_eq!((parsed.passed, parsed.failed), (Some(3), Some(1)));
        assert_eq!(parsed.failed_tests, ["math › subtracts"]);
    }

    #[test]
    fn unknown_output_is_not_recognised() {
        assert_eq!(
            parse_test_output("make: *** [all] Error 1\n").framework,
            None
        );
    }
}
