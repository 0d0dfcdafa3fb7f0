//! Gathering what the prompts need from the repository: the ranked context (read from the run's base
//! state and fitted to the token budget; a test file as the failing tests' own functions), repository
//! facts (file list, AGENTS.md / README excerpt), the fallback plan, and the lines failing tests point
//! at; and the token budgets: the first prompt's sections split within the backend's window, the
//! answer budget, and a conversation kept inside the window on later iterations.

use hone_prompts::{ContextFile, RepoFacts, TokenCounter};
use hone_tools::{ContextQuery, Repository, TreeSource};

use crate::changes::ChangeSet;
use crate::Result;

mod budget;
mod failing_tests;
mod plan;

pub(crate) use budget::*;
pub(crate) use failing_tests::failing_test_regions;
pub(crate) use plan::*;

/// Files listed in the prompt at most.
const LISTED_FILES: usize = 60;
/// Characters of AGENTS.md / README shown.
const INSTRUCTIONS_CHARS: usize = 1500;
/// Largest region the fallback plan or infill rewrites as a whole file.
pub(crate) const WHOLE_FILE_LINES: usize = 80;

/// Text of `path` in the base state with the carried changes on top; `None` when absent or not text.
pub(crate) fn current_text(
    repo: &Repository,
    source: &TreeSource,
    carried: &ChangeSet,
    path: &str,
) -> Option<String> {
    if let Some(change) = carried.files.iter().find(|file| file.path == path) {
        return change.after.clone();
    }
    repo.read_file(path, source, hone_tools::repo::DEFAULT_MAX_FILE_BYTES)
        .ok()
        .and_then(|content| content.text().map(str::to_owned))
}
/// Repository facts for the prompts.
pub(crate) fn repo_facts(
    repo: &Repository,
    source: &TreeSource,
    test_command: &str,
) -> Result<RepoFacts> {
    let files = repo.list_files()?;
    let name = repo
        .root()
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repository".to_owned());
    let mut instructions = None;
    let mut instructions_source = None;
    for candidate in ["AGENTS.md", "CONTRIBUTING.md", "README.md", "README"] {
        if let Some(text) = current_text(repo, source, &ChangeSet::default(), candidate) {
            let excerpt: String = text.chars().take(INSTRUCTIONS_CHARS).collect();
            instructions = Some(excerpt.trim_end().to_owned());
            instructions_source = Some(candidate.to_owned());
            break;
        }
    }
    Ok(RepoFacts {
        name,
        test_command: Some(test_command.to_owned()),
        file_count: files.len(),
        files: files
            .iter()
            .take(LISTED_FILES)
            .map(|file| file.path.clone())
            .collect(),
        instructions,
        instructions_source,
    })
}

/// The repo map for the prompt: signatures of the ranked files not shown whole, in an eighth of
/// the context budget (at most 512 tokens).
pub(crate) fn repo_map(
    fitted: &hone_prompts::Fitted,
    ranked: &[hone_tools::RankedFile],
    context_budget: usize,
) -> String {
    // Test files are left out: their signatures are the names of passing tests, and the failing
    // ones are already shown as code (`failing_test_regions`).
    let others: Vec<hone_tools::RankedFile> = ranked
        .iter()
        .filter(|file| file.class != hone_tools::context::FileClass::Test)
        .filter(|file| {
            !fitted
                .files
                .iter()
                .any(|shown| shown.path == file.path && shown.whole)
        })
        .cloned()
        .collect();
    hone_tools::context::repo_map(&others, (context_budget / 8).min(512))
        .trim_end()
        .to_owned()
}

