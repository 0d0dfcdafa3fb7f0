//! hone's masked-diffusion language model engine: checkpoint loading (LLaDA and Dream families),
//! tokenizer and chat templates, the forward pass, and diffusion decoding. Synchronous; callers run it
//! on its own thread. Does not know about repositories, edits or HTTP.

pub mod checkpoint;
pub mod device;
pub mod error;
pub mod memory;
pub mod model;
pub mod models;
pub mod parity;
pub mod profile;
pub mod random;
pub mod tokenizer;

pub mod bench;
pub mod generate;
pub mod sampling;

pub use error::{Error, Result};
