//! One iteration of the loop, as named steps: [`Run::generate`] the candidates, [`Run::apply`]
//! each in its own sandbox (on a blocking thread), [`Run::test`] them concurrently,
//! [`Run::choose`] the smallest passing change or the best failure, and [`Run::feed_back`] that
//! failure into the conversation for the next iteration. [`Conversation`] is what one iteration
//! leaves to the next; [`IterationOutcome`] says how it ended.

use std::collections::HashSet;
use std::time::Instant;

use hone_prompts::PlanItem;
use hone_tools::TestReport;

use super::evaluate::{self, fingerprint, Prepared, TestSettings, Tested};
use super::generate::{self, Generated};
use super::report::{failure_rank, first_line, render_messages, summarize_failure};
use super::{context, Attempt, Run};
use crate::changes::ChangeSet;
use crate::events::{Event, FailStage, Phase};
use crate::model::Message;
use crate::{Error, Result};

/// What one iteration leaves to the next: the chat so far, the changes built on, and the changes
/// already known to fail.
#[derive(Debug)]
pub(super) struct Conversation {
    pub messages: Vec<Message>,
    /// Token counts of the first task message's sections (for `prompt-tokens.json`).
    pub task_sections: Vec<(String, usize)>,
    pub window: Option<usize>,
    /// Answer budget of an edit-blocks request.
    pub max_tokens: usize,
    pub plan: Vec<PlanItem>,
    /// The best failure's changes, which the next candidates start from (edit blocks only).
    pub carried: ChangeSet,
    /// Fingerprints of changes that failed their tests.
    pub failed: HashSet<u64>,
    /// What the last failure was, for the next infill prompt.
    pub infill_feedback: Option<String>,
}

/// How an iteration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IterationOutcome {
    /// A candidate passed; it is in `Run::passed`.
    Passed,
    /// No candidate passed; the best failure was fed back.
    Failed,
    /// The budget ran out during a model call.
    OutOfBudget,
}

/// Candidates whose edits applied, and the first failure to report to the model when none did.
#[derive(Debug)]
pub(super) struct Applied {
    pub prepared: Vec<Prepared>,
    pub first_failure: Option<ApplyFailure>,
}

/// A candidate that could not be read or applied, and the report the model gets for it.
#[derive(Debug)]
pub(super) struct ApplyFailure {
    pub index: usize,
    pub report: String,
}

/// A candidate that failed its tests.
#[derive(Debug)]
struct FailedCandidate {
    candidate: Prepared,
    report: TestReport,
    /// It passed only by running fewer tests or editing them: not a base to build on.
    removed_tests: bool,
}

/// What the tests of one iteration decided.
#[derive(Debug, Default)]
struct Choice {
    /// The smallest passing change (candidate index, changes).
    passing: Option<(usize, ChangeSet)>,
    /// The failure closest to passing.
    best_failed: Option<FailedCandidate>,
}

