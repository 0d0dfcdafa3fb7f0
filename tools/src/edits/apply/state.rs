//! The in-memory view of the files a patch touches, and the application of one block to it.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BlockOutcome, FileChange};
use crate::edits::EditBlock;
use crate::error::{Error, Result};

pub(super) struct Files {
    _root: std::path::PathBuf,
    _max_bytes: u64,
    _files: BTreeMap<String, ()>,
}

impl Files {
    pub(super) fn new(root: &Path, max_bytes: u64) -> Result<Self> {
        Ok(Self { _root: root.to_path_buf(), _max_bytes: max_bytes, _files: BTreeMap::new() })
    }

    pub(super) fn apply_block(&mut self, _block: &EditBlock) -> BlockOutcome {
        unimplemented_outcome()
    }

    pub(super) fn changes(&self) -> Vec<FileChange> {
        Vec::new()
    }
}

fn unimplemented_outcome() -> BlockOutcome {
    let _ = Error::Invalid(String::new());
    BlockOutcome {
        index: 0,
        path: String::new(),
        operation: "replace",
        status: super::BlockStatus::Failed(super::BlockFailure {
            reason: super::FailureReason::NotText { what: "not implemented yet".into() },
            closest: None,
            replacement_present: false,
        }),
        search: None,
    }
}
