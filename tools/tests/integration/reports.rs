//! Snapshot tests of the rendered failure reports (for people and for the model) and of a diff.

use hone_tools::edits::{apply_patch, parse_patch, ApplyOptions};

const FILE: &str = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n";

fn failing_report() -> hone_tools::ApplyReport {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), FILE).unwrap();
    let text = "calc.py\n<<<<<<< SEARCH\ndef add(a, b):\n    return a - b\n=======\ndef add(a, b):\n    return a + b\n>>>>>>> REPLACE\n\
                calc.py\n<<<<<<< SEARCH\ndef sub(a, b):\n    return a - c\n=======\ndef sub(a, b):\n    return a - b - 0\n>>>>>>> REPLACE\n\
                calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return b\n>>>>>>> REPLACE\n\
                missing.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n";
    let patch = parse_patch(text).unwrap();
    let report = apply_patch(dir.path(), &patch, &ApplyOptions::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("calc.py")).unwrap(),
        FILE
    );
    report
}

#[test]
fn report_for_people() {
    insta::assert_snapshot!(hone_tools::render_for_people(&failing_report()));
}

#[test]
fn report_for_the_model() {
    insta::assert_snapshot!(hone_tools::render_for_model(&failing_report()));
}

#[test]
fn diff_of_a_successful_patch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), FILE).unwrap();
    let patch = parse_patch("calc.py\n<<<<<<< SEARCH\ndef add(a, b):\n    return a - b\n=======\ndef add(a, b):\n    return a + b\n>>>>>>> REPLACE\n").unwrap();
    let report = apply_patch(dir.path(), &patch, &ApplyOptions::default()).unwrap();
    insta::assert_snapshot!(report.diff());
}
