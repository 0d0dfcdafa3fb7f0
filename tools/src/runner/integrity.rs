//! Test integrity: what counts as test code, and whether a change tampers with the tests instead
//! of fixing the code. A change that edits a test file, edits the test code of a source file (a
//! Rust `#[cfg(test)]` module or `#[test]` function), or adds a skip / ignore / focus marker
//! (`#[ignore]`, `unittest.skip`, `pytest.mark.skip`/`xfail`, `t.Skip`, `it.skip`/`xit`,
//! `@Disabled`, `.only`, ...) does not count as verified unless the task allows test edits. The
//! other half — fewer tests run than before — needs two test runs and lives with the agent.
//!
//! Heuristics by path and by text, on purpose: they must be cheap, language-agnostic and err on
//! the side of "this touches tests" (the user can pass `--allow-test-edits`).

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

/// One changed file (`None`: absent on that side).
#[derive(Debug, Clone, Copy)]
pub struct ChangedFile<'a> {
    pub path: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// True for paths that hold tests by the usual conventions of common ecosystems.
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let mut components: Vec<&str> = lower.split('/').collect();
    let name = components.pop().unwrap_or_default();
    if components.iter().any(|dir| {
        matches!(
            *dir,
            "test" | "tests" | "__tests__" | "spec" | "specs" | "testdata" | "test_data"
        )
    }) {
        return true;
    }
    let original_name = path.rsplit('/').next().unwrap_or(path);
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    match extension {
        "py" => stem.starts_with("test_") || stem.ends_with("_test") || stem == "conftest",
        "go" => stem.ends_with("_test"),
        "rb" => stem.ends_with("_spec") || stem.ends_with("_test"),
        "rs" => stem.ends_with("_test") || stem.ends_with("_tests") || stem == "tests",
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => {
            stem.ends_with(".test") || stem.ends_with(".spec")
        }
        "java" | "kt" | "scala" | "cs" => {
            let stem = original_name.rsplit_once('.').map_or("", |(stem, _)| stem);
            stem.ends_with("Test") || stem.ends_with("Tests") || stem.starts_with("Test")
        }
        "php" => original_name.ends_with("Test.php"),
        _ => false,
    }
}

/// Markers that skip, disable or focus tests (focusing one test silently drops the others).
fn markers() -> &'static [(Regex, &'static str)] {
    static MARKERS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    MARKERS.get_or_init(|| {
        [
            (r"#\[\s*ignore\b", "#[ignore]"),
            (r"\bunittest\.skip", "@unittest.skip"),
            (r"@skip(If|Unless)?\b", "@skip"),
            (r"\.skipTest\s*\(", "skipTest()"),
            (r"\bpytest\.mark\.skip", "pytest.mark.skip"),
            (r"\bpytest\.mark\.xfail", "pytest.mark.xfail"),
            (r"\bpytest\.(skip|xfail)\s*\(", "pytest.skip()"),
            (r"\bt\.Skip(Now|f)?\s*\(", "t.Skip()"),
            (
                r"\b(it|test|describe|context|suite)\.(skip|todo|only)\b",
                "it.skip/.only",
            ),
            (r"\b(xit|xtest|xdescribe|fit|fdescribe)\s*\(", "xit/fit"),
            (r"@(Disabled|Ignore)\b", "@Disabled"),
            (r"\bskip\s*=\s*True\b", "skip=True"),
        ]
        .into_iter()
        .filter_map(|(pattern, name)| Regex::new(pattern).ok().map(|regex| (regex, name)))
        .collect()
    })
}

/// Why `changes` tamper with the tests (empty when they do not), one reason per finding.
pub fn tampering(changes: &[ChangedFile<'_>]) -> Vec<String> {
    let mut reasons = Vec::new();
    for change in changes {
        let before = change.before.unwrap_or_default();
        let after = change.after.unwrap_or_default();
        if change.before == change.after {
            continue;
        }
        if is_test_path(change.path) {
            let name = change.path.rsplit('/').next().unwrap_or(change.path);
            let verb = match (change.before, change.after) {
                // New tests are welcome; a new conftest.py can change what is collected.
                (None, _) if name != "conftest.py" => continue,
                (None, _) => "adds",
                (_, None) => "deletes",
                _ => "edits",
            };
            reasons.push(format!("{verb} test file {}", change.path));
            continue;
        }
        for (regex, name) in markers() {
            if regex.find_iter(after).count() > regex.find_iter(before).count() {
                reasons.push(format!("adds a {name} marker in {}", change.path));
            }
        }
        if touches_test_code(change.path, before, after) {
            reasons.push(format!("edits test code in {}", change.path));
        }
    }
    reasons.dedup();
    reasons
}

/// True when the lines that differ between `before` and `after` fall inside test code.
fn touches_test_code(path: &str, before: &str, after: &str) -> bool {
    let old_regions = test_regions(path, before);
    let new_regions = test_regions(path, after);
    if old_regions.is_empty() && new_regions.is_empty() {
        return false;
    }
    let inside = |regions: &[Range<usize>], lines: Range<usize>| {
        regions.iter().any(|region| {
            if lines.is_empty() {
                // A pure insertion at `lines.start`: inside when strictly within the region.
                lines.start > region.start && lines.start < region.end
            } else {
                lines.start < region.end && region.start < lines.end
            }
        })
    };
    let diff = similar::TextDiff::from_lines(before, after);
    diff.ops().iter().any(|op| {
        op.tag() != similar::DiffTag::Equal
            && (inside(&old_regions, op.old_range()) || inside(&new_regions, op.new_range()))
    })
}

/// Line ranges (0-based, end exclusive) of test code inside a source file that is not itself a
/// test file: Rust `#[cfg(test)]` items and `#[test]` functions, Python `def test_*` functions.
pub fn test_regions(path: &str, text: &str) -> Vec<Range<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut regions: Vec<Range<usize>> = Vec::new();
    if path.ends_with(".rs") {
        let mut index = 0;
        while index < lines.len() {
            let line = lines[index].trim_start();
            let is_test_attribute = line.starts_with("#[cfg(test)]")
                || line.starts_with("#[cfg(all(test")
                || line.starts_with("#[test]")
                || line.starts_with("#[tokio::test");
            if is_test_attribute {
                let end = braced_item_end(&lines, index);
                regions.push(index..end);
                index = end.max(index + 1);
                continue;
            }
            index += 1;
        }
    } else if path.ends_with(".py") {
        for (index, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("def test_") || trimmed.starts_with("async def test_") {
                let indent = line.len() - trimmed.len();
                let end = lines[index + 1..]
                    .iter()
                    .position(|next| {
                        let body = next.trim_start();
                        !body.is_empty() && next.len() - body.len() <= indent
                    })
                    .map_or(lines.len(), |offset| index + 1 + offset);
                regions.push(index..end);
            }
        }
    }
    regions
}

