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

    /// A hub id that is neither a folder nor in the local Hugging Face cache, and could not be
    /// downloaded (`why`: offline, or the download's own error). How to fetch it by hand is the
    /// caller's to say (the CLI names the commands).
    #[error("`{id}` is not a folder and is not in the Hugging Face cache at {} ({why})", cache.display())]
    CheckpointMissing {
        id: String,
        cache: PathBuf,
        why: String,
    },

    /// A configuration or architecture the engine does not support.
    #[error("{0}")]
    Unsupported(String),

    /// A config.json whose architecture the engine does not recognise. The weights may still be
    /// one of the supported families under another name; how to say so is the caller's (the CLI
    /// names its flag).
    #[error(
        "unknown architecture: config.json says model_type `{model_type}`, architectures {architectures:?}; {}",
        crate::checkpoint::SUPPORTED
    )]
    UnknownArchitecture {
        model_type: String,
        architectures: Vec<String>,
    },

    /// Bad ids or shapes passed by the caller.
    #[error("{0}")]
    InvalidInput(String),

    /// A sampler setting that is out of range, unknown, or not supported by the chosen sampler.
    /// `field` is the setting's name in `SamplerSettings` (`gen_length`, `remasking`, ...), never a
    /// command-line flag: callers map it to their own spelling (a flag, a request field).
    #[error("{reason}")]
    InvalidSetting { field: &'static str, reason: String },

    #[error("{0}")]
    Tokenizer(String),

    /// The model would not fit in the memory available (checked before loading).
    #[error(transparent)]
    NotEnoughMemory(#[from] crate::memory::NotEnoughMemory),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
