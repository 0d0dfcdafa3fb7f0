//! Commits the task refers to: "Fix breakage introduced by 8f591682", "Simplify fix for #4025",
//! "Fix regression from #2844", "Follow up to #2107". A commit named by its id, and the commits
//! whose messages carry a pull request or issue number the task names (the merge of that pull
//! request, its squashed commit, earlier fixes of that issue), changed the files the task is
//! most likely about: what `git show 8f591682` and `git log --grep '#4025'` would tell an
//! engineer. History is read from `HEAD`, bounded in commits, and only when the task names a
//! reference, so a task without one costs nothing.

use std::collections::HashMap;

use super::fixes::{add_votes, changed_paths};
use super::{RankedFile, TaskFocus};

/// The bonus of the file with the largest vote, as a share of the best score (times the file's
/// kind weight). A reference is explicit, so it weighs more than similar past fixes (0.25).
const REFERENCED_WEIGHT: f64 = 0.5;
/// Commits read back from `HEAD` (merges included: a pull request's number is in its merge's
/// message) when looking for numbers the task names.
const HISTORY_COMMITS: usize = 1000;
/// A commit changing more files than this is a sweep (a release, a reformat): no vote.
const MAX_FILES_PER_VOTE: usize = 20;
/// At most this many numbers and ids are taken from a task (a pasted log can hold many).
const MAX_REFERENCES: usize = 8;
/// At most this many commits vote (the newest first).
const MAX_COMMITS: usize = 20;

/// What a task refers to: pull request or issue numbers (`#4025`) and commit ids (`8f591682`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct References {
    pub(super) numbers: Vec<String>,
    pub(super) ids: Vec<String>,
}

impl References {
    /// The references in `task`: `#` and 2–6 digits, not glued to a word or a path
    /// (`#4025`, `(#1514)`, `Refs: #3470`; not `issues/12#34` or `&#123;`), and 7–40 hex digits
    /// holding a letter and a digit as a word of their own (`8f591682`, not `deadbeef`).
    pub(super) fn of(task: &str) -> Self {
        let mut references = Self::default();
        let bytes = task.as_bytes();
        let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            if bytes[i] == b'#' {
                let glued = start > 0
                    && (word(bytes[start - 1]) || matches!(bytes[start - 1], b'/' | b'&'));
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|byte| byte.is_ascii_digit())
                    .count();
                i += 1 + digits;
                let ends_word = i >= bytes.len() || !word(bytes[i]);
                if !glued && (2..=6).contains(&digits) && ends_word {
                    let number = task[start..i].to_string();
                    if !references.numbers.contains(&number) {
                        references.numbers.push(number);
                    }
                }
                continue;
            }
            if !word(bytes[i]) {
                i += 1;
                continue;
            }
            while i < bytes.len() && word(bytes[i]) {
                i += 1;
            }
            let candidate = &task[start..i];
            let hex = candidate
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
            let mixed = candidate.bytes().any(|byte| byte.is_ascii_digit())
                && candidate.bytes().any(|byte| byte.is_ascii_alphabetic());
            if (7..=40).contains(&candidate.len())
                && hex
                && mixed
                && !references.ids.iter().any(|id| id == candidate)
            {
                references.ids.push(candidate.to_string());
            }
        }
        references.numbers.truncate(MAX_REFERENCES);
        references.ids.truncate(MAX_REFERENCES);
        references
    }

    fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.ids.is_empty()
    }
}

/// Whether `message` carries `number` (`#4025`) as a whole reference (not `#40251`).
fn mentions(message: &str, number: &str) -> bool {
    message.match_indices(number).any(|(at, _)| {
        !message[at + number.len()..]
            .bytes()
            .next()
            .is_some_and(|byte| byte.is_ascii_digit())
    })
}

/// The votes of the commits the task refers to, for the files they changed: each commit gives
/// each of its files one over the number of files it changed.
#[derive(Debug, Default)]
pub(super) struct ReferencedChanges {
    votes: HashMap<String, (f64, String)>,
    best: f64,
}

impl ReferencedChanges {
    /// Read the commits `task` refers to from `git`. Empty when it refers to none, or when the
    /// history cannot be read (the signal is optional).
    pub(super) fn read(git: &git2::Repository, task: &str) -> Self {
        let references = References::of(task);
        if references.is_empty() {
            return Self::default();
        }
        Self::try_read(git, &references).unwrap_or_default()
    }

