//! The agent loop behind `hone run` (and `hone hook` fixes, `hone batch`, `hone refactor`):
//! context → plan → generate N candidates → apply each in its own sandbox → test them concurrently →
//! keep the first that passes, or feed the best failure back and iterate, within `max_iterations`
//! and a wall-clock budget. The user's tree is never touched here: delivery is a separate step
//! (`crate::delivery`) on the returned [`RunOutcome`].

mod candidates;
mod commit;
mod context;
mod defaults;
mod evaluate;
mod generate;
mod report;
mod request;
mod understand;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use hone_prompts::TaskPrompt;
use hone_tools::{Repository, SandboxOptions, TestReport};

use crate::changes::ChangeSet;
use crate::events::{Event, EventSink, FailStage, Phase, RunStatus, RunSummary};
use crate::model::{Message, Model};
use crate::transcript::{new_run_id, write_summary, Transcript};
use crate::{Error, Result};

pub use commit::commit_message;
pub use defaults::RunDefaults;
use evaluate::{fingerprint, Prepared, TestSettings};
use report::{failure_rank, first_line, render_messages, summarize_failure};
pub use request::{GenerationMode, RunOutcome, RunRequest};
use understand::Understanding;

/// Run a task to the end. Errors are setup or backend failures; a run whose candidates all fail is
/// an `Ok` outcome with status `failed` (or `budget`).
pub async fn run_task(
    request: &RunRequest,
    model: &dyn Model,
    events: &dyn EventSink,
) -> Result<RunOutcome> {
    let mut run = Run::start(request, model, events)?;
    let result = run.drive().await;
    match result {
        Ok(status) => Ok(run.finish(status)),
        Err(error) => {
            run.transcript.write("error.txt", &format!("{error}\n"));
            Err(error)
        }
    }
}

/// A synchronous wrapper for callers without a runtime (hooks, scripts): a current-thread runtime
/// with blocking threads for the tests.
pub fn run_task_blocking(
    request: &RunRequest,
    model: &dyn Model,
    events: &dyn EventSink,
) -> Result<RunOutcome> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::io("starting the async runtime", source))?
        .block_on(run_task(request, model, events))
}

/// The best failed attempt so far.
#[derive(Debug, Clone)]
struct Attempt {
    changes: ChangeSet,
    failing: usize,
    size: usize,
    reason: String,
}

struct Run<'a> {
    request: &'a RunRequest,
    model: &'a dyn Model,
    events: &'a dyn EventSink,
    transcript: Transcript,
    started: Instant,
    id: String,
    root: std::path::PathBuf,
    test_command: String,
    candidates: usize,
    /// Tokens of code the first prompt may carry (a third of the window at most).
    context_tokens: usize,
    infill: bool,
    jobs: usize,
    sandbox: SandboxOptions,
    summary: RunSummary,
    phases: BTreeMap<&'static str, Duration>,
    passed: Option<ChangeSet>,
    best: Option<Attempt>,
    /// Tests the baseline run counted: a candidate that runs fewer did not fix anything, it
    /// removed or disabled tests.
    baseline_tests: Option<usize>,
}

