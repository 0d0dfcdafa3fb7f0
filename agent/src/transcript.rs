//! Run transcripts: every run writes a folder (by default `.git/hone/runs/<id>/`, inside `.git` so it
//! is never tracked) with the request, prompts (and their token counts by section), raw model outputs, diffs, test logs, the events as
//! JSON Lines and a final `summary.json`. `hone runs` lists them. Writing a transcript never stops a
//! run: failures are logged and ignored.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::events::{Event, RunSummary};
use crate::{Error, Result};

/// The writer of one run's folder.
#[derive(Debug)]
pub struct Transcript {
    dir: Option<PathBuf>,
    events: Mutex<Option<File>>,
}

impl Transcript {
    /// Create `<runs_dir>/<id>/`.
    pub fn create(runs_dir: &Path, id: &str) -> Result<Self> {
        let dir = runs_dir.join(id);
        fs::create_dir_all(&dir)
            .map_err(|source| Error::io(format!("creating {}", dir.display()), source))?;
        let events = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("events.jsonl"))
            .map_err(|source| Error::io(format!("creating {}", dir.display()), source))?;
        Ok(Self {
            dir: Some(dir),
            events: Mutex::new(Some(events)),
        })
    }

    /// A transcript that records nothing (tests, or when the folder cannot be created).
    pub fn disabled() -> Self {
        Self {
            dir: None,
            events: Mutex::new(None),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Write `relative` (e.g. `iteration-1/candidate-2/diff.patch`) with `contents`.
    pub fn write(&self, relative: &str, contents: &str) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(relative);
        let result = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&path, contents));
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "could not write to the run transcript");
        }
    }

    /// Write a value as pretty JSON.
    pub fn write_json<T: Serialize>(&self, relative: &str, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.write(relative, &(text + "\n")),
            Err(error) => tracing::warn!(%error, "could not serialise {relative}"),
        }
    }

    /// Record what a request sent, in tokens: each section, the total, the answer budget asked
    /// for and the backend's window when known.
    pub fn write_prompt_tokens(
        &self,
        relative: &str,
        sections: &[(String, usize)],
        max_tokens: usize,
        window: Option<usize>,
    ) {
        let total: usize = sections.iter().map(|(_, tokens)| tokens).sum();
        self.write_json(
            relative,
            &serde_json::json!({
                "sections": sections
                    .iter()
                    .map(|(name, tokens)| serde_json::json!({"name": name, "tokens": tokens}))
                    .collect::<Vec<_>>(),
                "total": total,
                "max_tokens": max_tokens,
                "window": window,
            }),
        );
    }

    /// Append an event to `events.jsonl`.
    pub fn record(&self, event: &Event) {
        let Ok(mut guard) = self.events.lock() else {
            return;
        };
        let Some(file) = guard.as_mut() else { return };
        if let Ok(line) = serde_json::to_string(event) {
            if let Err(error) = writeln!(file, "{line}") {
                tracing::warn!(%error, "could not append to the run transcript");
            }
        }
    }
}

/// A new run id: UTC time to the second plus 4 hex digits, so ids sort by time and do not collide.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let time = seconds % 86_400;
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{salt:04x}",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One listed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunListing {
    pub id: String,
    pub dir: PathBuf,
    /// From `summary.json`; `None` for a run that did not finish (killed, crashed).
    pub summary: Option<serde_json::Value>,
    /// From `request.json`.
    pub task: Option<String>,
    /// From `error.txt`: the run stopped on an error (backend, setup).
    pub error: Option<String>,
}

/// Runs under `runs_dir`, newest first.
pub fn list_runs(runs_dir: &Path) -> Result<Vec<RunListing>> {
    let entries = match fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::io(format!("reading {}", runs_dir.display()), source)),
    };
    let mut runs: Vec<RunListing> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| read_run(&entry.path()))
        .collect();
    runs.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(runs)
}

/// Read one run folder.
pub fn read_run(dir: &Path) -> RunListing {
    let read_json = |name: &str| -> Option<serde_json::Value> {
        fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
    };
    let task = read_json("request.json").and_then(|request| {
        request
            .get("task")
            .and_then(|task| task.as_str())
            .map(str::to_owned)
    });
    RunListing {
        id: dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        summary: read_json("summary.json"),
        task,
        error: fs::read_to_string(dir.join("error.txt"))
            .ok()
            .map(|text| text.trim().to_owned()),
    }
}

/// Write the final summary.
pub fn write_summary(transcript: &Transcript, summary: &RunSummary) {
    transcript.write_json("summary.json", summary);
    transcript.write("final.diff", &summary.diff);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn run_ids_sort_by_time() {
        let id = new_run_id();
        assert_eq!(id.len(), "20261127-120501-ab12".len(), "{id}");
        assert!(id.starts_with("20"), "{id}");
    }

    #[test]
    fn writes_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let transcript = Transcript::create(dir.path(), "20260101-000000-0001").unwrap();
        transcript.write_json("request.json", &serde_json::json!({"task": "fix it"}));
        transcript.write("iteration-1/candidate-1/response.txt", "hello");
        transcript.record(&Event::Phase {
            iteration: 1,
            phase: crate::events::Phase::Plan,
        });
        Transcript::create(dir.path(), "20260102-000000-0001").unwrap();
        let runs = list_runs(dir.path()).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].task.as_deref(), Some("fix it"));
        assert!(runs[0].summary.is_none());
        let events = fs::read_to_string(runs[1].dir.join("events.jsonl")).unwrap();
        assert!(events.contains("\"event\":\"phase\""), "{events}");
    }
}
