//! The error type of hone-tools. Errors are for situations where the work could not start or the
//! input was unusable (no repository, unreadable file, unsafe path, unparsable patch). Outcomes the
//! model or the user should see as data — an edit block that did not match, a failing test — are
//! returned in `ApplyReport` / `TestReport`, never as `Error`.

use std::path::PathBuf;

/// Everything that can go wrong in hone-tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is not inside a git repository.
    #[error(
        "not inside a git repository: {path}: run hone inside a repository or `git init` first"
    )]
    NotARepository { path: PathBuf },
    /// The repository has no working tree (bare) where one is needed.
    #[error("the repository at {path} is bare: hone needs a working tree")]
    BareRepository { path: PathBuf },
    /// A libgit2 failure.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// An I/O failure on a specific path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A path in a patch or request that hone refuses to touch.
    #[error("refusing path `{path}`: {reason}")]
    UnsafePath { path: String, reason: String },
    /// The patch text could not be parsed in any supported format.
    #[error("could not parse the patch: {0}")]
    Parse(#[from] crate::edits::ParseError),
    /// A revision (commit, tree, ref) could not be resolved.
    #[error("unknown revision `{0}`: pass a commit id, branch or tag")]
    UnknownRevision(String),
    /// No test command was given and none could be detected (how to give one is the caller's to
    /// say: a flag, a configuration key).
    #[error("no test command found in {}", root.display())]
    NoTestCommand { root: PathBuf },
    /// A merge, rebase, cherry-pick or revert is in progress where hone would commit.
    #[error("{operation} is in progress: finish it or abort it (`{abort}`) before hone commits")]
    OperationInProgress {
        operation: &'static str,
        abort: &'static str,
    },
    /// A file the patch touches has uncommitted changes where hone would commit it.
    #[error("{path} has uncommitted changes: commit or stash them first")]
    UncommittedChanges { path: String },
    /// A command could not be started at all (not the same as a failing command).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// A foreign git hook is in place and so is the backup hone would move it to.
    #[error("{} is not hone's and {} already exists: installing would overwrite one of them", hook.display(), backup.display())]
    HookBackupExists { hook: PathBuf, backup: PathBuf },
    /// Input that is well-formed but cannot be acted on (explained in the message).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of hone-tools.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
