//! Adversarial probes of the `hone` binary: each one plays a hostile or unlucky user and asserts
//! the safe outcome (see issue 13).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod input;