impl<'a> Run<'a> {
    fn start(
        request: &'a RunRequest,
        model: &'a dyn Model,
        events: &'a dyn EventSink,
    ) -> Result<Self> {
        let started = Instant::now();
        let repo = Repository::discover(&request.repo)?;
        if request.source == hone_tools::TreeSource::WorkTree
            && repo.git_dir().join("MERGE_HEAD").exists()
        {
            return Err(Error::Setup(
                "a merge is in progress (MERGE_HEAD is set): resolve the conflicts and `git commit`, or `git merge --abort`, then run hone again".into(),
            ));
        }
        if request.source == hone_tools::TreeSource::WorkTree
            && !request.allow_dirty
            && repo.has_tracked_changes()?
        {
            return Err(Error::Setup(
                "the working tree has uncommitted changes to tracked files: commit or stash them, or pass --allow-dirty (the sandbox then includes them and only hone's patch is applied on top)".into(),
            ));
        }
        let root = repo.root().to_path_buf();
        let test_command = match &request.test_command {
            Some(command) => command.clone(),
            None => hone_tools::detect_test_command(&root)
                .map(|detected| detected.command)
                .ok_or_else(|| hone_tools::Error::NoTestCommand { root: root.clone() })?,
        };
        let description = model.describe();
        let infill = match request.mode {
            GenerationMode::Auto => description.supports_infill,
            GenerationMode::EditBlocks => false,
            GenerationMode::Infill if !description.supports_infill => {
                return Err(Error::Unsupported {
                    backend: description.backend,
                    what: "infill (block rewrite)".into(),
                })
            }
            GenerationMode::Infill => true,
        };
        let candidates = request
            .candidates
            .unwrap_or(description.default_candidates)
            .clamp(1, 64);
        let jobs = match request.jobs {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            jobs => jobs,
        }
        .min(candidates);
        let id = new_run_id();
        let transcript = if request.record {
            let runs_dir = request
                .runs_dir
                .clone()
                .unwrap_or_else(|| repo.git().commondir().join("hone").join("runs"));
            Transcript::create(&runs_dir, &id).unwrap_or_else(|error| {
                tracing::warn!(%error, "no transcript for this run");
                Transcript::disabled()
            })
        } else {
            Transcript::disabled()
        };
        transcript.write_json(
            "request.json",
            &serde_json::json!({
                "task": request.task, "test_command": test_command, "candidates": candidates,
                "max_iterations": request.max_iterations, "backend": description.backend,
                "model": description.name, "mode": if infill { "infill" } else { "edit-blocks" },
                "root": root, "allow_dirty": request.allow_dirty,
            }),
        );
        let summary = RunSummary {
            id: id.clone(),
            status: RunStatus::Failed,
            reason: String::new(),
            diff: String::new(),
            files: Vec::new(),
            iterations: 0,
            candidates_generated: 0,
            candidates_tested: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            nfe: 0,
            model_seconds: 0.0,
            test_seconds: 0.0,
            seconds: 0.0,
            transcript: transcript.dir().map(|dir| dir.display().to_string()),
        };
        let run = Self {
            request,
            model,
            events,
            sandbox: {
                let mut sandbox = SandboxOptions::for_repository(&repo);
                sandbox.confinement = request.confinement.clone();
                sandbox.link_ignored.extend(request.include.iter().cloned());
                sandbox
            },
            transcript,
            started,
            id,
            root,
            test_command,
            candidates,
            context_tokens: description
                .context_window
                .map_or(request.context_tokens, |window| {
                    request.context_tokens.min(window / 3)
                }),
            infill,
            jobs,
            summary,
            phases: BTreeMap::new(),
            passed: None,
            best: None,
            baseline_tests: None,
        };
        run.emit(Event::RunStarted {
            id: run.id.clone(),
            task: request.task.clone(),
            backend: description.backend,
            model: description.name,
            mode: if infill { "infill" } else { "edit-blocks" }.to_owned(),
            candidates,
            max_iterations: request.max_iterations,
            test_command: run.test_command.clone(),
            transcript: run.summary.transcript.clone(),
        });
        Ok(run)
    }

    fn emit(&self, event: Event) {
        self.transcript.record(&event);
        self.events.emit(&event);
    }

    fn phase(&mut self, name: &'static str, since: Instant) {
        *self.phases.entry(name).or_default() += since.elapsed();
    }

    fn repo(&self) -> Result<Repository> {
        Ok(Repository::open(&self.root)?)
    }

    fn out_of_time(&self) -> bool {
        self.request
            .budget
            .is_some_and(|budget| self.started.elapsed() >= budget)
    }

    fn remaining(&self) -> Option<Duration> {
        self.request
            .budget
            .map(|budget| budget.saturating_sub(self.started.elapsed()))
    }

    /// Await a model call within the budget; `None` when the budget ran out.
    async fn within_budget<T>(
        &self,
        future: impl std::future::Future<Output = Result<T>>,
    ) -> Result<Option<T>> {
        match self.remaining() {
            Some(left) => match tokio::time::timeout(left, future).await {
                Ok(result) => result.map(Some),
                Err(_) => Ok(None),
            },
            None => future.await.map(Some),
        }
    }