    fn try_read(git: &git2::Repository, references: &References) -> Result<Self, git2::Error> {
        let mut commits: Vec<(git2::Commit<'_>, String)> = Vec::new();
        for id in &references.ids {
            let Ok(object) = git.revparse_single(id) else {
                continue;
            };
            if let Ok(commit) = object.peel_to_commit() {
                if !commits.iter().any(|(seen, _)| seen.id() == commit.id()) {
                    commits.push((commit, id.clone()));
                }
            }
        }
        if !references.numbers.is_empty() {
            let mut walk = git.revwalk()?;
            walk.push_head()?;
            for oid in walk.take(HISTORY_COMMITS) {
                let commit = git.find_commit(oid?)?;
                let message = commit.message().unwrap_or("");
                let Some(number) = references
                    .numbers
                    .iter()
                    .find(|number| mentions(message, number))
                else {
                    continue;
                };
                if !commits.iter().any(|(seen, _)| seen.id() == commit.id()) {
                    commits.push((commit, number.clone()));
                }
                if commits.len() >= MAX_COMMITS {
                    break;
                }
            }
        }
        let mut changes = Self::default();
        for (commit, reference) in commits {
            // What the commit (a merge: its pull request) brought to its first parent; a root
            // commit has none.
            if commit.parent_count() == 0 {
                continue;
            }
            let paths = changed_paths(git, &commit)?;
            if paths.is_empty() || paths.len() > MAX_FILES_PER_VOTE {
                continue;
            }
            let id = commit.id().to_string();
            let label = format!(
                "{} \"{}\" ({reference} in the task)",
                &id[..7],
                commit.summary().unwrap_or("")
            );
            let share = 1.0 / paths.len() as f64;
            for path in paths {
                let vote = changes.votes.entry(path).or_insert((0.0, label.clone()));
                vote.0 += share;
            }
        }
        changes.best = changes
            .votes
            .values()
            .map(|(total, _)| *total)
            .fold(0.0, f64::max);
        Ok(changes)
    }

    /// `path`'s vote as a share of the largest (0 to 1), with the commit that gave it.
    pub(super) fn vote(&self, path: &str) -> Option<(f64, &str)> {
        let (total, label) = self.votes.get(path)?;
        (self.best > 0.0).then(|| (total / self.best, label.as_str()))
    }
}

/// Add the referenced-commits signal to `ranked`: a file's bonus is its share of the largest
/// vote times [`REFERENCED_WEIGHT`] of the best score, weighed by its kind. A file the task's
/// words missed comes in only when it is source.
pub(super) fn apply_referenced(
    changes: &ReferencedChanges,
    ranked: &mut [RankedFile],
    focus: TaskFocus,
) {
    if changes.best <= 0.0 {
        return;
    }
    add_votes(ranked, focus, "referenced", REFERENCED_WEIGHT, |path| {
        let (share, label) = changes.vote(path)?;
        Some((share, format!("changed by {label}")))
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{mentions, ReferencedChanges, References};
    use crate::context::history::tests::{commit, ranked};

    #[test]
    fn numbers_and_commit_ids_are_told_from_other_words() {
        let references = References::of(
            "Fix breakage introduced by 8f591682 (#4031)\n\nRefs: #3470 #2899, see \
             https://github.com/x/y/issues/12#issuecomment-34 and &#123; deadbeef 1234567 #1 #1234567",
        );
        assert_eq!(references.numbers, ["#4031", "#3470", "#2899"]);
        assert_eq!(references.ids, ["8f591682"]);
        assert!(References::of("fix the crash in the parser")
            .numbers
            .is_empty());
        assert!(mentions("Merge pull request #4025 from x/y", "#4025"));
        assert!(!mentions("Merge pull request #40251 from x/y", "#4025"));
    }

    #[test]
    fn files_of_a_referenced_pull_request_or_commit_move_up_and_come_in() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let body = "def send(request):\n    return request\n";
        commit(
            &git,
            &[
                ("src/adapters.py", "def build(pool):\n    return pool\n"),
                ("src/sessions.py", body),
                ("src/models.py", body),
            ],
            "initial layout",
        );
        commit(
            &git,
            &[(
                "src/adapters.py",
                "def build(pool):\n    return pool or None\n",
            )],
            "Close the pool on errors (#4025)",
        );
        let second = commit(
            &git,
            &[("src/models.py", "def send(request):\n    return None\n")],
            "Return nothing",
        );
        commit(
            &git,
            &[("src/sessions.py", "def send(request):\n    return 1\n")],
            "Send once",
        );
        // No word of the task is in adapters.py; the pull request it names changed it.
        let (ranking, order) = ranked(dir.path(), "Simplify fix for #4025");
        assert_eq!(order.first().map(String::as_str), Some("src/adapters.py"));
        let signal = ranking.files[0]
            .signals
            .iter()
            .find(|signal| signal.name == "referenced")
            .unwrap();
        assert!(
            signal.detail.contains("#4025 in the task"),
            "{}",
            signal.detail
        );
        // A commit named by its id (whole here: a short id can be all digits, read as no id).
        let changes =
            ReferencedChanges::read(&git, &format!("Fix breakage introduced by {second}"));
        assert!(changes.vote("src/models.py").is_some());
        assert!(changes.vote("src/sessions.py").is_none());
        // A task without references reads no history.
        assert!(ReferencedChanges::read(&git, "send twice")
            .vote("src/models.py")
            .is_none());
    }
}
