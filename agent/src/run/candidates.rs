//! The per-iteration work on candidates that needs the repository: parsing and applying each in its
//! own sandbox (with the events and transcript entries that go with it), and the test feedback for
//! the model.

use std::collections::HashSet;

use hone_prompts::TestFeedback;
use hone_tools::{Patch, Repository, TestReport};

use super::evaluate::{self, fingerprint, NotTested, Prepared};
use super::generate::Generated;
use super::iteration::{Applied, ApplyFailure};
use super::report::{first_line, truncate_middle};
use super::{context, Run};
use crate::changes::ChangeSet;
use crate::events::{Event, FailStage};
use crate::{Error, Result};

impl Run<'_> {
    /// Parse and apply every candidate in its own sandbox; returns those ready to test and the
    /// first failure report. Creating the sandboxes and applying is file work, done on a blocking
    /// thread; the events and transcript entries follow in candidate order.
    pub(super) async fn apply_all(
        &mut self,
        iteration: usize,
        generated: &[Generated],
        carried: &ChangeSet,
        failed: &HashSet<u64>,
    ) -> Result<Applied> {
        let root = self.root.clone();
        let source = self.request.source.clone();
        let options = self.sandbox.clone();
        let carried = carried.clone();
        let failed = failed.clone();
        let patches: Vec<(usize, Patch)> = generated
            .iter()
            .filter_map(|candidate| Some((candidate.index, candidate.patch.as_ref().ok()?.clone())))
            .collect();
        let mut results = tokio::task::spawn_blocking(move || -> Result<Vec<_>> {
            let repo = Repository::open(&root)?;
            patches
                .iter()
                .map(|(index, patch)| {
                    evaluate::prepare(&repo, &source, &options, &carried, *index, patch, &failed)
                })
                .collect()
        })
        .await
        .map_err(|error| Error::Backend(format!("apply thread failed: {error}")))??
        .into_iter();
        let mut prepared: Vec<Prepared> = Vec::new();
        let mut first_failure: Option<ApplyFailure> = None;
        let mut seen: HashSet<u64> = HashSet::new();
        for candidate in generated {
            let number = candidate.index + 1;
            let cdir = format!("iteration-{iteration}/candidate-{number}");
            let patch = match &candidate.patch {
                Ok(patch) => patch,
                Err(error) => {
                    let message = error.to_string();
                    let report = format!(
                        "No edit blocks could be read from your answer: {message}. Use the SEARCH/REPLACE format exactly."
                    );
                    self.transcript.write(&format!("{cdir}/apply.txt"), &report);
                    self.emit(Event::CandidateFailed {
                        iteration,
                        candidate: number,
                        stage: FailStage::Parse,
                        reason: message,
                    });
                    first_failure.get_or_insert(ApplyFailure {
                        index: candidate.index,
                        report,
                    });
                    continue;
                }
            };
            self.transcript
                .write_json(&format!("{cdir}/edits.json"), patch);
            let Some(result) = results.next() else {
                break;
            };
            match result {
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
                    first_failure.get_or_insert(ApplyFailure {
                        index: candidate.index,
                        report: for_model,
                    });
                }
            }
        }
        Ok(Applied {
            prepared,
            first_failure,
        })
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
