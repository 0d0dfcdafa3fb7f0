//! Writing a set of file changes atomically: stage, rename into place, roll back on failure.

use std::path::Path;

use super::FileChange;
use crate::error::{Error, Result};

pub(super) fn write_changes(_root: &Path, _changes: &[FileChange]) -> Result<()> {
    Err(Error::Invalid("apply: not implemented yet".into()))
}