/// Rank the repository for the task and read the chosen files (whole; the budget narrows them).
pub(crate) fn ranked_context(
    repo: &Repository,
    source: &TreeSource,
    task: &str,
    failure_output: Option<&str>,
    named: &[String],
    budget: usize,
    counter: &dyn TokenCounter,
) -> Result<(hone_prompts::Fitted, Vec<hone_tools::RankedFile>)> {
    let query = ContextQuery {
        task: task.to_owned(),
        failure_output: failure_output.map(str::to_owned),
        named_files: named.to_vec(),
        top: 8,
    };
    let ranking = hone_tools::select_context(repo, &query)?;
    let mut files = Vec::new();
    for ranked in &ranking.files {
        let Some(content) = current_text(repo, source, &ChangeSet::default(), &ranked.path) else {
            continue;
        };
        let lines = content.lines().count();
        let reason = describe_reasons(&ranked.reasons);
        // A test file is shown as the failing tests' own functions (with the file's imports), not
        // whole: the rest of the file is other tests, and it is often the largest file ranked.
        if is_test_path(&ranked.path) {
            let focused = failing_test_regions(&content, &ranked.path, failure_output);
            if !focused.is_empty() {
                files.extend(focused.into_iter().map(|(start, end)| {
                    ContextFile {
                        path: ranked.path.clone(),
                        content: content
                            .lines()
                            .skip(start - 1)
                            .take(end + 1 - start)
                            .collect::<Vec<_>>()
                            .join("\n"),
                        reason: reason.clone(),
                        start_line: start,
                        end_line: end,
                        whole: start == 1 && end == lines,
                    }
                }));
                continue;
            }
        }
        // Centre a narrowed window on the best region: `fit_context` narrows around the middle.
        let (content, start_line, end_line, whole) = match ranked.regions.first() {
            Some(region) if lines > WHOLE_FILE_LINES * 3 => {
                let from = region.start_line.saturating_sub(WHOLE_FILE_LINES).max(1);
                let to = (region.end_line + WHOLE_FILE_LINES).min(lines);
                let text = content
                    .lines()
                    .skip(from - 1)
                    .take(to + 1 - from)
                    .collect::<Vec<_>>()
                    .join("\n");
                (text, from, to, false)
            }
            _ => (content.trim_end_matches('\n').to_owned(), 1, lines, true),
        };
        files.push(ContextFile {
            path: ranked.path.clone(),
            content,
            reason,
            start_line,
            end_line,
            whole,
        });
    }
    Ok((
        hone_prompts::fit_context(files, budget, counter),
        ranking.files,
    ))
}

