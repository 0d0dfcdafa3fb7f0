//! hone-tools integration tests (one binary): fixture-driven edit application, property tests,
//! repositories and sandboxes built in temporary directories, and diffs checked by the real git.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corruption;
mod edits;
mod git_apply;
mod properties;
mod repo;
mod reports;
mod support;
