//! Similar past fixes: commits whose messages read like the task vote for the files they changed.
//! A bug tends to recur where similar bugs were fixed, so the files changed by the commits most
//! like the task move up, and a source file the task's words miss can come in — the
//! similar-bug-report signal of BugLocator (Zhou, Zhang and Lo, "Where should the bugs be fixed?",
//! ICSE 2012), with commit messages in place of bug reports. History is read from `HEAD` only,
//! bounded in commits and in age, and only the most similar commits are diffed, so its cost does
//! not grow with the repository.

use std::collections::HashMap;

use super::terms::{for_each_term, is_stopword};
use super::{FileClass, RankedFile, Signal, TaskFocus};

/// The bonus of the file with the largest vote, as a share of the best score. Chosen on the
/// benchmark's held-out slice (`--skip 12`): 0.2 to 0.3 gave the same top 5, 0.5 fewer.
const SIMILAR_FIX_WEIGHT: f64 = 0.25;
/// Commits read back from `HEAD` (merges skipped).
const HISTORY_COMMITS: usize = 300;
/// Commits older than this before `HEAD`'s commit are not read.
const HISTORY_MAX_AGE_SECONDS: i64 = 3 * 365 * 24 * 60 * 60;
/// The most similar commits that vote (the only ones diffed).
const VOTING_COMMITS: usize = 20;
/// A commit changing more files than this is a sweep (a rename, a reformat), not a fix: no vote.
const MAX_FILES_PER_VOTE: usize = 10;

/// The votes of past commits for files: BugLocator's `SimiScore`, the sum over similar commits
/// of their similarity to the task divided by the number of files each changed.
#[derive(Debug, Default)]
pub(super) struct SimilarFixes {
    votes: HashMap<String, Vote>,
    best: f64,
}

/// One file's vote: its total, and the commit that gave it the most (for people).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Vote {
    pub(super) total: f64,
    /// The short id and subject of the commit that voted most for the file.
    pub(super) commit: String,
    pub(super) similarity: f64,
}

/// A commit message or task as a vector: each term's log-scaled count.
fn term_counts(text: &str) -> HashMap<String, f64> {
    let mut counts: HashMap<String, f64> = HashMap::new();
    for_each_term(text, |term| {
        if term.len() >= 2 && !is_stopword(term) && !term.bytes().all(|b| b.is_ascii_digit()) {
            *counts.entry(term.to_string()).or_default() += 1.0;
        }
    });
    for count in counts.values_mut() {
        *count = 1.0 + count.ln();
    }
    counts
}

/// Cosine similarity of `task` to each message, terms weighted by their inverse frequency among
/// the messages (a word in every commit message says nothing).
pub(super) fn similarities(task: &str, messages: &[&str]) -> Vec<f64> {
    let documents: Vec<HashMap<String, f64>> = messages
        .iter()
        .map(|message| term_counts(message))
        .collect();
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for document in &documents {
        for term in document.keys() {
            *frequency.entry(term.as_str()).or_default() += 1;
        }
    }
    let n = documents.len() as f64;
    let idf = |term: &str| {
        frequency
            .get(term)
            .map_or(0.0, |&df| (n / df as f64 + 1.0).ln())
    };
    let weigh = |document: &HashMap<String, f64>| -> (HashMap<String, f64>, f64) {
        let weighted: HashMap<String, f64> = document
            .iter()
            .map(|(term, count)| (term.clone(), count * idf(term)))
            .collect();
        let norm = weighted.values().map(|w| w * w).sum::<f64>().sqrt();
        (weighted, norm)
    };
    let (query, query_norm) = weigh(&term_counts(task));
    documents
        .iter()
        .map(|document| {
            let (weighted, norm) = weigh(document);
            if norm == 0.0 || query_norm == 0.0 {
                return 0.0;
            }
            let dot: f64 = query
                .iter()
                .filter_map(|(term, w)| weighted.get(term).map(|other| w * other))
                .sum();
            dot / (norm * query_norm)
        })
        .collect()
}

