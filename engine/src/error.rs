//! The engine's error type. Messages are lowercase, specific, and say what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A checkpoint folder, file or tensor is missing or malformed.
    #[error("{0}")]
    Checkpoint(String),

    /// A configuration or architecture the engine does not support.
    #[error("{0}")]
    Unsupported(String),

    /// Bad ids, shapes or settings passed by the caller.
    #[error("{0}")]
    InvalidInput(String),

    #[error("{0}")]
    Tokenizer(String),

    /// The model would not fit in the memory available (checked before loading).
    #[error(transparent)]
    NotEnoughMemory(#[from] crate::memory::NotEnoughMemory),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