    async fn baseline(&mut self) -> Result<Option<String>> {
        if let Some(output) = &self.request.failure_output {
            return Ok(Some(output.clone()));
        }
        if !self.request.baseline {
            return Ok(None);
        }
        let since = Instant::now();
        self.emit(Event::Phase {
            iteration: 0,
            phase: Phase::Test,
        });
        let sandbox = {
            let repo = self.repo()?;
            hone_tools::Sandbox::create(&repo, &self.request.source, &self.sandbox)?
        };
        let mut options = sandbox.run_options();
        options.timeout = self.test_timeout();
        let command = self.test_command.clone();
        let report = tokio::task::spawn_blocking(move || {
            let prefix = format!("{}/", options.cwd.display());
            let report = hone_tools::run_command(&command, &options)
                .map(|report| evaluate::relative_paths(report, &prefix));
            drop(sandbox);
            report
        })
        .await
        .map_err(|error| Error::Backend(format!("test thread failed: {error}")))??;
        self.transcript.write("baseline/test.log", &report.output);
        self.baseline_tests = evaluate::test_count(&report);
        self.summary.test_seconds += report.duration.as_secs_f64();
        self.phase("baseline test", since);
        Ok((!report.passed).then(|| summarize_failure(&report)))
    }

    fn test_timeout(&self) -> Duration {
        let timeout = self.request.test_timeout;
        self.remaining().map_or(timeout, |left| {
            timeout.min(left.max(Duration::from_secs(1)))
        })
    }

