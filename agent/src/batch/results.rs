//! The results file of `hone batch`: one JSON line per finished task, appended and flushed to disk
//! (fsync) before the next one, so a crash or a kill loses at most the line being written. Resuming
//! reads the ids of the complete lines only and cuts off a torn last line, so no finished task runs
//! again and no unfinished one is skipped.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A patch was produced and the tests pass with it.
    Verified,
    /// A patch applied but there was no test command to verify it with.
    Applied,
    /// The edit did not apply, the tests failed, or no candidate passed.
    Failed,
    /// The task could not run (bad repository, model unavailable, timeout of the whole task).
    Error,
}

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub id: String,
    pub status: Status,
    /// The unified diff of the task's patch (empty when none).
    pub diff: String,
    /// Agent iterations (0 for a patch task).
    pub iterations: u32,
    /// Wall time of the task.
    pub seconds: f64,
    /// Model tokens spent (prompt + completion; 0 for a patch task).
    pub tokens: u64,
    /// Why the task failed or errored, for people.
    pub error: Option<String>,
}

/// The results file, open for appending.
#[derive(Debug)]
pub struct ResultsFile {
    path: PathBuf,
    file: File,
}

/// What was already in the file when it was opened with `resume`.
#[derive(Debug, Default)]
pub struct Resumed {
    pub results: Vec<TaskResult>,
    pub done: HashSet<String>,
    /// Bytes of an incomplete last line that were cut off (left by a killed run).
    pub dropped_bytes: u64,
}

impl ResultsFile {
    /// Open `path` for appending. Without `resume` an existing non-empty file is refused, so an
    /// earlier run's results are never mixed with or lost to a new one.
    pub fn open(path: &Path, resume: bool) -> Result<(Self, Resumed)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| {
                Error::io(
                    format!("could not open {} for writing", path.display()),
                    source,
                )
            })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| Error::io(format!("could not read {}", path.display()), source))?;
        if !bytes.is_empty() && !resume {
            return Err(Error::ResultsExist {
                path: path.to_owned(),
            });
        }
        let complete = bytes
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |at| at + 1);
        let mut resumed = Resumed {
            dropped_bytes: (bytes.len() - complete) as u64,
            ..Resumed::default()
        };
        if resumed.dropped_bytes > 0 {
            // A torn line from a killed run: its task did not finish, so it runs again.
            file.set_len(complete as u64)
                .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
                .map_err(|source| {
                    Error::io(format!("could not truncate {}", path.display()), source)
                })?;
        }
        for (number, line) in bytes[..complete].split(|&byte| byte == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let result: TaskResult =
                serde_json::from_slice(line).map_err(|error| Error::ResultsLine {
                    path: path.to_owned(),
                    line: number + 1,
                    reason: error.to_string(),
                })?;
            resumed.done.insert(result.id.clone());
            resumed.results.push(result);
        }
        Ok((
            Self {
                path: path.to_owned(),
                file,
            },
            resumed,
        ))
    }

    /// Append one result and wait until it is on disk.
    pub fn append(&mut self, result: &TaskResult) -> Result<()> {
        let mut line = serde_json::to_vec(result).map_err(|source| Error::Json {
            context: "encoding a batch result".into(),
            source,
        })?;
        line.push(b'\n');
        // One write call per line: an interrupted run leaves at most one torn line, at the end.
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| {
                Error::io(
                    format!("could not write to {}", self.path.display()),
                    source,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn result(id: &str) -> TaskResult {
        TaskResult {
            id: id.to_owned(),
            status: Status::Verified,
            diff: "--- a/x\n+++ b/x\n".to_owned(),
            iterations: 0,
            seconds: 0.5,
            tokens: 0,
            error: None,
        }
    }

    #[test]
    fn resume_skips_complete_lines_and_cuts_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        {
            let (mut file, resumed) = ResultsFile::open(&path, false).unwrap();
            assert!(resumed.done.is_empty());
            file.append(&result("a")).unwrap();
            file.append(&result("b")).unwrap();
        }
        // A kill in the middle of writing "c".
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(br#"{"id":"c","status":"veri"#).unwrap();
        drop(raw);

        assert!(
            matches!(
                ResultsFile::open(&path, false),
                Err(Error::ResultsExist { path: refused }) if refused == path
            ),
            "an existing file is not resumed unless asked"
        );
        let (mut file, resumed) = ResultsFile::open(&path, true).unwrap();
        assert_eq!(
            resumed.done,
            HashSet::from(["a".to_owned(), "b".to_owned()])
        );
        assert!(resumed.dropped_bytes > 0);
        file.append(&result("c")).unwrap();
        drop(file);

        let (_, resumed) = ResultsFile::open(&path, true).unwrap();
        let ids: Vec<_> = resumed.results.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(resumed.dropped_bytes, 0);
    }
}
