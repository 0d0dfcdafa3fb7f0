//! Model files, one per architecture family (`llada`, `dream`, `open_dcoder`, `llada_moe`, `llada2`),
//! and the shared building blocks they are made of (`layers`, `moe`). [`build`] turns a parsed
//! `config.json` and a weight source into a [`DiffusionModel`]; finding and reading checkpoints is
//! `checkpoint`'s job.

pub mod dense_rows;
pub mod dream;
pub mod head;
pub mod layers;
pub mod linear;
pub mod llada;
pub mod llada2;
pub mod llada_moe;
pub mod moe;
pub mod open_dcoder;
pub mod quantized;
pub mod weights;

pub use linear::{Quantization, Weights};

use crate::model::{Architecture, DiffusionModel};
use crate::{Error, Result};

/// Parse `config` as the given family's config.
fn parse<T: serde::de::DeserializeOwned>(
    arch: Architecture,
    config: &serde_json::Value,
) -> Result<T> {
    serde_json::from_value(config.clone())
        .map_err(|e| Error::Checkpoint(format!("config.json is not a valid {arch} config: {e}")))
}

/// Build a model of family `arch` from its `config.json` and the weights behind `vb` (which also
/// says how the linear layers are stored).
pub fn build(
    arch: Architecture,
    config: &serde_json::Value,
    vb: Weights,
) -> Result<Box<dyn DiffusionModel>> {
    Ok(match arch {
        Architecture::Llada => Box::new(llada::Model::load(parse(arch, config)?, vb)?),
        Architecture::Dream => Box::new(dream::Model::load(parse(arch, config)?, vb)?),
        Architecture::OpenDcoder => Box::new(open_dcoder::load(parse(arch, config)?, vb)?),
        Architecture::LladaMoe => Box::new(llada_moe::Model::load(parse(arch, config)?, vb)?),
        Architecture::Llada2 => Box::new(llada2::Model::load(parse(arch, config)?, vb)?),
    })
}

/// The model's facts from its config alone (no weights), e.g. for `hone engine info`.
pub fn info(arch: Architecture, config: &serde_json::Value) -> Result<crate::model::ModelInfo> {
    Ok(match arch {
        Architecture::Llada => {
            let c: llada::Config = parse(arch, config)?;
            c.validate()?;
            c.info()
        }
        Architecture::Dream => {
            let c: dream::Config = parse(arch, config)?;
            c.validate()?;
            c.info()
        }
        Architecture::OpenDcoder => {
            let c: open_dcoder::Config = parse(arch, config)?;
            c.validate()?;
            open_dcoder::info(&c)
        }
        Architecture::LladaMoe => {
            let c: llada_moe::Config = parse(arch, config)?;
            c.validate()?;
            c.info()
        }
        Architecture::Llada2 => {
            let c: llada2::Config = parse(arch, config)?;
            c.validate()?;
            c.info()
        }
    })
}