/// The line after the end of the braced item starting at `start` (attribute lines included);
/// braces are counted naively, which is enough for the item-level structure of Rust files.
fn braced_item_end(lines: &[&str], start: usize) -> usize {
    let mut depth = 0usize;
    let mut opened = false;
    for (index, line) in lines.iter().enumerate().skip(start) {
        let code = line.split("//").next().unwrap_or_default();
        for character in code.chars() {
            match character {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth = depth.saturating_sub(1),
                ';' if !opened && depth == 0 && index > start => return index + 1,
                _ => {}
            }
        }
        if opened && depth == 0 {
            return index + 1;
        }
    }
    lines.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn change<'a>(path: &'a str, before: &'a str, after: &'a str) -> ChangedFile<'a> {
        ChangedFile {
            path,
            before: Some(before),
            after: Some(after),
        }
    }

    #[test]
    fn test_paths_of_common_ecosystems() {
        for path in [
            "tests/test_calc.py",
            "calc/test_calc.py",
            "pkg/calc_test.go",
            "src/__tests__/a.js",
            "web/a.test.ts",
            "web/a.spec.jsx",
            "src/test/java/CalcTest.java",
            "spec/models/user_spec.rb",
            "tests/integration.rs",
            "conftest.py",
        ] {
            assert!(is_test_path(path), "{path}");
        }
        for path in [
            "src/lib.rs",
            "calc.py",
            "contest.py",
            "src/latest.rs",
            "attestation/x.go",
        ] {
            assert!(!is_test_path(path), "{path}");
        }
    }

    #[test]
    fn skip_markers_are_found_only_when_added() {
        let cases = [
            ("a.py", "@unittest.skip('flaky')\n"),
            ("a.py", "@pytest.mark.xfail\n"),
            ("a.py", "    @pytest.mark.skip(reason='x')\n"),
            ("lib.rs", "#[ignore]\n"),
            ("a.go", "\tt.Skip(\"later\")\n"),
            ("a.js", "it.skip('works', () => {})\n"),
            ("a.js", "xit('works', () => {})\n"),
            ("a.js", "describe.only('x', () => {})\n"),
            ("A.kt", "@Disabled\n"),
        ];
        for (path, added) in cases {
            let before = "fn main() {}\n";
            let after = format!("{before}{added}");
            let reasons = tampering(&[change(path, before, &after)]);
            assert!(!reasons.is_empty(), "{path}: {added}");
        }
        // Already there before: not added by the change.
        let before = "#[ignore]\nfn slow() {}\n";
        let after = "#[ignore]\nfn slow() { let _ = 1; }\n";
        assert!(tampering(&[change("src/a.rs", before, after)]).is_empty());
        // `exit(` and `profit(` are not `xit(` / `fit(`.
        let after = "fn main() { exit(1); profit(2); }\n";
        assert!(tampering(&[change("src/a.rs", "fn main() {}\n", after)]).is_empty());
    }

    #[test]
    fn edits_inside_a_rust_test_module_are_test_edits() {
        let before = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n";
        let fixed = before.replace("a - b", "a + b");
        assert!(tampering(&[change("src/lib.rs", before, &fixed)]).is_empty());
        let tampered = before.replace("assert_eq!(super::add(2, 2), 4);", "assert!(true);");
        let reasons = tampering(&[change("src/lib.rs", before, &tampered)]);
        assert_eq!(reasons, vec!["edits test code in src/lib.rs".to_owned()]);
        assert_eq!(test_regions("src/lib.rs", before), vec![4..11]);
    }

    #[test]
    fn test_files_edited_added_or_deleted() {
        let reasons = tampering(&[
            change(
                "tests/test_calc.py",
                "assertEqual(add(2, 2), 4)\n",
                "assertTrue(True)\n",
            ),
            ChangedFile {
                path: "tests/test_new.py",
                before: None,
                after: Some("def test_more():\n    assert 1\n"),
            },
            ChangedFile {
                path: "tests/conftest.py",
                before: None,
                after: Some("collect_ignore = ['test_calc.py']\n"),
            },
            ChangedFile {
                path: "pkg/calc_test.go",
                before: Some("package calc\n"),
                after: None,
            },
        ]);
        assert_eq!(
            reasons,
            vec![
                "edits test file tests/test_calc.py".to_owned(),
                "adds test file tests/conftest.py".to_owned(),
                "deletes test file pkg/calc_test.go".to_owned(),
            ]
        );
    }
}
