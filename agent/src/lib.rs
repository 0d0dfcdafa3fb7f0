//! hone's agent: the plan → generate → apply → test → iterate loop, and the `Model` trait through which
//! it reaches any backend (local engine, OpenAI-compatible endpoint, scripted fake in tests).

pub mod batch;
pub mod changes;
pub mod delivery;
pub mod error;
pub mod events;
pub mod infill;
pub mod model;
pub mod openai;
pub mod plan;
pub mod run;
pub mod settings;
pub mod testing;
pub mod transcript;

pub use error::{Error, Result};
pub use events::{Event, EventSink, NoEvents, RunStatus, RunSummary};
pub use model::{
    estimate_tokens, Candidate, ChatRequest, ChatResponse, FinishReason, InfillCandidate,
    InfillRequest, InfillResponse, Message, Model, ModelDescription, Purpose, Role, Sampling,
    Segment, StreamCallback, StreamUpdate, Usage,
};
pub use run::{
    commit_message, draft_commit_message, run_task, run_task_blocking, GenerationMode, RunDefaults,
    RunOutcome, RunRequest,
};
