//! The component a task's subject names: a conventional prefix (`searcher: fix ...`,
//! `fix(printer): ...`, `globset/glob: ...`; not a change type such as `doc:` or `perf:`) scopes
//! the work to a part of the repository. Files
//! under a directory of that name move up by a factor, so the component's files outrank close
//! matches elsewhere; where no directory has the name nothing changes (the prefix still counts
//! as a term of the task, `task.rs`).

use super::{RankedFile, Signal};

/// How much a file in the named component's directory gains (its score times this). Chosen on
/// the benchmark (1.5 and 2 gave the same top 5 on both slices; 1.2 fewer).
const SCOPE_FACTOR: f64 = 1.5;

/// Conventional commit types: a prefix saying what kind of change it is, not where.
const CHANGE_TYPES: &[&str] = &[
    "build", "bug", "bugfix", "chore", "ci", "deps", "doc", "docs", "feat", "feature", "fix",
    "hotfix", "lint", "perf", "refactor", "release", "revert", "style", "test", "tests",
];

/// The component the task's first line names before `: `: the scope of `type(scope): ...`, or a
/// one-word prefix of at most 40 bytes that is not a change type (`searcher: ...`).
pub(super) fn subject_scope(task: &str) -> Option<String> {
    let subject = task.lines().next()?;
    let (prefix, _) = subject.split_once(": ")?;
    let prefix = prefix.trim_end_matches('!');
    let scope = match prefix.split_once('(') {
        Some((_, scope)) => scope.strip_suffix(')')?,
        None if CHANGE_TYPES.contains(&prefix.to_ascii_lowercase().as_str()) => return None,
        None => prefix,
    };
    (!scope.is_empty() && !scope.contains([' ', '(', ')']) && scope.len() <= 40)
        .then(|| scope.to_string())
}

/// A scope part or directory name as compared: case and `-`/`_` ignored.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// Whether `path` lies under a directory named like one of `scope`'s (folded) parts.
fn in_scope(scope: &[String], path: &str) -> bool {
    let mut directories = path.split('/');
    directories.next_back();
    directories.any(|directory| scope.contains(&folded(directory)))
}

/// Multiply the score of each file under the scope's directories by `SCOPE_FACTOR`.
pub(super) fn apply_scope(scope: &str, ranked: &mut [RankedFile]) {
    let parts: Vec<String> = scope
        .split('/')
        .filter(|part| !part.is_empty())
        .map(folded)
        .collect();
    for file in ranked.iter_mut() {
        if file.score <= 0.0 || !in_scope(&parts, &file.path) {
            continue;
        }
        let bonus = file.score * (SCOPE_FACTOR - 1.0);
        file.score += bonus;
        file.signals.push(Signal::new(
            "scope",
            bonus,
            format!("under `{scope}`, the component the task's subject names"),
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::subject_scope;
    use crate::context::{rank_documents, ContextQuery};

    #[test]
    fn the_subject_prefix_is_the_scope() {
        assert_eq!(
            subject_scope("searcher: fix a bug").as_deref(),
            Some("searcher")
        );
        assert_eq!(
            subject_scope("fix(printer): wrong count").as_deref(),
            Some("printer")
        );
        assert_eq!(
            subject_scope("docs(filters): fix typo").as_deref(),
            Some("filters")
        );
        // A change type is not a component.
        assert_eq!(subject_scope("doc: fix typo in --hidden docs"), None);
        assert_eq!(subject_scope("Fix the bug: it crashes"), None);
        assert_eq!(subject_scope("no prefix here"), None);
    }

    #[test]
    fn files_of_the_named_component_outrank_a_close_match_elsewhere() {
        let body = "fn count_lines(buffer: &[u8]) -> usize {\n    buffer.len()\n}\n";
        // The component's name is common in the code (a weak term, in a path too), as in a real
        // repository.
        let mut documents: Vec<(String, String)> = ["walk", "sink", "glue"]
            .iter()
            .map(|name| {
                (
                    format!("crates/searcher/src/{name}.rs"),
                    format!("fn {name}(searcher: &Searcher) {{}}\n"),
                )
            })
            .collect();
        documents.push((
            "crates/core/search.rs".to_string(),
            format!("{body}// count_lines reads long lines, long lines for the searcher\n"),
        ));
        documents.push((
            "crates/searcher/src/buffer.rs".to_string(),
            body.to_string(),
        ));
        let rank = |task: &str| {
            let ranking = rank_documents(
                &documents,
                &ContextQuery {
                    task: task.into(),
                    ..Default::default()
                },
            );
            ranking
                .files
                .iter()
                .map(|file| file.path.clone())
                .collect::<Vec<_>>()
        };
        // Without a scope the core file's extra words win; with `searcher:` the searcher's file
        // (its path matches the prefix as a term too, but that alone is not enough: the test
        // fails with a factor of 1).
        assert_eq!(
            rank("fix count_lines for long lines")[0],
            "crates/core/search.rs"
        );
        let scoped = rank_documents(
            &documents,
            &ContextQuery {
                task: "searcher: fix count_lines for long lines".into(),
                ..Default::default()
            },
        );
        assert_eq!(scoped.files[0].path, "crates/searcher/src/buffer.rs");
        let signal = scoped.files[0]
            .signals
            .iter()
            .find(|signal| signal.name == "scope")
            .unwrap();
        assert!(signal.detail.contains("`searcher`"), "{}", signal.detail);
    }
}
