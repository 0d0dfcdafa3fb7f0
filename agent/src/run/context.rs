//! Gathering what the prompts need from the repository: the ranked context (read from the run's base
//! state and fitted to the token budget), repository facts (file list, AGENTS.md / README excerpt),
//! the fallback plan, and the lines failing tests point at.

use hone_prompts::{ContextFile, FailureLocation, PlanItem, RepoFacts, TokenCounter};
use hone_tools::{ContextQuery, Repository, TreeSource};

use crate::changes::ChangeSet;
use crate::Result;

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
    let others: Vec<hone_tools::RankedFile> = ranked
        .iter()
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
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan used when the model's is unusable: lines failing tests point at (as their enclosing
/// ranked region), then the best region of the top-ranked files.
pub(crate) fn fallback_plan(
    repo: &Repository,
    source: &TreeSource,
    ranked: &[hone_tools::RankedFile],
    failure_output: Option<&str>,
) -> Vec<PlanItem> {
    let mut items: Vec<PlanItem> = Vec::new();
    let mut locations = failure_output
        .map(hone_tools::context::extract_locations)
        .unwrap_or_default();
    // The code under test before the tests themselves: a trace names the test first, but the fix
    // is usually elsewhere (and rewriting a test is how a weak model "passes").
    locations.sort_by_key(|location| is_test_path(&location.path));
    let mut ranked: Vec<&hone_tools::RankedFile> = ranked.iter().collect();
    ranked.sort_by_key(|file| is_test_path(&file.path));
    for location in locations {
        let Some(line) = location.line else { continue };
        let Some(content) = current_text(repo, source, &ChangeSet::default(), &location.path)
        else {
            continue;
        };
        let region = ranked
            .iter()
            .find(|file| file.path == location.path)
            .and_then(|file| {
                file.regions
                    .iter()
                    .find(|r| r.start_line <= line && line <= r.end_line)
            });
        let lines = content.lines().count().max(1);
        let (start, end) = match region {
            Some(region) => (region.start_line, region.end_line),
            None => (line.saturating_sub(5).max(1), (line + 5).min(lines)),
        };
        push_unique(
            &mut items,
            PlanItem {
                path: location.path,
                start_line: start,
                end_line: end,
                why: format!("a failing test points at line {line}"),
            },
        );
        if items.len() >= 3 {
            return items;
        }
    }
    for file in ranked.into_iter().take(3) {
        let item = match file.regions.first() {
            Some(region) => PlanItem {
                path: file.path.clone(),
                start_line: region.start_line,
                end_line: region.end_line,
                why: format!("most relevant region ({})", region.name),
            },
            None => PlanItem {
                path: file.path.clone(),
                start_line: 0,
                end_line: 0,
                why: "most relevant file".to_owned(),
            },
        };
        push_unique(&mut items, item);
        if items.len() >= 3 {
            break;
        }
    }
    items
}

/// Whether a path looks like a test file (`test_x.py`, `x_test.go`, `x.test.ts`, `tests/...`).
pub(crate) fn is_test_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || name.contains(".test.")
        || name.contains(".spec.")
        || path.starts_with("tests/")
        || path.starts_with("test/")
        || path.contains("/tests/")
        || path.contains("/test/")
}

fn push_unique(items: &mut Vec<PlanItem>, item: PlanItem) {
    if !items
        .iter()
        .any(|existing| existing.path == item.path && existing.start_line == item.start_line)
    {
        items.push(item);
    }
}

/// Up to five locations named in the test output that are files of the repository, with two lines
/// of context each (from the candidate's state).
pub(crate) fn failure_locations(
    repo: &Repository,
    source: &TreeSource,
    state: &ChangeSet,
    output: &str,
) -> Vec<FailureLocation> {
    let mut locations = Vec::new();
    for location in hone_tools::context::extract_locations(output) {
        let Some(line) = location.line else { continue };
        let Some(content) = current_text(repo, source, state, &location.path) else {
            continue;
        };
        let lines: Vec<&str> = content.lines().collect();
        if line == 0 || line > lines.len() {
            continue;
        }
        let from = line.saturating_sub(3);
        let to = (line + 2).min(lines.len());
        let excerpt = (from..to)
            .map(|index| {
                format!(
                    "{:>5}{} {}",
                    index + 1,
                    if index + 1 == line { ">" } else { " " },
                    lines[index]
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        if !locations
            .iter()
            .any(|known: &FailureLocation| known.path == location.path && known.line == line)
        {
            locations.push(FailureLocation {
                path: location.path,
                line,
                excerpt,
            });
        }
        if locations.len() >= 5 {
            break;
        }
    }
    locations
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
                line: 3,
                signature: signature.into(),
            }],
        }
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
