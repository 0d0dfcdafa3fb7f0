//! Recent history as a prior: the files the last commits changed. Fixes cluster where work
//! happened lately (a follow-up to a change, a regression it introduced), so among files the task's
//! words already match, a recently changed one moves up a little — the version-history prior of
//! IR bug localisation (Sisman and Kak, "Incorporating version histories in information retrieval
//! based bug localization", MSR 2012). It never brings in a file the text does not match.

use std::collections::HashMap;

use super::{RankedFile, Signal, TaskFocus};

/// Commits read back from `HEAD` (first parents only, merges skipped).
const RECENT_COMMITS: usize = 30;
/// Commits after which a change counts half as much.
const HALF_LIFE_COMMITS: f64 = 10.0;
/// The bonus of a file changed in the last commit, as a share of the best score.
const RECENCY_WEIGHT: f64 = 0.2;

/// For each path a recent commit changed, how recent: 1 for the newest commit, halving every
/// `HALF_LIFE_COMMITS` commits back. Empty without commits (or when history cannot be read: the
/// prior is optional).
#[derive(Debug, Default)]
pub(super) struct RecentChanges {
    recency: HashMap<String, f64>,
}

impl RecentChanges {
    /// Read the last commits of `git`'s `HEAD`.
    pub(super) fn read(git: &git2::Repository) -> Self {
        Self::try_read(git).unwrap_or_default()
    }

    fn try_read(git: &git2::Repository) -> Result<Self, git2::Error> {
        let mut walk = git.revwalk()?;
        walk.push_head()?;
        walk.simplify_first_parent()?;
        let mut recency = HashMap::new();
        let mut age = 0;
        for oid in walk {
            if age >= RECENT_COMMITS {
                break;
            }
            let commit = git.find_commit(oid?)?;
            if commit.parent_count() != 1 {
                continue;
            }
            let parent = commit.parent(0)?.tree()?;
            let diff = git.diff_tree_to_tree(Some(&parent), Some(&commit.tree()?), None)?;
            let weight = 0.5f64.powf(age as f64 / HALF_LIFE_COMMITS);
            for delta in diff.deltas() {
                if let Some(path) = delta.new_file().path().and_then(|path| path.to_str()) {
                    recency.entry(path.to_string()).or_insert(weight);
                }
            }
            age += 1;
        }
        Ok(Self { recency })
    }

    /// How recently `path` changed (0 when not in the last commits).
    pub(super) fn recency(&self, path: &str) -> f64 {
        self.recency.get(path).copied().unwrap_or(0.0)
    }

    /// The version-history prior: among the files the task matched, recently changed ones move
    /// up by a share of the best score (so it reorders close files, whatever the scale of
    /// scores).
    pub(super) fn apply(&self, ranked: &mut [RankedFile], focus: TaskFocus) {
        let best = ranked.iter().map(|file| file.score).fold(0.0, f64::max);
        for file in ranked.iter_mut().filter(|file| file.score > 0.0) {
            let recency = self.recency(&file.path);
            if recency <= 0.0 {
                continue;
            }
            let bonus = RECENCY_WEIGHT * recency * best * file.class.weight(focus);
            file.score += bonus;
            file.signals.push(Signal::new(
                "recent",
                bonus,
                format!("changed {} commits ago", Self::commits_back(recency)),
            ));
        }
    }

    /// How many commits back `recency` means, for people.
    pub(super) fn commits_back(recency: f64) -> usize {
        (-recency.log2() * HALF_LIFE_COMMITS).round() as usize
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::Path;

    use crate::context::{select_context, ContextQuery};
    use crate::Repository;

    /// `select_context` for `task` on the repository at `dir`, and its files' paths in rank order.
    pub(in crate::context) fn ranked(
        dir: &Path,
        task: &str,
    ) -> (crate::context::ContextRanking, Vec<String>) {
        let repo = Repository::discover(dir).unwrap();
        let ranking = select_context(
            &repo,
            &ContextQuery {
                task: task.into(),
                ..Default::default()
            },
        )
        .unwrap();
        let order = ranking.files.iter().map(|file| file.path.clone()).collect();
        (ranking, order)
    }

    /// Write `files` into the work tree of `git` and commit them all; the new commit's id.
    pub(in crate::context) fn commit(
        git: &git2::Repository,
        files: &[(&str, &str)],
        message: &str,
    ) -> git2::Oid {
        let root = git.workdir().unwrap().to_path_buf();
        let mut index = git.index().unwrap();
        for (path, text) in files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("t", "t@x").unwrap();
        let parents: Vec<git2::Commit> = git
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        git.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
    }

    #[test]
    fn a_recently_changed_file_ranks_above_an_equal_match_and_brings_in_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let body = "def render_page(page):\n    return page.title\n";
        commit(
            &git,
            &[
                ("src/alpha.py", body),
                ("src/beta.py", body),
                ("src/gamma.py", "x = 1\n"),
            ],
            "first",
        );
        // beta changes (one more line: a little longer, so it ranks below alpha on text alone),
        // then unrelated files change several times.
        commit(
            &git,
            &[("src/beta.py", &format!("{body}# tidy\n"))],
            "tidy beta",
        );
        for round in 0..3 {
            commit(
                &git,
                &[("src/gamma.py", &format!("x = {round}\n"))],
                "gamma",
            );
        }
        let (ranking, order) = ranked(dir.path(), "render_page shows the wrong page title");
        assert_eq!(order, ["src/beta.py", "src/alpha.py"], "{ranking:#?}");
        let recent = ranking.files[0]
            .signals
            .iter()
            .find(|signal| signal.name == "recent")
            .unwrap();
        assert_eq!(recent.detail, "changed 3 commits ago");
        // Without history (documents ranked in memory) alpha wins the tie on length.
        let documents: Vec<(String, String)> = ["src/alpha.py", "src/beta.py"]
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(dir.path().join(path)).unwrap();
                (path.to_string(), text)
            })
            .collect();
        let plain = crate::context::rank_documents(
            &documents,
            &ContextQuery {
                task: "render_page shows the wrong page title".into(),
                ..Default::default()
            },
        );
        assert_eq!(plain.files[0].path, "src/alpha.py");
    }
}
