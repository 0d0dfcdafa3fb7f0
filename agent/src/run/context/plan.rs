//! The fallback plan, where test code lies, and the lines failing tests point at.

use hone_prompts::{FailureLocation, PlanItem};
use hone_tools::{Repository, TreeSource};

use super::{current_text, WHOLE_FILE_LINES};
use crate::changes::ChangeSet;

/// The plan used when the model's is unusable: lines failing tests point at (as their enclosing
/// ranked region), then the best region of the top-ranked files. Unless `allow_test_edits`, test
/// code is never a target: test files are skipped, and so are regions that overlap the test code
/// of a source file (a Rust `#[cfg(test)]` module); a whole-file item stops before it.
pub(crate) fn fallback_plan(
    repo: &Repository,
    source: &TreeSource,
    ranked: &[hone_tools::RankedFile],
    failure_output: Option<&str>,
    allow_test_edits: bool,
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
    let test_code = |path: &str, content: &str, start: usize, end: usize| {
        !allow_test_edits && targets_test_code(path, content, start, end)
    };
    for location in locations {
        let Some(line) = location.line else { continue };
        let Some(content) = current_text(repo, source, &ChangeSet::default(), &location.path)
        else {
            continue;
        };
        if test_code(&location.path, &content, line, line) {
            continue;
        }
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
            Some(region)
                if !test_code(&location.path, &content, region.start_line, region.end_line) =>
            {
                (region.start_line, region.end_line)
            }
            _ => (line.saturating_sub(5).max(1), (line + 5).min(lines)),
        };
        if test_code(&location.path, &content, start, end) {
            continue;
        }
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
    let mut taken = 0;
    for file in ranked {
        if taken >= 3 {
            break;
        }
        let content = if allow_test_edits {
            String::new()
        } else if is_test_path(&file.path) {
            continue;
        } else {
            current_text(repo, source, &ChangeSet::default(), &file.path).unwrap_or_default()
        };
        taken += 1;
        let region = file
            .regions
            .iter()
            .find(|region| !test_code(&file.path, &content, region.start_line, region.end_line));
        let item = match region {
            Some(region) => PlanItem {
                path: file.path.clone(),
                start_line: region.start_line,
                end_line: region.end_line,
                why: format!("most relevant region ({})", region.name),
            },
            None => match first_test_line(&file.path, &content) {
                // The file's code before its test module.
                Some(first) if !allow_test_edits => {
                    if first <= 1 {
                        continue;
                    }
                    PlanItem {
                        path: file.path.clone(),
                        start_line: 1,
                        end_line: (first - 1).min(WHOLE_FILE_LINES),
                        why: "most relevant file (its code, not its tests)".to_owned(),
                    }
                }
                _ => PlanItem {
                    path: file.path.clone(),
                    start_line: 0,
                    end_line: 0,
                    why: "most relevant file".to_owned(),
                },
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
    hone_tools::runner::integrity::is_test_path(path)
}

/// Whether lines `start..=end` (1-based) of `path` are test code: a test file, or lines that
/// overlap the test code of a source file (a Rust `#[cfg(test)]` module, a `#[test]` function).
pub(crate) fn targets_test_code(path: &str, content: &str, start: usize, end: usize) -> bool {
    if is_test_path(path) {
        return true;
    }
    let (start, end) = (start.max(1) - 1, end.max(start.max(1)));
    hone_tools::runner::integrity::test_regions(path, content)
        .iter()
        .any(|region| region.start < end && start < region.end)
}

/// A plan item that does not target test code: unchanged when it does not, a whole-file item cut
/// before the file's test code, `None` when it is test code.
pub(crate) fn without_test_code(item: PlanItem, content: &str) -> Option<PlanItem> {
    if item.start_line == 0 && !is_test_path(&item.path) {
        return match first_test_line(&item.path, content) {
            None => Some(item),
            Some(first) if first > 1 => Some(PlanItem {
                start_line: 1,
                end_line: (first - 1).min(WHOLE_FILE_LINES),
                ..item
            }),
            Some(_) => None,
        };
    }
    let end = item.end_line.max(item.start_line);
    (!targets_test_code(&item.path, content, item.start_line, end)).then_some(item)
}

/// The first line (1-based) of test code inside a source file, if any.
fn first_test_line(path: &str, content: &str) -> Option<usize> {
    hone_tools::runner::integrity::test_regions(path, content)
        .first()
        .map(|region| region.start + 1)
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
