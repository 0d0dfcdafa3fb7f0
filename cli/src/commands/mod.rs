//! One module per subcommand; each owns its clap `Args` and a `run` returning the exit code.

pub mod apply;
pub mod batch;
pub mod bench;
pub mod context;
pub mod engine_forward;
pub mod engine_info;
pub mod engine_sample;
pub mod generate;
pub mod hook;
pub mod refactor;
pub mod run;
pub mod runs;
pub mod sandbox;
pub mod serve;
pub mod trust;
