//! A scripted model backend for tests only: it answers each call with the next entry of a script and
//! fails on anything the script did not foresee (an extra call, the wrong purpose, the wrong number of
//! candidates, a prompt missing an expected string). Stricter than any real model, so a test that
//! passes with it checks what the agent asked, not only what it did with the answers.
//!
//! The `hone` binary exposes it as the hidden, test-only `--backend scripted --script FILE`; it is
//! never chosen unless asked for by name.
//!
//! Script (JSON):
//! ```json
//! {"calls": [
//!   {"kind": "chat", "purpose": "plan", "responses": ["src/lib.rs: fix add"]},
//!   {"kind": "chat", "purpose": "edit", "expect": ["FAILED"], "responses": ["...", "..."]},
//!   {"kind": "infill", "responses": [["hole text"], ["other hole text"]]}
//! ]}
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::{
    Candidate, ChatRequest, ChatResponse, FinishReason, InfillCandidate, InfillRequest,
    InfillResponse, Model, ModelDescription, Purpose, Segment, StreamCallback, StreamUpdate, Usage,
};
use crate::{Error, Result};

/// Which method a scripted call answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    Chat,
    Infill,
}

/// One expected call and its answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScriptedCall {
    pub kind: CallKind,
    /// When set, the request's purpose must match.
    #[serde(default)]
    pub purpose: Option<Purpose>,
    /// Strings that must occur somewhere in the request's messages.
    #[serde(default)]
    pub expect: Vec<String>,
    /// Chat: one text per candidate (`n` must equal its length).
    #[serde(default)]
    pub responses: Vec<String>,
    /// Infill: one list of hole texts per candidate.
    #[serde(default)]
    pub fills: Vec<Vec<String>>,
}

/// A whole script.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    pub calls: Vec<ScriptedCall>,
    /// Whether to claim infill support (default: no, like an HTTP backend).
    #[serde(default)]
    pub supports_infill: bool,
    /// Default candidates the backend reports (default 1).
    #[serde(default)]
    pub default_candidates: Option<usize>,
}

/// The scripted backend.
#[derive(Debug)]
pub struct ScriptedModel {
    remaining: Mutex<VecDeque<ScriptedCall>>,
    supports_infill: bool,
    default_candidates: usize,
    made: Mutex<Vec<String>>,
}

impl ScriptedModel {
    pub fn new(script: Script) -> Self {
        Self {
            remaining: Mutex::new(script.calls.into()),
            supports_infill: script.supports_infill,
            default_candidates: script.default_candidates.unwrap_or(1).max(1),
            made: Mutex::new(Vec::new()),
        }
    }

    /// Read a script file (JSON, see the module docs).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::io(format!("reading script {}", path.display()), source))?;
        let script: Script = serde_json::from_str(&text).map_err(|source| Error::Json {
            context: format!("parsing script {}", path.display()),
            source,
        })?;
        Ok(Self::new(script))
    }

    /// Calls the script still expects.
    pub fn remaining(&self) -> usize {
        self.remaining.lock().map(|calls| calls.len()).unwrap_or(0)
    }

    /// Fails when the script was not used up: the agent made fewer calls than the test foresaw.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(Error::Script(format!(
                "{left} scripted call(s) were never made (calls made: {})",
                self.made
                    .lock()
                    .map(|made| made.join(", "))
                    .unwrap_or_default()
            ))),
        }
    }

    fn next(&self, kind: CallKind, purpose: Purpose, prompt: &str) -> Result<ScriptedCall> {
        let mut made = self
            .made
            .lock()
            .map_err(|_| Error::Script("lock poisoned".into()))?;
        made.push(format!("{kind:?}/{purpose:?}").to_lowercase());
        let call_number = made.len();
        drop(made);
        let mut remaining = self
            .remaining
            .lock()
            .map_err(|_| Error::Script("lock poisoned".into()))?;
        let Some(call) = remaining.pop_front() else {
            return Err(Error::Script(format!(
                "unexpected call #{call_number} ({kind:?}, purpose {purpose:?}): the script is used up"
            )));
        };
        if call.kind != kind {
            return Err(Error::Script(format!(
                "call #{call_number}: expected a {:?} call, got {kind:?}",
                call.kind
            )));
        }
        if let Some(expected) = call.purpose {
            if expected != purpose {
                return Err(Error::Script(format!(
                    "call #{call_number}: expected purpose {expected:?}, got {purpose:?}"
                )));
            }
        }
        for needle in &call.expect {
            if !prompt.contains(needle.as_str()) {
                return Err(Error::Script(format!(
                    "call #{call_number}: the prompt does not contain {needle:?}"
                )));
            }
        }
        Ok(call)
    }
}

