//! The code a test tests: when a test file ranks for a task ("Fixed issue #3696. Added a test for
//! it as well", a task in a test's words), the source file it is named after
//! (`tests/test_utils.py` -> `utils.py`, `walk_test.go` -> `walk.go`, `parser.test.ts` ->
//! `parser.ts`, `FooTest.java` -> `Foo.java`) is where the fix most likely goes, so it shares in
//! the test's score.

use std::collections::HashMap;

use super::{FileClass, RankedFile, Signal};

/// The share of a test's score its subject receives.
const TESTED_WEIGHT: f64 = 0.5;
/// A test whose name fits more source files than this has no one subject (`test_utils.py` in a
/// repository of many `utils.py`).
const MAX_SUBJECTS: usize = 2;

/// The file name (`utils.py`) a test file at `path` is named after, if it follows a convention.
pub(super) fn subject_name(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (stem, extension) = name.rsplit_once('.')?;
    let stem = match stem.strip_prefix("test_") {
        Some(rest) => rest,
        None => ["_test", "_tests", ".test", ".spec", "Test", "Tests"]
            .iter()
            .find_map(|suffix| stem.strip_suffix(suffix))?,
    };
    let stem = stem.trim_matches('_');
    (!stem.is_empty()).then(|| format!("{stem}.{extension}"))
}

/// Add the `tested` signal: each ranked test file's subject (a source file of the name it is
/// named after, when one or two such files exist) gains [`TESTED_WEIGHT`] of the test's score.
pub(super) fn apply_tested(ranked: &mut [RankedFile]) {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, file) in ranked.iter().enumerate() {
        if file.class == FileClass::Source {
            let name = file.path.rsplit('/').next().unwrap_or(&file.path);
            by_name.entry(name).or_default().push(index);
        }
    }
    let mut bonuses: Vec<(usize, f64, String)> = Vec::new();
    for file in ranked.iter() {
        if file.class != FileClass::Test || file.score <= 0.0 {
            continue;
        }
        let Some(subjects) = subject_name(&file.path).and_then(|name| by_name.get(name.as_str()))
        else {
            continue;
        };
        if subjects.len() > MAX_SUBJECTS {
            continue;
        }
        for &subject in subjects {
            let bonus = TESTED_WEIGHT * file.score / subjects.len() as f64;
            bonuses.push((subject, bonus, file.path.clone()));
        }
    }
    for (subject, bonus, test) in bonuses {
        let file = &mut ranked[subject];
        file.score += bonus;
        file.signals.push(Signal::new(
            "tested",
            bonus,
            format!("the code {test} tests"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::subject_name;

    #[test]
    fn tests_are_named_after_their_subjects() {
        let cases = [
            ("tests/test_utils.py", Some("utils.py")),
            ("walk_test.go", Some("walk.go")),
            ("web/parser.test.ts", Some("parser.ts")),
            ("src/test/java/FooTest.java", Some("Foo.java")),
            ("tests/conftest.py", None),
            ("tests/test_.py", None),
            ("src/walk.rs", None),
        ];
        for (path, subject) in cases {
            assert_eq!(subject_name(path).as_deref(), subject, "{path}");
        }
    }
}
