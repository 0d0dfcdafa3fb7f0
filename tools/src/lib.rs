//! hone's hands: reading the repository with git2 (`repo`), picking context (`context`), parsing
//! and applying edits atomically with precise failure reports (`edits`), rendering diffs (`diff`),
//! materialising sandboxes (`sandbox`, with a readable `.git` from `sandbox_git`), confining the
//! commands run there (`confine`), installing git hook scripts (`hooks`), running and parsing tests (`runner`), and the shared
//! apply-and-verify logic of `hone apply` (`verify`). Synchronous; no model knowledge; depends on
//! no other hone crate.

pub mod confine;
pub mod context;
pub mod diff;
pub mod edits;
pub mod error;
pub mod hooks;
mod parallel;
pub mod repo;
pub mod runner;
pub mod sandbox;
mod sandbox_git;
pub mod verify;

pub use confine::{ConfinePolicy, ConfineStatus, Confinement, Mechanism, SandboxMode};
pub use context::{
    select_context, ContextQuery, ContextRanking, Finding, Misspelling, RankedFile, Reason, Region,
};
pub use edits::{
    apply_patch, parse_patch, parse_patch_as, plan_patch, recover_interrupted_apply,
    render_for_model, render_for_people, ApplyOptions, ApplyReport, BlockStatus, EditBlock,
    EditFormat, EditOperation, FailureReason, FileChange, ParseError, Patch,
};
pub use error::{Error, Result};
pub use repo::{FileContent, FileKind, FileStatus, RepoFile, Repository, TreeSource};
pub use runner::{describe_failure, detect_test_command, run_command, RunOptions, TestReport};
pub use sandbox::{Sandbox, SandboxOptions};
pub use verify::{
    apply_to_worktree, commit_patch, verify_patch, TestChoice, Verdict, Verification, VerifyOptions,
};
