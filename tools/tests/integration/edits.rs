//! Fixture-driven edit tests: each `tests/fixtures/edits/<case>/` holds `before/`, `patch`, and
//! either `after/` (the expected tree) or `error` (lines `<block number> <reason>`; the tree must be
//! unchanged).

use std::path::Path;

use hone_tools::edits::{apply_patch, parse_patch, ApplyOptions, BlockStatus};

use crate::support::{copy_dir, snapshot};

fn reason_name(status: &BlockStatus) -> Option<String> {
    match status {
        BlockStatus::Applied { .. } => None,
        BlockStatus::Failed(failure) => {
            let json = serde_json::to_value(&failure.reason).unwrap();
            Some(json["kind"].as_str().unwrap().to_string())
        }
    }
}

#[test]
fn edit_fixtures() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/edits");
    let mut cases: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "expected the edit fixtures in {}",
        fixtures.display()
    );
    let mut problems = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let work = tempfile::tempdir().unwrap();
        copy_dir(&case.join("before"), work.path());
        let before = snapshot(work.path());
        let text = std::fs::read_to_string(case.join("patch")).unwrap();
        let patch = match parse_patch(&text) {
            Ok(patch) => patch,
            Err(error) => {
                problems.push(format!("{name}: parse error: {error}"));
                continue;
            }
        };
        let report = apply_patch(work.path(), &patch, &ApplyOptions::default()).unwrap();
        let people = hone_tools::render_for_people(&report);
        if case.join("after").is_dir() {
            let expected = snapshot(&case.join("after"));
            let actual = snapshot(work.path());
            if !report.is_success() {
                problems.push(format!("{name}: expected success, got:\n{people}"));
            } else if expected != actual {
                let show = |files: &std::collections::BTreeMap<String, Vec<u8>>| {
                    files
                        .iter()
                        .map(|(path, bytes)| {
                            format!("{path}: {:?}", String::from_utf8_lossy(bytes))
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                problems.push(format!(
                    "{name}: tree differs\nexpected:\n{}\nactual:\n{}",
                    show(&expected),
                    show(&actual)
                ));
            }
        } else {
            let expected = std::fs::read_to_string(case.join("error")).unwrap();
            let actual: Vec<String> = report
                .blocks
                .iter()
                .filter_map(|block| {
                    reason_name(&block.status).map(|reason| format!("{} {reason}", block.index + 1))
                })
                .collect();
            let expected: Vec<String> = expected.lines().map(str::to_string).collect();
            if actual != expected {
                problems.push(format!(
                    "{name}: expected failures {expected:?}, got {actual:?}\n{people}"
                ));
            }
            if snapshot(work.path()) != before || report.written {
                problems.push(format!("{name}: the tree changed although a block failed"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} fixture problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
