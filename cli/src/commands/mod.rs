//! One module per subcommand; each owns its clap `Args` and a `run` returning the exit code.

pub mod run;
pub mod runs;
pub mod generate;
pub mod bench;
pub mod engine_forward;
pub mod engine_info;
pub mod engine_sample;
pub mod context;
pub mod apply;
pub mod serve;
pub mod batch;
pub mod refactor;
pub mod hook;