    async fn drive(&mut self) -> Result<RunStatus> {
        let failure = self.baseline().await?;

        let Some(Understanding {
            facts,
            failing,
            fitted,
            plan,
            repo_map,
        }) = self.understand(failure.as_deref()).await?
        else {
            return Ok(RunStatus::Budget);
        };

        // Iterations.
        let model = self.model;
        let counter = |text: &str| crate::model::estimate_tokens(model, text);
        let window = model.describe().context_window;
        let system = hone_prompts::system_prompt(&facts)?;
        let task_prompt = TaskPrompt {
            task: &self.request.task,
            repo: &facts,
            context: &fitted.files,
            omitted_paths: &fitted.omitted,
            plan: &plan,
            failing: failing.as_deref(),
            repo_map: &repo_map,
        };
        let task_message = hone_prompts::task_message(&task_prompt)?;
        let task_sections = hone_prompts::task_sections(&task_prompt, &counter)?;
        let prompt_tokens = counter(&system) + counter(&task_message);
        let max_tokens = context::answer_budget(
            window,
            self.request.max_tokens,
            &fitted.files,
            prompt_tokens,
            &counter,
        );
        let mut messages = vec![Message::system(system), Message::user(task_message)];
        let mut carried = ChangeSet::default();
        let mut failed: HashSet<u64> = HashSet::new();
        let mut infill_feedback: Option<String> = None;
        for iteration in 1..=self.request.max_iterations.max(1) {
            if self.out_of_time() {
                return Ok(RunStatus::Budget);
            }
            let iteration_started = Instant::now();
            self.summary.iterations = iteration;
            let dir = format!("iteration-{iteration}");

            // Generate.
            let since = Instant::now();
            self.emit(Event::Phase {
                iteration,
                phase: Phase::Generate,
            });
            let generated = if self.infill {
                let Some(item) = plan.iter().find(|item| !item.path.is_empty()).cloned() else {
                    return Err(Error::Setup(
                        "nothing to rewrite: no plan and no ranked file outside test code (pass --allow-test-edits if the task is to change tests)".into(),
                    ));
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
                    feedback: infill_feedback.as_deref(),
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
                context::fit_conversation(&mut messages, window, max_tokens, &counter);
                self.transcript
                    .write(&format!("{dir}/prompt.txt"), &render_messages(&messages));
                self.transcript.write_prompt_tokens(
                    &format!("{dir}/prompt-tokens.json"),
                    &context::message_sections(&messages, &task_sections, &counter),
                    max_tokens,
                    window,
                );
                let future = generate::edit_blocks(
                    self.model,
                    &messages,
                    self.candidates,
                    max_tokens,
                    &self.request.sampling,
                );
                self.within_budget(future).await?
            };
            let Some((generated, usage)) = generated else {
                return Ok(RunStatus::Budget);
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

            // Apply, each candidate in its own sandbox.
            let since = Instant::now();
            self.emit(Event::Phase {
                iteration,
                phase: Phase::Apply,
            });
            let (prepared, mut first_failure) =
                self.apply_all(iteration, &generated, &carried, &failed)?;
            self.phase("apply", since);

            // Test concurrently.
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

            // Choose.
            let mut passing: Vec<(usize, ChangeSet)> = Vec::new();
            let mut best_failed: Option<(usize, Prepared, TestReport)> = None;
            let mut shrank: HashSet<usize> = HashSet::new();
            for (index, candidate, report, removed_tests) in tested {
                let Some(report) = report else { continue };
                let report = report?;
                if removed_tests {
                    shrank.insert(index);
                }
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
                failed.insert(fingerprint(&candidate.total));
                let rank = failure_rank(&report, &candidate.total);
                let better = best_failed.as_ref().is_none_or(|(_, best, best_report)| {
                    rank < failure_rank(best_report, &best.total)
                });
                if better {
                    best_failed = Some((index, candidate, report));
                }
            }
            if let Some((index, changes)) = passing
                .into_iter()
                .min_by_key(|(index, changes)| (changes.changed_lines(), *index))
            {
                self.emit(Event::IterationFinished {
                    iteration,
                    passed: true,
                    best_candidate: Some(index + 1),
                    seconds: iteration_started.elapsed().as_secs_f64(),
                });
                self.passed = Some(changes);
                return Ok(RunStatus::Passed);
            }

            // Feed back the best failure.
            let best_index = match best_failed {
                Some((index, candidate, report)) => {
                    let attempt = Attempt {
                        failing: failure_rank(&report, &candidate.total).0,
                        size: candidate.total.changed_lines(),
                        reason: summarize_failure(&report),
                        changes: candidate.total.clone(),
                    };
                    if self.best.as_ref().is_none_or(|best| {
                        (attempt.failing, attempt.size) <= (best.failing, best.size)
                    }) {
                        self.best = Some(attempt);
                    }
                    // A change that removed tests is not a base to build on.
                    let reverted = shrank.contains(&index);
                    let feedback = {
                        let repo = self.repo()?;
                        self.test_feedback(&repo, &report, &candidate.total, reverted)?
                    };
                    self.transcript
                        .write(&format!("{dir}/feedback.txt"), &feedback);
                    messages.push(Message::assistant(generated[index].text.clone()));
                    messages.push(Message::user(feedback.clone()));
                    infill_feedback = Some(summarize_failure(&report));
                    if !self.infill && !reverted {
                        carried = candidate.total;
                    }
                    Some(index + 1)
                }
                None => {
                    let (index, report) = first_failure
                        .take()
                        .unwrap_or((0, "no candidate could be tested".into()));
                    let feedback = hone_prompts::apply_feedback(&report)?;
                    self.transcript
                        .write(&format!("{dir}/feedback.txt"), &feedback);
                    if self.best.is_none() {
                        self.summary.reason = format!("no edit applied: {}", first_line(&report));
                    }
                    if let Some(candidate) = generated.get(index) {
                        messages.push(Message::assistant(candidate.text.clone()));
                    }
                    messages.push(Message::user(feedback));
                    infill_feedback = Some(report);
                    None
                }
            };
            self.emit(Event::IterationFinished {
                iteration,
                passed: false,
                best_candidate: best_index,
                seconds: iteration_started.elapsed().as_secs_f64(),
            });
        }
        Ok(RunStatus::Failed)
    }

    fn finish(mut self, status: RunStatus) -> RunOutcome {
        let changes = match (&self.passed, &self.best) {
            (Some(changes), _) => changes.clone(),
            (None, Some(best)) => {
                if self.summary.reason.is_empty() || best.failing < usize::MAX {
                    self.summary.reason = best.reason.clone();
                }
                best.changes.clone()
            }
            (None, None) => ChangeSet::default(),
        };
        self.summary.status = status;
        match status {
            RunStatus::Passed => self.summary.reason.clear(),
            RunStatus::Budget => {
                let budget = self.request.budget.unwrap_or_default().as_secs_f64();
                let before = std::mem::take(&mut self.summary.reason);
                self.summary.reason = format!("the budget of {budget:.0} s ran out");
                if !before.is_empty() {
                    self.summary
                        .reason
                        .push_str(&format!("; best attempt: {before}"));
                }
            }
            RunStatus::Failed if self.summary.reason.is_empty() => {
                self.summary.reason = "no candidate passed the tests".into();
            }
            RunStatus::Failed => {}
        }
        self.summary.diff = changes.unified_diff();
        self.summary.files = changes.paths();
        self.summary.seconds = self.started.elapsed().as_secs_f64();
        let phase_seconds: Vec<(String, f64)> = self
            .phases
            .iter()
            .map(|(name, time)| ((*name).to_owned(), time.as_secs_f64()))
            .collect();
        write_summary(&self.transcript, &self.summary);
        self.transcript.write_json("phases.json", &phase_seconds);
        self.emit(Event::RunFinished(self.summary.clone()));
        RunOutcome {
            summary: self.summary,
            changes,
            root: self.root,
            phase_seconds,
        }
    }
}