fn describe_reasons(reasons: &[hone_tools::Reason]) -> String {
    reasons
        .iter()
        .map(|reason| match reason {
            hone_tools::Reason::Named => "named in the task".to_owned(),
            hone_tools::Reason::InTrace { lines } if lines.is_empty() => {
                "in the test output".to_owned()
            }
            hone_tools::Reason::InTrace { lines } => format!(
                "in the test output at line {}",
                lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hone_tools::Reason::Terms { terms } => format!(
                "mentions {}",
                terms
                    .iter()
                    .take(4)
                    .map(|(term, _)| term.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hone_tools::Reason::PathTerms { terms } => format!("path matches {}", terms.join(", ")),
            hone_tools::Reason::Misspelled { words } => hone_tools::Misspelling::describe(words),
            hone_tools::Reason::Flagged { findings } => hone_tools::Finding::describe(findings),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use hone_prompts::PlanItem;

    const TESTS: &str = "import unittest\nfrom calc import add, sub\n\n\nclass CalcTests(unittest.TestCase):\n    def test_sub(self):\n        self.assertEqual(sub(3, 1), 2)\n\n    def test_add(self):\n        total = add(2, 3)\n        self.assertEqual(total, 5)\n\n    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n";

    #[test]
    fn a_failing_test_spans_what_the_parse_says_not_its_indentation() {
        // The expected text sits at column 0 inside the test: indentation would end the test
        // there; the tree-sitter parse knows the function runs to its last assertion.
        let tests = "import calc\n\n\n@skip_if_slow\ndef test_render():\n    expected = \"\"\"\n<h1>x</h1>\n\"\"\"\n    assert calc.render() == expected\n\n\ndef test_other():\n    pass\n";
        let output = "FAILED test_page.py::test_render - AssertionError";
        assert_eq!(
            failing_test_regions(tests, "test_page.py", Some(output)),
            vec![(1, 9)]
        );
    }

    #[test]
    fn a_failing_test_named_in_the_output_is_shown_with_the_imports() {
        let output =
            "`python -m unittest` failed (exit code 1): test_add (test_calc.CalcTests.test_add)";
        assert_eq!(
            failing_test_regions(TESTS, "test_calc.py", Some(output)),
            vec![(1, 2), (9, 11)]
        );
    }

    #[test]
    fn a_trace_line_inside_a_test_selects_that_test() {
        let output = "  File \"test_calc.py\", line 14, in test_zero\n    self.assertEqual(add(0, 0), 0)\nAssertionError";
        assert_eq!(
            failing_test_regions(TESTS, "test_calc.py", Some(output)),
            vec![(1, 2), (13, 14)]
        );
    }

    #[test]
    fn nothing_named_means_no_focus() {
        assert!(failing_test_regions(TESTS, "test_calc.py", Some("exit code 2")).is_empty());
        assert!(failing_test_regions(TESTS, "test_calc.py", None).is_empty());
    }

    fn file(path: &str, content: String, whole: bool) -> ContextFile {
        ContextFile {
            path: path.to_owned(),
            content,
            whole,
            ..ContextFile::default()
        }
    }

    fn ranked(path: &str, signature: &str) -> hone_tools::RankedFile {
        hone_tools::RankedFile {
            path: path.into(),
            score: 1.0,
            reasons: Vec::new(),
            regions: Vec::new(),
            class: hone_tools::context::FileClass::Source,
            signals: Vec::new(),
            symbols: vec![hone_tools::context::Definition {
                name: "x".into(),
                kind: "function",
                line: 3,
                start_line: 3,
                end_line: 4,
                signature: signature.into(),
            }],
        }
    }

    #[test]
    fn the_answer_budget_holds_a_whole_file_and_stays_inside_the_window() {
        let counter = hone_prompts::CharEstimate;
        let big = "x = compute(value)\n".repeat(600); // about 3,100 tokens
        let tokens = counter.count(&big);
        let context = [file("big.py", big.clone(), true)];
        let wanted = answer_budget(None, 2048, &context, 1000, &counter);
        assert!(
            wanted > tokens && wanted < tokens * 3 / 2,
            "{wanted} for {tokens}"
        );
        // A narrowed file cannot be answered whole: the requested budget stands.
        let narrowed = [file("big.py", big, false)];
        assert_eq!(answer_budget(None, 2048, &narrowed, 1000, &counter), 2048);
        // A known window caps it at what the prompt leaves.
        assert_eq!(
            answer_budget(Some(4096), 2048, &context, 3000, &counter),
            1096
        );
        assert_eq!(
            answer_budget(Some(4096), 2048, &context, 4000, &counter),
            256
        );
    }

    #[test]
    fn first_prompt_sections_share_a_small_window() {
        let counter = hone_prompts::CharEstimate;
        let facts = RepoFacts {
            files: (0..500).map(|i| format!("src/module_{i}.py")).collect(),
            instructions: Some("Write tests first. ".repeat(200)),
            ..RepoFacts::default()
        };
        let room = PromptRoom {
            window: Some(4096),
            answer: answer_reserve(Some(4096), 2048),
            fixed: 400,
            code_wanted: 6000,
        };
        assert_eq!(room.answer, 1536);
        let budget = first_prompt_budget(&room, &facts, Some("failed: test_x"), &[], &counter);
        let sum = budget.code + budget.failing + budget.file_list + budget.instructions;
        assert!(sum <= 4096 - 1536 - 400 - FRAME_TOKENS, "{budget:?}");
        assert!(
            budget.code >= 1000,
            "code comes before the file list: {budget:?}"
        );
        assert!(
            budget.file_list >= 96 && budget.instructions >= 96,
            "{budget:?}"
        );
        let (facts, failing) = fit_facts(facts, Some("failed: test_x"), &budget, &counter);
        assert!(file_list_tokens(&facts.files, &counter) <= budget.file_list);
        assert!(counter.count(facts.instructions.as_deref().unwrap()) <= budget.instructions);
        assert_eq!(failing.as_deref(), Some("failed: test_x"));
        // An extra section (a repository map) gets what is left after the others.
        let extra = [hone_prompts::Section::new("repo map", 800, 0)];
        let budget = first_prompt_budget(&room, &RepoFacts::default(), None, &extra, &counter);
        assert_eq!(budget.extra.len(), 1);
        assert!(budget.extra[0] <= 800);
        // Without a window, everything gets what it wants.
        let room = PromptRoom {
            window: None,
            ..room
        };
        assert_eq!(
            first_prompt_budget(&room, &RepoFacts::default(), None, &[], &counter).code,
            6000
        );
    }

    #[test]
    fn a_long_conversation_keeps_the_task_and_the_latest_turn() {
        use crate::model::Message;
        let counter = hone_prompts::CharEstimate;
        let long = "output line\n".repeat(400); // about 1,400 tokens
        let mut messages = vec![
            Message::system("system"),
            Message::user("task"),
            Message::assistant("first answer"),
            Message::user(long.clone()),
            Message::assistant("second answer"),
            Message::user(long),
        ];
        let dropped = fit_conversation(&mut messages, Some(2048), 1024, &counter);
        assert_eq!(dropped, 2);
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[2].content, "second answer");
        let total: usize = messages.iter().map(|m| counter.count(&m.content) + 4).sum();
        assert!(total <= 2048 - 1024, "{total}");
        assert!(messages[3].content.ends_with("cut to fit the prompt]"));
        // No window: nothing changes.
        let mut short = vec![Message::system("s"), Message::user("t")];
        assert_eq!(fit_conversation(&mut short, None, 1024, &counter), 0);
    }

    #[test]
    fn rust_test_functions_with_attributes_and_closing_braces() {
        let tests = "use calc::add;\n\n#[test]\nfn adds() {\n    assert_eq!(add(2, 3), 5);\n}\n\n#[test]\nfn adds_zero() {\n    assert_eq!(add(0, 0), 0);\n}\n";
        assert_eq!(
            failing_test_regions(tests, "tests/calc.rs", Some("---- adds stdout ----")),
            vec![(1, 6)]
        );
    }

    const LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n";

    fn item(path: &str, start_line: usize, end_line: usize) -> PlanItem {
        PlanItem {
            path: path.to_owned(),
            start_line,
            end_line,
            why: String::new(),
        }
    }

    #[test]
    fn a_rust_test_module_is_never_the_target() {
        assert!(targets_test_code("src/lib.rs", LIB, 7, 10));
        assert!(!targets_test_code("src/lib.rs", LIB, 1, 3));
        assert!(without_test_code(item("src/lib.rs", 6, 11), LIB).is_none());
        let kept = without_test_code(item("src/lib.rs", 1, 3), LIB).unwrap();
        assert_eq!((kept.start_line, kept.end_line), (1, 3));
        // A whole-file item stops before the test module.
        let cut = without_test_code(item("src/lib.rs", 0, 0), LIB).unwrap();
        assert_eq!((cut.start_line, cut.end_line), (1, 4));
        assert!(without_test_code(item("tests/test_calc.py", 1, 5), "x = 1\n").is_none());
    }

    #[test]
    fn the_task_prompt_shows_a_repo_map_of_files_not_shown_whole_within_budget() {
        let fitted = hone_prompts::Fitted {
            files: vec![ContextFile {
                path: "shop/checkout.py".into(),
                content: "def checkout_cart(cart):\n    return apply_discount_rules(cart)\n".into(),
                reason: "named in the task".into(),
                start_line: 1,
                end_line: 2,
                whole: true,
            }],
            omitted: Vec::new(),
        };
        let mut files = vec![
            ranked("shop/checkout.py", "def checkout_cart(cart):"),
            ranked("shop/pricing.py", "def apply_discount_rules(items):"),
        ];
        for i in 0..200 {
            files.push(ranked(
                &format!("shop/m{i}.py"),
                "def helper_with_a_long_name(a, b, c):",
            ));
        }
        // A 4,096-token window: the map gets an eighth, at most 512 tokens (~2,048 characters).
        let map = repo_map(&fitted, &files, 4096);
        assert!(map.contains("shop/pricing.py:\n     3│ def apply_discount_rules(items):"));
        assert!(!map.contains("shop/checkout.py"));
        assert!(map.len() <= 512 * 4, "{}", map.len());
        let prompt = hone_prompts::task_message(&hone_prompts::TaskPrompt {
            task: "checkout_cart returns the wrong total",
            repo: &RepoFacts::default(),
            context: &fitted.files,
            omitted_paths: &[],
            plan: &[],
            failing: None,
            repo_map: &map,
        })
        .unwrap();
        assert!(prompt.contains("# Repository map"));
        assert!(prompt.contains("def apply_discount_rules(items):"));
    }
}
