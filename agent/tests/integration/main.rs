//! hone-agent's integration tests, one binary: the OpenAI-compatible backend against loopback
//! servers, and the run loop driven by the scripted backend on repositories built in tempdirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod openai;
mod prompt_budget;
mod run_loop;
