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

#[test]
fn allot_gives_floors_first_then_tops_up_in_order() {
    let sections = [
        Section::new("failing", 300, 100),
        Section::new("code", 5000, 1000),
        Section::new("files", 400, 0),
    ];
    // Plenty: everyone gets what they want.
    assert_eq!(allot(10_000, &sections), vec![300, 5000, 400]);
    // Tight: floors, then the rest in order (failing, then code), nothing for the file list.
    assert_eq!(allot(2000, &sections), vec![300, 1700, 0]);
    // Not even the floors fit: scaled down together, never over the total.
    let given = allot(550, &sections);
    assert!(given.iter().sum::<usize>() <= 550, "{given:?}");
    assert_eq!(given, vec![50, 500, 0]);
    // A section that wants less than its floor gets what it wants.
    assert_eq!(allot(100, &[Section::new("small", 10, 50)]), vec![10]);
}

#[test]
fn cut_to_tokens_keeps_whole_lines_and_says_what_it_cut() {
    let text = (1..=100)
        .map(|i| format!("line number {i}"))
        .collect::<Vec<_>>()
        .join("\n");
    let counter = CharEstimate;
    assert_eq!(cut_to_tokens("short", 100, &counter), "short");
    let cut = cut_to_tokens(&text, 60, &counter);
    assert!(counter.count(&cut) <= 60, "{}", counter.count(&cut));
    assert!(cut.starts_with("line number 1\nline number 2\n"), "{cut}");
    assert!(
        cut.ends_with("more line(s) cut to fit the prompt]"),
        "{cut}"
    );
    // One long line is cut inside.
    let line = "word ".repeat(400);
    let cut = cut_to_tokens(&line, 50, &counter);
    assert!(
        counter.count(&cut) <= 50 && cut.starts_with("word word"),
        "{cut}"
    );
    assert!(cut.ends_with("[...]"), "{cut}");
}

#[test]
fn outline_lists_block_openers_with_their_line_numbers() {
    let content = "import os\n\nclass A:\n    def f(self):\n        if x:\n            return 1\n        return 2\n\ndef g():\n    pass\n";
    assert_eq!(
        outline(content, 1, 10),
        "    1: import os\n    3: class A:\n    4:     def f(self):\n    5:         if x:\n    9: def g():"
    );
    // Numbered from the first line shown, and capped.
    assert_eq!(
        outline(content, 20, 2),
        "   20: import os\n   22: class A:\n      (and 3 more)"
    );
    let rust = "fn main() {\n    run();\n}\n";
    assert_eq!(outline(rust, 1, 10), "    1: fn main() {");
}

#[test]
fn plan_request_is_an_outline_not_the_code() {
    let mut file = calc();
    file.content = format!(
        "def add(a, b):\n    return a - b\n{}",
        "# filler line of a long file\n".repeat(200)
    );
    let prompt = plan_request("make add add", &[file.clone()], None).unwrap();
    assert!(prompt.contains("    1: def add(a, b):"), "{prompt}");
    assert!(!prompt.contains("filler"), "{prompt}");
    assert!(CharEstimate.count(&prompt) < CharEstimate.count(&file.content) / 4);
}

#[test]
fn task_sections_add_up_to_the_rendered_message() {
    let repo = repo();
    let context = [calc()];
    let prompt = TaskPrompt {
        task: "make add add",
        repo: &repo,
        context: &context,
        omitted_paths: &[],
        plan: &[],
        failing: Some("test_calc.TestCalc.test_add"),
        repo_map: "",
    };
    let counter = CharEstimate;
    let sections = task_sections(&prompt, &counter).unwrap();
    let names: Vec<&str> = sections.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "task",
            "instructions",
            "file list",
            "failing tests",
            "code: calc.py",
            "frame"
        ]
    );
    let total: usize = sections.iter().map(|(_, tokens)| tokens).sum();
    assert_eq!(total, counter.count(&task_message(&prompt).unwrap()));
}
