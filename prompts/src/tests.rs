//! Snapshot tests of every rendered prompt, and the budget rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn repo() -> RepoFacts {
    RepoFacts {
        name: "calc".into(),
        test_command: Some("python -m unittest".into()),
        files: vec!["calc.py".into(), "test_calc.py".into()],
        file_count: 2,
        instructions: Some("Use four spaces.".into()),
        instructions_source: Some("AGENTS.md".into()),
    }
}

fn calc() -> ContextFile {
    ContextFile {
        path: "calc.py".into(),
        content: "def add(a, b):\n    return a - b".into(),
        reason: "named in a failing test".into(),
        start_line: 1,
        end_line: 2,
        whole: true,
    }
}

#[test]
fn system_prompt_snapshot() {
    insta::assert_snapshot!(system_prompt(&repo()).unwrap());
}

#[test]
fn task_message_snapshot() {
    let repo = repo();
    let context = [calc()];
    let plan = [PlanItem {
        path: "calc.py".into(),
        start_line: 1,
        end_line: 2,
        why: "add subtracts".into(),
    }];
    let omitted = ["docs/big.py".to_owned()];
    let prompt = TaskPrompt {
        task: "make add add",
        repo: &repo,
        context: &context,
        omitted_paths: &omitted,
        plan: &plan,
        failing: Some("test_calc.TestCalc.test_add"),
        repo_map: "",
    };
    insta::assert_snapshot!(task_message(&prompt).unwrap());
}

#[test]
fn plan_request_snapshot() {
    let mut region = calc();
    region.whole = false;
    region.start_line = 10;
    region.end_line = 11;
    insta::assert_snapshot!(plan_request("make add add", &[region], None).unwrap());
}

#[test]
fn test_feedback_snapshot() {
    let feedback = TestFeedback {
        command: "python -m unittest".into(),
        exit_code: Some(1),
        failing_tests: vec!["test_calc.TestCalc.test_add".into()],
        locations: vec![FailureLocation {
            path: "calc.py".into(),
            line: 2,
            excerpt: "    return a - b".into(),
        }],
        output: "AssertionError: -1 != 3\n```".into(),
        output_truncated: true,
        ..Default::default()
    };
    let rendered = test_feedback(&feedback).unwrap();
    assert!(
        rendered.contains("````\nAssertionError"),
        "fence grows past backticks in the output"
    );
    insta::assert_snapshot!(rendered);
}

#[test]
fn timeout_feedback_names_the_limit() {
    let feedback = TestFeedback {
        command: "cargo test".into(),
        timed_out: true,
        timeout_seconds: 30,
        ..Default::default()
    };
    let rendered = test_feedback(&feedback).unwrap();
    assert!(rendered.contains("stopped after 30 s"), "{rendered}");
}

#[test]
fn apply_feedback_and_commit_message_snapshots() {
    insta::assert_snapshot!(
        "apply_feedback",
        apply_feedback("block 1 (calc.py): SEARCH not found\n").unwrap()
    );
    insta::assert_snapshot!(
        "commit_message",
        commit_message_request(
            Some("make add add"),
            "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-a\n+b\n"
        )
        .unwrap()
    );
}

#[test]
fn infill_task_snapshot() {
    let prompt = InfillPrompt {
        task: "make add add",
        path: "src/lib.rs",
        content: "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}",
        start_line: 2,
        end_line: 2,
        why: "add subtracts",
        feedback: Some("test tests::adds failed"),
    };
    insta::assert_snapshot!(infill_task(&prompt).unwrap());
}

#[test]
fn budget_keeps_rank_order_narrows_then_omits() {
    let counter = |text: &str| text.len();
    let small = ContextFile {
        path: "a".into(),
        content: "x".repeat(20),
        start_line: 1,
        end_line: 1,
        whole: true,
        ..Default::default()
    };
    let lines: Vec<String> = (1..=100).map(|i| format!("line {i:03}")).collect();
    let big = ContextFile {
        path: "b".into(),
        content: lines.join("\n"),
        start_line: 1,
        end_line: 100,
        whole: true,
        ..Default::default()
    };
    let third = ContextFile {
        path: "c".into(),
        content: "y".repeat(500),
        whole: true,
        ..Default::default()
    };
    let fitted = fit_context(vec![small.clone(), big, third], 200, &counter);
    assert_eq!(fitted.files[0], small);
    let narrowed = &fitted.files[1];
    assert!(!narrowed.whole);
    assert!(
        narrowed.content.contains("line 050"),
        "window centred on the region"
    );
    assert_eq!(
        narrowed.content.lines().next().unwrap(),
        format!("line {:03}", narrowed.start_line)
    );
    assert_eq!(fitted.omitted, ["c"]);
}

#[test]
fn char_estimate_errs_high() {
    assert_eq!(CharEstimate.count(""), 0);
    assert_eq!(CharEstimate.count("abcdefg"), 2);
}

#[test]
fn reverted_feedback_says_the_edits_were_discarded() {
    let feedback = TestFeedback {
        command: "pytest".into(),
        exit_code: Some(1),
        reverted: true,
        ..Default::default()
    };
    let rendered = test_feedback(&feedback).unwrap();
    assert!(
        rendered.contains("Those edits were discarded"),
        "{rendered}"
    );
    assert!(
        !rendered.contains("now contain your previous edits"),
        "{rendered}"
    );
}