/// The newest `HISTORY_COMMITS` commits reachable from `HEAD` that are not merges, newest
/// first, no older than `HISTORY_MAX_AGE_SECONDS` before `HEAD`'s: all branches merged into
/// `HEAD`, not only first parents, since where work is merged from branches the fixes themselves
/// are off the first-parent line. Walked by hand with a queue by commit time, reading only the
/// commits it returns and their parents (libgit2's time-sorted revwalk reads the whole history
/// before it returns the first commit).
fn recent_commits(git: &git2::Repository) -> Result<Vec<git2::Commit<'_>>, git2::Error> {
    let head = git.head()?.peel_to_commit()?;
    let newest = head.time().seconds();
    let mut queue = std::collections::BinaryHeap::new();
    let mut seen = std::collections::HashSet::new();
    seen.insert(head.id());
    queue.push((newest, head.id()));
    let mut commits = Vec::new();
    while let Some((time, oid)) = queue.pop() {
        if commits.len() >= HISTORY_COMMITS || newest - time > HISTORY_MAX_AGE_SECONDS {
            break;
        }
        let commit = git.find_commit(oid)?;
        for parent in commit.parents() {
            if seen.insert(parent.id()) {
                queue.push((parent.time().seconds(), parent.id()));
            }
        }
        if commit.parent_count() == 1 {
            commits.push(commit);
        }
    }
    Ok(commits)
}

/// The files `commit` changed against its first parent (for a merge, what it brought in) and
/// left in the tree (a deleted file cannot be fixed again).
pub(super) fn changed_paths(
    git: &git2::Repository,
    commit: &git2::Commit<'_>,
) -> Result<Vec<String>, git2::Error> {
    let parent = commit.parent(0)?.tree()?;
    let diff = git.diff_tree_to_tree(Some(&parent), Some(&commit.tree()?), None)?;
    Ok(diff
        .deltas()
        .filter(|delta| delta.status() != git2::Delta::Deleted)
        .filter_map(|delta| delta.new_file().path().and_then(|path| path.to_str()))
        .map(str::to_string)
        .collect())
}

impl SimilarFixes {
    /// Read the recent history of `git`'s `HEAD` and let the commits most like `task` vote.
    /// Empty without history (or when it cannot be read: the signal is optional).
    pub(super) fn read(git: &git2::Repository, task: &str) -> Self {
        Self::try_read(git, task).unwrap_or_default()
    }

    fn try_read(git: &git2::Repository, task: &str) -> Result<Self, git2::Error> {
        let commits = recent_commits(git)?;
        let messages: Vec<&str> = commits
            .iter()
            .map(|commit| commit.message().unwrap_or(""))
            .collect();
        let similarity = similarities(task, &messages);
        let mut order: Vec<usize> = (0..commits.len())
            .filter(|&i| similarity[i] > 0.0)
            .collect();
        order.sort_by(|&a, &b| similarity[b].total_cmp(&similarity[a]).then(a.cmp(&b)));
        order.truncate(VOTING_COMMITS);
        let mut fixes = Self::default();
        for index in order {
            let commit = &commits[index];
            let paths = changed_paths(git, commit)?;
            if paths.is_empty() || paths.len() > MAX_FILES_PER_VOTE {
                continue;
            }
            let share = similarity[index] / paths.len() as f64;
            let subject = commit.summary().unwrap_or("").to_string();
            let id = commit.id().to_string();
            let label = format!("{} \"{subject}\"", &id[..id.len().min(7)]);
            for path in paths {
                let vote = fixes.votes.entry(path).or_insert(Vote {
                    total: 0.0,
                    commit: label.clone(),
                    similarity: similarity[index],
                });
                vote.total += share;
                if similarity[index] > vote.similarity {
                    vote.commit = label.clone();
                    vote.similarity = similarity[index];
                }
            }
        }
        fixes.best = fixes
            .votes
            .values()
            .map(|vote| vote.total)
            .fold(0.0, f64::max);
        Ok(fixes)
    }

    /// `path`'s vote as a share of the largest (0 to 1), with the vote, when similar commits
    /// changed it.
    pub(super) fn vote(&self, path: &str) -> Option<(f64, &Vote)> {
        let vote = self.votes.get(path)?;
        (self.best > 0.0).then(|| (vote.total / self.best, vote))
    }
}

/// Add the similar-fixes signal to `ranked`: a file's bonus is its share of the largest vote
/// times `SIMILAR_FIX_WEIGHT` of the best score, weighed by its kind. A file the task's words
/// missed comes in only when it is source.
pub(super) fn apply_similar_fixes(
    fixes: &SimilarFixes,
    ranked: &mut [RankedFile],
    focus: TaskFocus,
) {
    add_votes(ranked, focus, "fixes", SIMILAR_FIX_WEIGHT, |path| {
        let (share, vote) = fixes.vote(path)?;
        let detail = format!(
            "changed by past commits like the task, most by {} (similarity {:.2})",
            vote.commit, vote.similarity
        );
        Some((share, detail))
    });
}