impl Run<'_> {
    /// Generate, apply, test and choose once.
    pub(super) async fn iterate(
        &mut self,
        iteration: usize,
        conversation: &mut Conversation,
    ) -> Result<IterationOutcome> {
        let started = Instant::now();
        self.summary.iterations = iteration;
        let Some(generated) = self.generate(iteration, conversation).await? else {
            return Ok(IterationOutcome::OutOfBudget);
        };
        let applied = self.apply(iteration, &generated, conversation).await?;
        let tested = self.test(iteration, applied.prepared).await;
        let choice = self.choose(iteration, tested, conversation)?;
        if let Some((index, changes)) = choice.passing {
            self.emit(Event::IterationFinished {
                iteration,
                passed: true,
                best_candidate: Some(index + 1),
                seconds: started.elapsed().as_secs_f64(),
            });
            self.passed = Some(changes);
            return Ok(IterationOutcome::Passed);
        }
        let best_candidate = self.feed_back(
            iteration,
            choice.best_failed,
            applied.first_failure,
            &generated,
            conversation,
        )?;
        self.emit(Event::IterationFinished {
            iteration,
            passed: false,
            best_candidate,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(IterationOutcome::Failed)
    }

    /// Ask the model for this iteration's candidates; `None` when the budget ran out meanwhile.
    async fn generate(
        &mut self,
        iteration: usize,
        conversation: &mut Conversation,
    ) -> Result<Option<Vec<Generated>>> {
        let since = Instant::now();
        let dir = format!("iteration-{iteration}");
        self.emit(Event::Phase {
            iteration,
            phase: Phase::Generate,
        });
        let model = self.model;
        let counter = |text: &str| crate::model::estimate_tokens(model, text);
        let generated = if self.infill {
            let Some(item) = conversation
                .plan
                .iter()
                .find(|item| !item.path.is_empty())
                .cloned()
            else {
                return Err(Error::NothingToRewrite);
            };
            let content = {
                let repo = self.repo()?;
                context::current_text(
                    &repo,
                    &self.request.source,
                    &ChangeSet::default(),
                    &item.path,
                )
                .unwrap_or_default()
            };
            let region = generate::infill_region(&item, &content);
            let prompt = hone_prompts::infill_task(&hone_prompts::InfillPrompt {
                task: &self.request.task,
                path: &item.path,
                content: &content,
                start_line: region.start_line,
                end_line: region.end_line,
                why: &item.why,
                feedback: conversation.infill_feedback.as_deref(),
            })?;
            self.transcript.write(&format!("{dir}/prompt.txt"), &prompt);
            let future = generate::block_rewrite(
                self.model,
                &prompt,
                &region,
                &content,
                self.candidates,
                &self.request.sampling,
            );
            self.within_budget(future).await?
        } else {
            context::fit_conversation(
                &mut conversation.messages,
                conversation.window,
                conversation.max_tokens,
                &counter,
            );
            self.transcript.write(
                &format!("{dir}/prompt.txt"),
                &render_messages(&conversation.messages),
            );
            self.transcript.write_prompt_tokens(
                &format!("{dir}/prompt-tokens.json"),
                &context::message_sections(
                    &conversation.messages,
                    &conversation.task_sections,
                    &counter,
                ),
                conversation.max_tokens,
                conversation.window,
            );
            let future = generate::edit_blocks(
                self.model,
                &conversation.messages,
                self.candidates,
                conversation.max_tokens,
                &self.request.sampling,
            );
            self.within_budget(future).await?
        };
        let Some((generated, usage)) = generated else {
            return Ok(None);
        };
        self.summary.add_usage(&usage);
        self.summary.candidates_generated += generated.len();
        for candidate in &generated {
            self.transcript.write(
                &format!("{dir}/candidate-{}/response.txt", candidate.index + 1),
                &candidate.text,
            );
            self.emit(Event::CandidateGenerated {
                iteration,
                candidate: candidate.index + 1,
                characters: candidate.text.chars().count(),
            });
        }
        self.phase("generate", since);
        Ok(Some(generated))
    }

    /// Apply each candidate in its own sandbox.
    async fn apply(
        &mut self,
        iteration: usize,
        generated: &[Generated],
        conversation: &Conversation,
    ) -> Result<Applied> {
        let since = Instant::now();
        self.emit(Event::Phase {
            iteration,
            phase: Phase::Apply,
        });
        let applied = self
            .apply_all(
                iteration,
                generated,
                &conversation.carried,
                &conversation.failed,
            )
            .await?;
        self.phase("apply", since);
        Ok(applied)
    }

    /// Test the applied candidates concurrently.
    async fn test(&mut self, iteration: usize, prepared: Vec<Prepared>) -> Vec<Tested> {
        let since = Instant::now();
        self.emit(Event::Phase {
            iteration,
            phase: Phase::Test,
        });
        let settings = TestSettings {
            command: self.test_command.clone(),
            timeout: self.test_timeout(),
            jobs: self.jobs,
            cargo_target_dir: self.sandbox.cargo_target_dir.clone(),
            baseline_tests: self.baseline_tests,
            allow_test_edits: self.request.allow_test_edits,
        };
        let events = self.events;
        let transcript = &self.transcript;
        let on_start = |candidate: usize| {
            let event = Event::TestStarted {
                iteration,
                candidate: candidate + 1,
            };
            transcript.record(&event);
            events.emit(&event);
        };
        let on_finish = |candidate: usize, report: &Result<TestReport>| {
            let event = match report {
                Ok(report) => Event::TestFinished {
                    iteration,
                    candidate: candidate + 1,
                    passed: report.passed,
                    timed_out: report.timed_out,
                    failing_tests: report.failed_tests.clone(),
                    seconds: report.duration.as_secs_f64(),
                },
                Err(error) => Event::CandidateFailed {
                    iteration,
                    candidate: candidate + 1,
                    stage: FailStage::Test,
                    reason: error.to_string(),
                },
            };
            transcript.record(&event);
            events.emit(&event);
        };
        let tested = evaluate::test_all(prepared, &settings, &on_start, &on_finish).await;
        self.phase("test", since);
        tested
    }

    /// Record each test result; pick the smallest passing change, or the failure closest to
    /// passing.
    fn choose(
        &mut self,
        iteration: usize,
        tested: Vec<Tested>,
        conversation: &mut Conversation,
    ) -> Result<Choice> {
        let dir = format!("iteration-{iteration}");
        let mut passing: Vec<(usize, ChangeSet)> = Vec::new();
        let mut choice = Choice::default();
        for tested in tested {
            let Some(report) = tested.report else {
                continue;
            };
            let report = report?;
            let candidate = tested.candidate;
            let index = candidate.index;
            self.summary.candidates_tested += 1;
            self.summary.test_seconds += report.duration.as_secs_f64();
            let cdir = format!("{dir}/candidate-{}", index + 1);
            self.transcript
                .write(&format!("{cdir}/test.log"), &report.output);
            self.transcript.write(
                &format!("{cdir}/diff.patch"),
                &candidate.total.unified_diff(),
            );
            if report.passed {
                passing.push((index, candidate.total));
                continue;
            }
            self.emit(Event::CandidateFailed {
                iteration,
                candidate: index + 1,
                stage: FailStage::Test,
                reason: summarize_failure(&report),
            });
            conversation.failed.insert(fingerprint(&candidate.total));
            let rank = failure_rank(&report, &candidate.total);
            let better = choice
                .best_failed
                .as_ref()
                .is_none_or(|best| rank < failure_rank(&best.report, &best.candidate.total));
            if better {
                choice.best_failed = Some(FailedCandidate {
                    candidate,
                    report,
                    removed_tests: tested.removed_tests,
                });
            }
        }
        choice.passing = passing
            .into_iter()
            .min_by_key(|(index, changes)| (changes.changed_lines(), *index));
        Ok(choice)
    }

    /// Feed the best failure (or the first apply failure) back to the model; returns the number of
    /// the candidate fed back.
    fn feed_back(
        &mut self,
        iteration: usize,
        best_failed: Option<FailedCandidate>,
        first_failure: Option<ApplyFailure>,
        generated: &[Generated],
        conversation: &mut Conversation,
    ) -> Result<Option<usize>> {
        let dir = format!("iteration-{iteration}");
        let Some(FailedCandidate {
            candidate,
            report,
            removed_tests,
        }) = best_failed
        else {
            let ApplyFailure { index, report } = first_failure.unwrap_or(ApplyFailure {
                index: 0,
                report: "no candidate could be tested".into(),
            });
            let feedback = hone_prompts::apply_feedback(&report)?;
            self.transcript
                .write(&format!("{dir}/feedback.txt"), &feedback);
            if self.best.is_none() {
                self.summary.reason = format!("no edit applied: {}", first_line(&report));
            }
            if let Some(candidate) = generated.get(index) {
                conversation
                    .messages
                    .push(Message::assistant(candidate.text.clone()));
            }
            conversation.messages.push(Message::user(feedback));
            conversation.infill_feedback = Some(report);
            return Ok(None);
        };
        let index = candidate.index;
        let attempt = Attempt {
            failing: failure_rank(&report, &candidate.total).0,
            size: candidate.total.changed_lines(),
            reason: summarize_failure(&report),
            changes: candidate.total.clone(),
        };
        if self
            .best
            .as_ref()
            .is_none_or(|best| (attempt.failing, attempt.size) <= (best.failing, best.size))
        {
            self.best = Some(attempt);
        }
        // A change that removed tests is not a base to build on.
        let feedback = {
            let repo = self.repo()?;
            self.test_feedback(&repo, &report, &candidate.total, removed_tests)?
        };
        self.transcript
            .write(&format!("{dir}/feedback.txt"), &feedback);
        if let Some(answer) = generated.get(index) {
            conversation
                .messages
                .push(Message::assistant(answer.text.clone()));
        }
        conversation.messages.push(Message::user(feedback));
        conversation.infill_feedback = Some(summarize_failure(&report));
        if !self.infill && !removed_tests {
            conversation.carried = candidate.total;
        }
        Ok(Some(index + 1))
    }
}
