//! The start of a run, before any candidate: select the context (ranked, read from the base state,
//! its sections fitted to the backend's window with room for the answer) and get a plan (asked with
//! an outline of the context, so the code itself is sent once, with the edit request) — the model's when it names real files and lines,
//! otherwise the fallback from the context ranking and the failing tests.

use std::time::Instant;

use hone_prompts::{Fitted, PlanItem, RepoFacts};

use super::{context, Run};
use crate::changes::ChangeSet;
use crate::events::{Event, Phase, PlanSource, PlannedRegion, SelectedFile};
use crate::model::{estimate_tokens, ChatRequest, Message, Purpose};
use crate::Result;

/// Longest plan answer.
const PLAN_TOKENS: usize = 256;

/// What the run knows before generating.
pub(super) struct Understanding {
    pub facts: RepoFacts,
    /// The failing-tests summary, cut to its budget.
    pub failing: Option<String>,
    pub fitted: Fitted,
    pub plan: Vec<PlanItem>,
    /// Signatures of ranked files the prompt does not show in full.
    pub repo_map: String,
}

impl Run<'_> {
    /// Context and plan; `None` when the budget ran out meanwhile.
    pub(super) async fn understand(
        &mut self,
        failure: Option<&str>,
    ) -> Result<Option<Understanding>> {
        // Context.
        let since = Instant::now();
        self.emit(Event::Phase {
            iteration: 1,
            phase: Phase::Context,
        });
        let model = self.model;
        let counter = |text: &str| estimate_tokens(model, text);
        let window = model.describe().context_window;
        let (facts, failing, fitted, ranked) = {
            let repo = self.repo()?;
            let facts = context::repo_facts(&repo, &self.request.source, &self.test_command)?;
            // Sections share what a known window leaves after the answer and the fixed parts.
            let fixed =
                counter(&hone_prompts::system_prompt(&facts)?) + counter(&self.request.task);
            let room = context::PromptRoom {
                window,
                answer: context::answer_reserve(window, self.request.max_tokens),
                fixed,
                code_wanted: self.context_tokens,
            };
            let budget = context::first_prompt_budget(&room, &facts, failure, &[], &counter);
            let (facts, failing) = context::fit_facts(facts, failure, &budget, &counter);
            let (fitted, ranked) = context::ranked_context(
                &repo,
                &self.request.source,
                &self.request.task,
                failure,
                &self.request.files,
                budget.code,
                &counter,
            )?;
            (facts, failing, fitted, ranked)
        };
        self.emit(Event::ContextSelected {
            files: fitted
                .files
                .iter()
                .map(|file| SelectedFile {
                    path: file.path.clone(),
                    start_line: file.start_line,
                    end_line: file.end_line,
                    reason: file.reason.clone(),
                })
                .collect(),
            omitted: fitted.omitted.clone(),
            prompt_tokens: fitted.files.iter().map(|file| counter(&file.content)).sum(),
        });
        self.phase("context", since);

        // Plan.
        let since = Instant::now();
        let mut plan: Vec<PlanItem> = Vec::new();
        if self.request.plan {
            self.emit(Event::Phase {
                iteration: 1,
                phase: Phase::Plan,
            });
            let prompt =
                hone_prompts::plan_request(&self.request.task, &fitted.files, failing.as_deref())?;
            self.transcript.write("plan/prompt.txt", &prompt);
            self.transcript.write_prompt_tokens(
                "plan/prompt-tokens.json",
                &[("plan request".to_owned(), counter(&prompt))],
                PLAN_TOKENS,
                window,
            );
            let request = ChatRequest {
                messages: vec![Message::user(prompt)],
                n: 1,
                max_tokens: PLAN_TOKENS,
                stop: Vec::new(),
                sampling: self.request.sampling.clone(),
                purpose: Purpose::Plan,
            };
            let Some(response) = self.within_budget(self.model.chat(&request, None)).await? else {
                return Ok(None);
            };
            self.summary.add_usage(&response.usage);
            let text = response
                .candidates
                .first()
                .map(|candidate| candidate.text.clone())
                .unwrap_or_default();
            self.transcript.write("plan/response.txt", &text);
            let repo = self.repo()?;
            plan = crate::plan::parse_plan(&text, |path| {
                context::current_text(&repo, &self.request.source, &ChangeSet::default(), path)
                    .map(|content| content.lines().count())
            });
            // Test code is not a target unless the task allows test edits.
            if !self.request.allow_test_edits {
                plan = plan
                    .into_iter()
                    .filter_map(|item| {
                        let content = context::current_text(
                            &repo,
                            &self.request.source,
                            &ChangeSet::default(),
                            &item.path,
                        )
                        .unwrap_or_default();
                        context::without_test_code(item, &content)
                    })
                    .collect();
            }
        }
        let source = if plan.is_empty() {
            let repo = self.repo()?;
            plan = context::fallback_plan(
                &repo,
                &self.request.source,
                &ranked,
                failure,
                self.request.allow_test_edits,
            );
            PlanSource::Fallback
        } else {
            PlanSource::Model
        };
        self.emit(Event::Plan {
            items: plan
                .iter()
                .map(|item| PlannedRegion {
                    path: item.path.clone(),
                    start_line: item.start_line,
                    end_line: item.end_line,
                    why: item.why.clone(),
                })
                .collect(),
            source,
        });
        self.phase("plan", since);
        let repo_map = context::repo_map(&fitted, &ranked, self.context_tokens);
        Ok(Some(Understanding {
            facts,
            failing,
            fitted,
            plan,
            repo_map,
        }))
    }
}
