//! Which hidden states reach the output head: every position of the span, or only the rows a
//! sampler asked for ([`ForwardInput::logits_rows`](crate::model::ForwardInput::logits_rows)).
//! The final norm is per row and the head is a matmul per row, so running both on a subset gives
//! the same logits for those rows as running them on all rows and picking afterwards.

use candle_core::Tensor;

use crate::{Error, Result};

/// `x` `[batch, n, hidden]` restricted to `rows` along dim 1 (`x` itself for `None` or all rows).
pub fn select_rows(x: &Tensor, rows: Option<&[usize]>) -> Result<Tensor> {
    let Some(rows) = rows else {
        return Ok(x.clone());
    };
    let n = x.dim(1)?;
    if rows.is_empty() {
        return Err(Error::InvalidInput(
            "logits_rows is empty: ask for at least one row, or pass None for all".into(),
        ));
    }
    let ascending = rows.windows(2).all(|pair| pair[0] < pair[1]);
    if !ascending || rows.last().is_some_and(|&last| last >= n) {
        return Err(Error::InvalidInput(format!(
            "logits_rows must be ascending, distinct and below the span length {n}, got {rows:?}"
        )));
    }
    if rows.len() == n {
        return Ok(x.clone());
    }
    if let [first, .., last] | [first @ last] = rows {
        if last - first + 1 == rows.len() {
            // A contiguous run (a block's masked tail, say): a view, no gather.
            return Ok(x.narrow(1, *first, rows.len())?);
        }
    }
    let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let index = Tensor::from_vec(index, rows.len(), x.device())?;
    Ok(x.index_select(&index, 1)?)
}
