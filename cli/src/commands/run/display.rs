//! `hone run`'s progress: a spinner on a terminal, plain lines on stderr otherwise, or JSON Lines
//! events on stdout with `--json` (`run.finished` held back until delivery has been reported, so
//! it is the last line).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use hone_agent::events::{Event, FailStage, Phase, PlanSource};
use indicatif::{ProgressBar, ProgressStyle};

/// Progress on stderr (a spinner on a terminal, plain lines otherwise) or JSON Lines on stdout.
pub(super) struct Display {
    json: bool,
    bar: Option<ProgressBar>,
    plain: bool,
    max_iterations: usize,
    stdout: Mutex<std::io::Stdout>,
    /// `--json`: the `run.finished` line, held back until delivery has been reported.
    finished: Mutex<Option<String>>,
}

impl Display {
    pub(super) fn new(json: bool, max_iterations: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            json,
            bar,
            plain: !terminal,
            max_iterations,
            stdout: Mutex::new(std::io::stdout()),
            finished: Mutex::new(None),
        }
    }

    /// Print the held `run.finished` line (JSON mode), so it is the last event.
    pub(super) fn release_finished(&self) {
        let line = self.finished.lock().ok().and_then(|mut held| held.take());
        if let (Some(line), Ok(mut stdout)) = (line, self.stdout.lock()) {
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.plain => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
            None => {}
        }
    }

    fn status(&self, text: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(text);
        }
    }

    pub(super) fn event(&self, event: &Event) {
        if self.json {
            if matches!(event, Event::RunFinished(_)) {
                if let (Ok(line), Ok(mut held)) =
                    (serde_json::to_string(event), self.finished.lock())
                {
                    *held = Some(line);
                }
                return;
            }
            if let (Ok(line), Ok(mut stdout)) = (serde_json::to_string(event), self.stdout.lock()) {
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
            return;
        }
        match event {
            Event::RunStarted { backend, model, candidates, test_command, mode, .. } => self.line(format!(
                "hone: {backend} model {model}, {mode}, {candidates} candidate(s) per iteration, tests: {test_command}"
            )),
            Event::Phase { iteration, phase } => {
                let name = match phase {
                    Phase::Context => "selecting context",
                    Phase::Plan => "planning",
                    Phase::Generate => "generating candidates",
                    Phase::Apply => "applying candidates",
                    Phase::Test if *iteration == 0 => "running the tests before any change",
                    Phase::Test => "testing candidates",
                };
                if *iteration == 0 {
                    self.status(name.to_owned());
                } else {
                    self.status(format!("iteration {iteration}/{}: {name}", self.max_iterations));
                }
            }
            Event::Plan { items, source } => {
                let regions: Vec<String> = items
                    .iter()
                    .map(|item| if item.start_line > 0 { format!("{}:{}-{}", item.path, item.start_line, item.end_line) } else { item.path.clone() })
                    .collect();
                let source = match source {
                    PlanSource::Model => "model",
                    PlanSource::Fallback => "fallback",
                };
                // Paths keep their case (`Cargo.toml`, not `cargo.toml`).
                self.line(format!("plan ({source}): {}", regions.join(", ")));
            }
            Event::CandidateFailed { iteration, candidate, stage, reason } if *stage != FailStage::Test => {
                let stage = match stage {
                    FailStage::Parse => "parse",
                    FailStage::Apply => "apply",
                    FailStage::Duplicate => "duplicate",
                    FailStage::Test => "test",
                };
                self.line(format!("  {iteration}.{candidate}: {stage}: {reason}"));
            }
            Event::TestFinished { iteration, candidate, passed, timed_out, failing_tests, seconds } => {
                let verdict = match (passed, timed_out) {
                    (true, _) => "passed".to_owned(),
                    (false, true) => "timed out".to_owned(),
                    (false, false) if failing_tests.is_empty() => "failed".to_owned(),
                    (false, false) => format!("failed ({} failing)", failing_tests.len()),
                };
                self.line(format!("  {iteration}.{candidate}: tests {verdict} in {seconds:.1} s"));
            }
            _ => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
