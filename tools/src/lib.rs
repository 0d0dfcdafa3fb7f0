//! hone's hands: reading the repository with git2, picking context, parsing and applying edits
//! atomically, rendering diffs, and running tests in a temporary sandbox. Synchronous; no model
//! knowledge.
