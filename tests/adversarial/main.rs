//! Adversarial probes of the `hone` binary: each one plays a hostile or unlucky user and asserts
//! the safe outcome (see issue 13): confinement of test commands, interrupts, tampered tests
//! (`confinement`); crash-safe apply, repository-config trust, huge sizes, closed pipes, merges and
//! hooks (`input`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[path = "../common/mod.rs"]
mod common;
mod confinement;
mod input;
