//! Checking a checkpoint against reference logits, as `hone engine forward` does: reading the
//! forward's input (`input_ids` and an optional `attention_mask` from a safetensors file, checked
//! and converted to u32) and comparing logits with a reference (max absolute or relative L2 error,
//! and how many positions keep the reference's argmax: a quantized run's practical error).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Reads `input_ids` (integer `[batch, len]`) and the optional `attention_mask` (same shape) of a
/// forward from a safetensors file, as u32 tensors on the CPU. Anything else is `InvalidInput`.
pub fn read_forward_input(path: &Path) -> Result<(Tensor, Option<Tensor>)> {
    if !path.exists() {
        return Err(bad(format!("input file {} does not exist", path.display())));
    }
    let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| {
        bad(format!(
            "{} is not a readable safetensors file (truncated?): {e}",
            path.display()
        ))
    })?;
    let Some(ids) = tensors.remove("input_ids") else {
        let mut found: Vec<&String> = tensors.keys().collect();
        found.sort();
        return Err(bad(format!(
            "{} has no `input_ids` tensor (found: {found:?})",
            path.display()
        )));
    };
    let ids = integer_matrix(&ids, "input_ids")?;
    let (batch, len) = ids.dims2()?;
    if batch == 0 || len == 0 {
        return Err(bad(format!(
            "`input_ids` is empty (shape [{batch}, {len}])"
        )));
    }
    let mask = match tensors.remove("attention_mask") {
        Some(mask) => {
            let mask = integer_matrix(&mask, "attention_mask")?;
            if mask.dims() != ids.dims() {
                return Err(bad(format!(
                    "`attention_mask` has shape {:?}, `input_ids` has {:?}: they must match",
                    mask.dims(),
                    ids.dims()
                )));
            }
            Some(mask)
        }
        None => None,
    };
    Ok((ids, mask))
}

fn bad(message: String) -> Error {
    Error::InvalidInput(message)
}

/// An integer `[B, L]` tensor as u32, refusing floats, other ranks and negative values.
fn integer_matrix(tensor: &Tensor, name: &str) -> Result<Tensor> {
    if tensor.rank() != 2 {
        return Err(bad(format!(
            "`{name}` must be 2-D [batch, len], got shape {:?}",
            tensor.dims()
        )));
    }
    if !matches!(
        tensor.dtype(),
        DType::I64 | DType::U32 | DType::U8 | DType::I32 | DType::I16
    ) {
        return Err(bad(format!(
            "`{name}` must hold integers, got {:?}",
            tensor.dtype()
        )));
    }
    let wide = tensor.to_dtype(DType::I64)?;
    if tensor.elem_count() > 0 && wide.min_all()?.to_scalar::<i64>()? < 0 {
        return Err(bad(format!("`{name}` holds negative values")));
    }
    if tensor.elem_count() > 0 && wide.max_all()?.to_scalar::<i64>()? > i64::from(u32::MAX) {
        return Err(bad(format!("`{name}` holds values beyond u32")));
    }
    Ok(wide.to_dtype(DType::U32)?)
}

/// How far logits are from a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct LogitsError {
    /// `max |got - want|`, or `||got - want|| / ||want||` when compared relatively.
    pub error: f64,
    /// Whether `error` is the relative L2 error.
    pub relative: bool,
    /// Positions whose argmax is the reference's.
    pub argmax_agreeing: usize,
    /// Positions compared.
    pub positions: usize,
}

impl LogitsError {
    /// What `error` measures, for people.
    pub fn kind(&self) -> &'static str {
        if self.relative {
            "relative L2 error"
        } else {
            "max abs error"
        }
    }
}

/// Compares `got` with `want` (same shape, vocabulary last); a shape mismatch is `InvalidInput`.
pub fn compare_logits(got: &Tensor, want: &Tensor, relative: bool) -> Result<LogitsError> {
    if got.dims() != want.dims() {
        return Err(bad(format!(
            "the reference has shape {:?}, the logits have {:?}",
            want.dims(),
            got.dims()
        )));
    }
    let want = want.to_dtype(DType::F64)?;
    let difference = (got.to_dtype(DType::F64)? - &want)?;
    let error = if relative {
        let norm =
            |t: &Tensor| -> Result<f64> { Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt()) };
        norm(&difference)? / norm(&want)?.max(f64::MIN_POSITIVE)
    } else {
        difference.abs()?.max_all()?.to_scalar::<f64>()?
    };
    let argmax = |t: &Tensor| -> Result<Vec<u32>> {
        let last = t.rank().saturating_sub(1);
        Ok(t.argmax(last)?.flatten_all()?.to_vec1::<u32>()?)
    };
    let (got_ids, want_ids) = (argmax(got)?, argmax(&want)?);
    let argmax_agreeing = got_ids
        .iter()
        .zip(&want_ids)
        .filter(|(a, b)| a == b)
        .count();
    Ok(LogitsError {
        error,
        relative,
        argmax_agreeing,
        positions: want_ids.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn errors_and_argmax_agreement_are_measured() {
        let want = Tensor::new(&[[[1f32, 2., 3.], [3., 2., 1.]]], &Device::Cpu).unwrap();
        let got = Tensor::new(&[[[1f32, 2., 3.5], [1., 2., 1.5]]], &Device::Cpu).unwrap();
        let absolute = compare_logits(&got, &want, false).unwrap();
        assert!((absolute.error - 2.0).abs() < 1e-12);
        assert_eq!((absolute.argmax_agreeing, absolute.positions), (1, 2));
        let relative = compare_logits(&got, &want, true).unwrap();
        let expected = (0.25f64 + 4.0 + 0.25).sqrt() / 28f64.sqrt();
        assert!((relative.error - expected).abs() < 1e-12);
        let short = Tensor::new(&[[[1f32, 2.]]], &Device::Cpu).unwrap();
        assert!(matches!(
            compare_logits(&short, &want, false),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn forward_inputs_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.safetensors");
        let write = |tensors: Vec<(&str, Tensor)>| {
            let map: HashMap<String, Tensor> = tensors
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            candle_core::safetensors::save(&map, &path).unwrap();
        };
        let ids = Tensor::new(&[[1i64, 2, 3]], &Device::Cpu).unwrap();
        write(vec![("input_ids", ids.clone())]);
        let (read, mask) = read_forward_input(&path).unwrap();
        assert_eq!(read.to_vec2::<u32>().unwrap(), vec![vec![1, 2, 3]]);
        assert!(mask.is_none());
        for bad in [
            vec![(
                "input_ids",
                Tensor::new(&[[-1i64, 2]], &Device::Cpu).unwrap(),
            )],
            vec![(
                "input_ids",
                Tensor::new(&[[1f32, 2.]], &Device::Cpu).unwrap(),
            )],
            vec![("input_ids", Tensor::new(&[1i64, 2], &Device::Cpu).unwrap())],
            vec![("ids", ids.clone())],
            vec![
                ("input_ids", ids.clone()),
                (
                    "attention_mask",
                    Tensor::new(&[[1i64, 1]], &Device::Cpu).unwrap(),
                ),
            ],
        ] {
            write(bad);
            assert!(matches!(
                read_forward_input(&path),
                Err(Error::InvalidInput(_))
            ));
        }
        assert!(matches!(
            read_forward_input(&dir.path().join("missing.safetensors")),
            Err(Error::InvalidInput(_))
        ));
    }
}
