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
mod iteration;
mod preflight;
mod report;
mod request;
mod understand;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use hone_prompts::TaskPrompt;
use hone_tools::{Repository, SandboxOptions};

use crate::changes::ChangeSet;
use crate::events::{Event, EventSink, Phase, RunStatus, RunSummary};
use crate::model::{Message, Model};
use crate::transcript::{new_run_id, write_summary, Transcript};
use crate::{Error, Result};

pub use commit::{clean_draft, commit_message, commit_message_request, draft_commit_message};
pub use defaults::RunDefaults;
use iteration::{Conversation, IterationOutcome};
pub use preflight::{preflight, Preflight};
use report::summarize_failure;
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
        let Preflight { root, test_command } = preflight(request)?;
        let repo = Repository::open(&root)?;
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
        let root = self.root.clone();
        let source = self.request.source.clone();
        let sandbox_options = self.sandbox.clone();
        let timeout = self.test_timeout();
        let command = self.test_command.clone();
        // Creating the sandbox copies the tree: file work, like the test run, off the workers.
        let report = tokio::task::spawn_blocking(move || -> Result<_> {
            let repo = Repository::open(&root)?;
            let test = hone_tools::TestChoice::Command(command);
            let tested =
                hone_tools::verify::test_tree(&repo, &source, &sandbox_options, &test, timeout)?
                    .ok_or_else(|| Error::Setup("no test command to run".into()))?;
            let prefix = format!("{}/", tested.sandbox_root.display());
            Ok(evaluate::relative_paths(tested.report, &prefix))
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

    /// Understand the task, then iterate until a candidate passes, the iterations are used up or
    /// the budget runs out.
    async fn drive(&mut self) -> Result<RunStatus> {
        let failure = self.baseline().await?;
        let Some(understanding) = self.understand(failure.as_deref()).await? else {
            return Ok(RunStatus::Budget);
        };
        let mut conversation = self.conversation(understanding)?;
        for iteration in 1..=self.request.max_iterations.max(1) {
            if self.out_of_time() {
                return Ok(RunStatus::Budget);
            }
            match self.iterate(iteration, &mut conversation).await? {
                IterationOutcome::Passed => return Ok(RunStatus::Passed),
                IterationOutcome::OutOfBudget => return Ok(RunStatus::Budget),
                IterationOutcome::Failed => {}
            }
        }
        Ok(RunStatus::Failed)
    }

    /// The first messages of the conversation (system prompt and task) and its answer budget.
    fn conversation(&self, understanding: Understanding) -> Result<Conversation> {
        let Understanding {
            facts,
            failing,
            fitted,
            plan,
            repo_map,
        } = understanding;
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
        Ok(Conversation {
            messages: vec![Message::system(system), Message::user(task_message)],
            task_sections,
            window,
            max_tokens,
            plan,
            carried: ChangeSet::default(),
            failed: HashSet::new(),
            infill_feedback: None,
        })
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