/// Add a signal `name` from votes of commits for files: a file's bonus is its share of the
/// largest vote (`vote` gives it, 0 to 1, with the signal's words) times `weight` of the best
/// score, weighed by its kind. A file the task's words missed comes in only when it is source.
pub(super) fn add_votes(
    ranked: &mut [RankedFile],
    focus: TaskFocus,
    name: &'static str,
    weight: f64,
    vote: impl Fn(&str) -> Option<(f64, String)>,
) {
    let best = ranked.iter().map(|file| file.score).fold(0.0, f64::max);
    let best = if best > 0.0 { best } else { 1.0 };
    for file in ranked.iter_mut() {
        let Some((share, detail)) = vote(&file.path) else {
            continue;
        };
        if file.score <= 0.0 && file.class != FileClass::Source {
            continue;
        }
        let bonus = weight * share * best * file.class.weight(focus);
        if bonus <= 0.0 {
            continue;
        }
        file.score += bonus;
        file.signals.push(Signal::new(name, bonus, detail));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{similarities, SimilarFixes};
    use crate::context::history::tests::{commit, ranked};

    #[test]
    fn similarity_favours_shared_rare_words_and_is_zero_without_overlap() {
        let messages = [
            "fix crash when the cookie jar is empty",
            "update docs for the release",
            "update docs for the cookie options",
            "update docs for the config",
        ];
        let similarity = similarities("crash with an empty cookie jar", &messages);
        assert!(similarity[0] > similarity[2], "{similarity:?}");
        assert!(similarity[2] > 0.0, "{similarity:?}");
        assert_eq!(similarity[1], 0.0);
        assert_eq!(similarity[3], 0.0);
    }

    #[test]
    fn files_changed_by_a_similar_past_fix_move_up_and_come_in() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let body = "def load_items(source):\n    return list(source)\n";
        commit(
            &git,
            &[
                ("src/alpha.py", body),
                ("src/beta.py", body),
                ("src/storage.py", "def keep(values):\n    return values\n"),
                ("src/render.py", "def render(page):\n    return page\n"),
            ],
            "initial layout",
        );
        commit(
            &git,
            &[
                ("src/beta.py", &format!("{body}# guard\n")),
                (
                    "src/storage.py",
                    "def keep(values):\n    return values or []\n",
                ),
            ],
            "Fix crash when the cookie jar is empty",
        );
        // The newest change is alpha's (so recency favours alpha, not beta).
        commit(
            &git,
            &[
                ("src/alpha.py", &format!("{body}# tidy\n")),
                ("src/render.py", "def render(page):\n    return str(page)\n"),
            ],
            "Render pages as text",
        );
        let (ranking, order) = ranked(
            dir.path(),
            "load_items crashes when the cookie jar is empty",
        );
        // beta (equal text to alpha, less recent) leads on the past fix; storage.py, which no word of
        // the task matches, comes in; render.py, changed by an unlike commit, does not.
        assert_eq!(
            order,
            ["src/beta.py", "src/alpha.py", "src/storage.py"],
            "{ranking:#?}"
        );
        let fix = ranking.files[0]
            .signals
            .iter()
            .find(|signal| signal.name == "fixes")
            .unwrap();
        assert!(
            fix.detail
                .contains("\"Fix crash when the cookie jar is empty\""),
            "{}",
            fix.detail
        );
    }

    #[test]
    fn a_sweeping_commit_does_not_vote() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let files: Vec<(String, String)> = (0..11)
            .map(|i| (format!("src/m{i}.py"), format!("x = {i}\n")))
            .collect();
        let first: Vec<(&str, &str)> = files
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        commit(&git, &first, "initial layout");
        let changed: Vec<(String, String)> = files
            .iter()
            .map(|(path, text)| (path.clone(), format!("{text}# fixed\n")))
            .collect();
        let changed: Vec<(&str, &str)> = changed
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        commit(&git, &changed, "Fix crash when the cookie jar is empty");
        let fixes = SimilarFixes::read(&git, "crash when the cookie jar is empty");
        assert!(fixes.vote("src/m0.py").is_none());
        // Ten files are a fix, and vote.
        let again: Vec<(String, String)> = files
            .iter()
            .take(10)
            .map(|(path, text)| (path.clone(), format!("{text}# fixed again\n")))
            .collect();
        let again: Vec<(&str, &str)> = again
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        commit(&git, &again, "Fix crash when the cookie jar is empty");
        let fixes = SimilarFixes::read(&git, "crash when the cookie jar is empty");
        assert!(fixes.vote("src/m0.py").is_some());
    }
}