fn joined(messages: &[crate::model::Message]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Model for ScriptedModel {
    fn describe(&self) -> ModelDescription {
        ModelDescription {
            backend: "scripted".to_owned(),
            name: "script".to_owned(),
            supports_infill: self.supports_infill,
            context_window: None,
            default_candidates: self.default_candidates,
        }
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        stream: Option<StreamCallback<'a>>,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let call = self.next(CallKind::Chat, request.purpose, &joined(&request.messages))?;
            if call.responses.len() != request.n.max(1) {
                return Err(Error::Script(format!(
                    "asked for {} candidate(s), the script has {}",
                    request.n,
                    call.responses.len()
                )));
            }
            let mut usage = Usage::default();
            let candidates = call
                .responses
                .into_iter()
                .enumerate()
                .map(|(index, text)| {
                    if let Some(stream) = stream {
                        stream(StreamUpdate {
                            index,
                            delta: text.clone(),
                        });
                    }
                    usage.completion_tokens += text.len() as u64 / 4;
                    Candidate {
                        text,
                        finish_reason: FinishReason::Stop,
                    }
                })
                .collect();
            Ok(ChatResponse { candidates, usage })
        })
    }

    fn infill<'a>(&'a self, request: &'a InfillRequest) -> BoxFuture<'a, Result<InfillResponse>> {
        Box::pin(async move {
            if !self.supports_infill {
                return Err(Error::Script(
                    "infill called but the script says supports_infill: false".into(),
                ));
            }
            let call = self.next(
                CallKind::Infill,
                request.purpose,
                &joined(&request.messages),
            )?;
            let holes: Vec<&Vec<usize>> = request
                .skeleton
                .iter()
                .filter_map(|segment| match segment {
                    Segment::Hole { lengths } => Some(lengths),
                    Segment::Text(_) => None,
                })
                .collect();
            let combinations: usize = holes.iter().map(|lengths| lengths.len().max(1)).product();
            let expected = request.n.max(1) * combinations;
            if call.fills.len() != expected {
                return Err(Error::Script(format!(
                    "infill asked for {expected} candidate(s), the script has {}",
                    call.fills.len()
                )));
            }
            let mut candidates = Vec::new();
            for fill in call.fills {
                if fill.len() != holes.len() {
                    return Err(Error::Script(format!(
                        "skeleton has {} hole(s), a scripted fill has {}",
                        holes.len(),
                        fill.len()
                    )));
                }
                let mut text = String::new();
                let mut fills = fill.iter();
                for segment in &request.skeleton {
                    match segment {
                        Segment::Text(fixed) => text.push_str(fixed),
                        Segment::Hole { .. } => {
                            text.push_str(fills.next().map_or("", String::as_str))
                        }
                    }
                }
                let lengths = holes
                    .iter()
                    .map(|lengths| lengths.first().copied().unwrap_or(0))
                    .collect();
                candidates.push(InfillCandidate {
                    holes: fill,
                    text,
                    lengths,
                });
            }
            Ok(InfillResponse {
                candidates,
                usage: Usage::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::model::Message;

    fn chat(n: usize, purpose: Purpose, text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user(text)],
            n,
            purpose,
            ..Default::default()
        }
    }

    fn run<T>(future: BoxFuture<'_, T>) -> T {
        futures::executor::block_on(future)
    }

    #[test]
    fn answers_in_order_and_checks_expectations() {
        let model = ScriptedModel::new(Script {
            calls: vec![
                ScriptedCall {
                    kind: CallKind::Chat,
                    purpose: Some(Purpose::Plan),
                    expect: vec!["task".into()],
                    responses: vec!["plan".into()],
                    fills: vec![],
                },
                ScriptedCall {
                    kind: CallKind::Chat,
                    purpose: None,
                    expect: vec![],
                    responses: vec!["a".into(), "b".into()],
                    fills: vec![],
                },
            ],
            ..Default::default()
        });
        let first = run(model.chat(&chat(1, Purpose::Plan, "the task"), None)).unwrap();
        assert_eq!(first.candidates[0].text, "plan");
        assert!(model.finish().is_err(), "one call is left");
        let second = run(model.chat(&chat(2, Purpose::Edit, "x"), None)).unwrap();
        assert_eq!(second.candidates.len(), 2);
        model.finish().unwrap();
        let extra = run(model.chat(&chat(1, Purpose::Edit, "x"), None)).unwrap_err();
        assert!(extra.to_string().contains("used up"), "{extra}");
    }

    #[test]
    fn refuses_wrong_purpose_count_and_missing_text() {
        let call = ScriptedCall {
            kind: CallKind::Chat,
            purpose: Some(Purpose::Edit),
            expect: vec!["needle".into()],
            responses: vec!["a".into()],
            fills: vec![],
        };
        let model = ScriptedModel::new(Script {
            calls: vec![call.clone(); 3],
            ..Default::default()
        });
        assert!(run(model.chat(&chat(1, Purpose::Plan, "needle"), None)).is_err());
        assert!(run(model.chat(&chat(2, Purpose::Edit, "needle"), None)).is_err());
        let missing = run(model.chat(&chat(1, Purpose::Edit, "hay"), None)).unwrap_err();
        assert!(missing.to_string().contains("needle"), "{missing}");
    }

    #[test]
    fn infill_assembles_the_skeleton() {
        let model = ScriptedModel::new(Script {
            calls: vec![ScriptedCall {
                kind: CallKind::Infill,
                purpose: None,
                expect: vec![],
                responses: vec![],
                fills: vec![vec!["X".into()], vec!["YY".into()]],
            }],
            supports_infill: true,
            default_candidates: Some(4),
        });
        let request = InfillRequest {
            messages: vec![Message::user("fix")],
            skeleton: vec![
                Segment::Text("a\n".into()),
                Segment::Hole {
                    lengths: vec![4, 8],
                },
                Segment::Text("\nb".into()),
            ],
            n: 1,
            ..Default::default()
        };
        let response = run(model.infill(&request)).unwrap();
        assert_eq!(response.candidates[0].text, "a\nX\nb");
        assert_eq!(response.candidates[1].text, "a\nYY\nb");
    }
}
