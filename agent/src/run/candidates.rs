//! The per-iteration work on candidates that needs the repository: parsing and applying each in its
//! own sandbox (with the events and transcript entries that go with it), and the test feedback for
//! the model.

use std::collections::HashSet;

use hone_prompts::TestFeedback;
use hone_tools::{Repository, TestReport};

use super::evaluate::{self, fingerprint, NotTested, Prepared};
use super::generate::Generated;
use super::report::{first_line, truncate_middle};
use super::{context, Run};
use crate::changes::ChangeSet;
use crate::events::{Event, FailStage};
use crate::Result;

impl Run<'_> {
    /// Parse and apply every candidate in its own sandbox; returns those ready to test and the
    /// first failure report (candidate index, text for the model).
    #[allow(clippy::type_complexity)]
    pub(super) fn apply_all(
        &mut self,
        iteration: usize,
        generated: &[Generated],
        carried: &ChangeSet,
        failed: &HashSet<u64>,
    ) -> Result<(Vec<Prepared>, Option<(usize, String)>)> {
        let repo = self.repo()?;
        let mut prepared: Vec<Prepared> = Vec::new();
        let mut first_failure: Option<(usize, String)> = None;
        let mut seen: HashSet<u64> = HashSet::new();
        for candidate in generated {
            let number = candidate.index + 1;
            let cdir = format!("iteration-{iteration}/candidate-{number}");
            let patch = match &candidate.patch {
                Ok(patch) => patch,
                Err(message) => {
                    let report = format!(
                        "No edit blocks could be read from your answer: {message}. Use the SEARCH/REPLACE format exactly."
                    );
                    self.transcript.write(&format!("{cdir}/apply.txt"), &report);
                    self.emit(Event::CandidateFailed {
                        iteration,
                        candidate: number,
                        stage: FailStage::Parse,
                        reason: message.clone(),
                    });
                    first_failure.get_or_insert((candidate.index, report));
                    continue;
                }
            };
            self.transcript
                .write_json(&format!("{cdir}/edits.json"), patch);
            match evaluate::prepare(
                &repo,
                &self.request.source,
                &self.sandbox,
                carried,
                candidate.index,
                patch,
                failed,
            )? {
                Ok(ready) => {
                    let key = fingerprint(&ready.total);
                    if !seen.insert(key) {
                        self.emit(Event::CandidateFailed {
                            iteration,
                            candidate: number,
                            stage: FailStage::Duplicate,
                            reason: "same change as another candidate of this iteration".into(),
                        });
                        continue;
                    }
                    self.emit(Event::CandidateApplied {
                        iteration,
                        candidate: number,
                        files: ready.total.paths(),
                        diff_lines: ready.total.changed_lines(),
                    });
                    prepared.push(ready);
                }
                Err(NotTested::Duplicate) => {
                    self.emit(Event::CandidateFailed {
                        iteration,
                        candidate: number,
                        stage: FailStage::Duplicate,
                        reason: "same change as a candidate that already failed: not tested again"
                            .into(),
                    });
                }
                Err(NotTested::Apply(report)) => {
                    let for_model = hone_tools::render_for_model(&report);
                    self.transcript.write(
                        &format!("{cdir}/apply.txt"),
                        &hone_tools::render_for_people(&report),
                    );
                    self.emit(Event::CandidateFailed {
                        iteration,
                        candidate: number,
                        stage: FailStage::Apply,
                        reason: first_line(&for_model).to_owned(),
                    });
                    first_failure.get_or_insert((candidate.index, for_model));
                }
            }
        }
        Ok((prepared, first_failure))
    }

    pub(super) fn test_feedback(
        &self,
        repo: &Repository,
        report: &TestReport,
        state: &ChangeSet,
        reverted: bool,
    ) -> Result<String> {
        let locations =
            context::failure_locations(repo, &self.request.source, state, &report.output);
        let feedback = TestFeedback {
            command: report.command.clone(),
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            timeout_seconds: self.test_timeout().as_secs(),
            failing_tests: report.failed_tests.clone(),
            locations,
            output: truncate_middle(&report.output, 6000),
            output_truncated: report.output_truncated || report.output.len() > 6000,
            reverted,
        };
        Ok(hone_prompts::test_feedback(&feedback)?)
    }
}
