//! The agent's error type: failures of setup, of a model backend, or of the tools, that stop a run.
//! What the model should see (an edit that did not apply, a failing test) is data, never an `Error`.

/// Everything that can stop the agent or a model backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend cannot do this kind of request (e.g. infill over HTTP).
    #[error("{backend} backend does not support {what}")]
    Unsupported { backend: String, what: String },
    /// The request was wrong before it reached the model.
    #[error("invalid model request: {0}")]
    InvalidRequest(String),
    /// The endpoint refused our credentials (HTTP 401/403). Where the key comes from is the
    /// caller's to say (the CLI names its flag).
    #[error("{url} refused the API key (HTTP {status}): {message}")]
    Unauthorized {
        url: String,
        status: u16,
        message: String,
    },
    /// The endpoint or model does not exist (HTTP 404).
    #[error("{url} answered 404 not found: {message}")]
    NotFound { url: String, message: String },
    /// The endpoint failed after all retries, or answered something we cannot read.
    #[error("model endpoint {url}: {message}")]
    Http { url: String, message: String },
    /// The model backend failed (thread gone, a worker lost).
    #[error("model backend failed: {0}")]
    Backend(String),
    /// The model backend's own error, kept whole so that the binary can tell its kinds apart (the
    /// agent does not know the engine's types; the CLI downcasts).
    #[error("model backend failed: {0}")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A scripted test backend got a call its script did not expect.
    #[error("scripted backend: {0}")]
    Script(String),
    /// The repository or the tools failed.
    #[error(transparent)]
    Tools(#[from] hone_tools::Error),
    /// Rendering a prompt failed.
    #[error(transparent)]
    Prompt(#[from] hone_prompts::Error),
    /// Reading or writing files (transcripts, patches).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A JSON document (script, transcript) could not be read or written.
    #[error("{context}: {source}")]
    Json {
        context: String,
        source: serde_json::Error,
    },
    /// A line of a batch tasks file is not a valid task (nothing runs on bad input).
    #[error("tasks line {line}: {reason}")]
    TaskLine { line: usize, reason: String },
    /// A batch results file already holds results and resuming was not asked for.
    #[error("{} already holds results", path.display())]
    ResultsExist { path: std::path::PathBuf },
    /// A line of a batch results file (read to resume) is not a result line.
    #[error("{} line {line}: not a result line: {reason}", path.display())]
    ResultsLine {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    /// A batch worker panicked or was lost.
    #[error("a batch task stopped unexpectedly: {0}")]
    TaskLost(String),
    /// A configuration file (user config or `.hone.toml`) has a syntax error, an unknown key or a
    /// bad value.
    #[error("{}: {message}", path.display())]
    ConfigFile {
        path: std::path::PathBuf,
        message: String,
    },
    /// A `HONE_*` environment variable has a value hone cannot use.
    #[error("{name}={value:?} is not valid: expected {expected}")]
    ConfigEnv {
        name: String,
        value: String,
        expected: String,
    },
    /// The trust records file (`trusted.toml`) could not be read or written.
    #[error("{}: {message}", path.display())]
    TrustFile {
        path: std::path::PathBuf,
        message: String,
    },
    /// A run from the working tree during a merge (its conflicts are not hone's to resolve).
    #[error("a merge is in progress (MERGE_HEAD is set): resolve the conflicts and `git commit`, or `git merge --abort`, then run hone again")]
    MergeInProgress,
    /// A run from the working tree with uncommitted changes to tracked files, not allowed.
    #[error(
        "the working tree has uncommitted changes to tracked files: commit or stash them first"
    )]
    DirtyTree,
    /// Infill mode found no file to rewrite: the plan is empty and every ranked file is test code,
    /// which the run may not change.
    #[error("nothing to rewrite: no plan and no ranked file outside test code")]
    NothingToRewrite,
    /// Delivery on a new branch in a repository without any commit to start it from.
    #[error("a new branch needs a commit to start from; the repository has none")]
    NoCommitToBranchFrom,
    /// The run was set up wrongly (dirty tree, no test command, bad option).
    #[error("{0}")]
    Setup(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The agent's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
