//! The tensor names llama.cpp's converter writes for each diffusion family, and the rewrites it
//! applies, undone: our model files ask for Hugging Face names (`model.transformer.blocks.3.q_proj
//! .weight`), [`locate`] says where that tensor is in a GGUF (`blk.3.attn_q.weight`), which expert
//! of a stacked `[experts, out, in]` tensor it is, and whether its rows were permuted.
//!
//! Names follow `gguf-py/gguf/tensor_mapping.py` (OLMo names for LLaDA, Qwen2 names for Dream and
//! LLaDA-MoE). Only LLaDA is permuted: llama.cpp runs it with interleaved ("normal") RoPE, so
//! `LLaDAModel.modify_tensors` reorders the rows of `q_proj` / `k_proj` (weight and bias) inside each
//! head from the reference's rotate-half order to interleaved pairs:
//! `stored[h*d + 2j + s] = original[h*d + s*d/2 + j]` (`permute` in `convert_hf_to_gguf.py`, with the
//! key/value head count for `k_proj`). Dream and LLaDA-MoE use NeoX RoPE and are stored as they are.
//! LLaDA-MoE's experts are stacked per layer into `ffn_{gate,up,down}_exps` `[experts, out, in]`.

use crate::model::Architecture;

/// Where a Hugging Face tensor is in a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The GGUF tensor name.
    pub name: String,
    /// The expert's slice of a stacked `[experts, ...]` tensor.
    pub expert: Option<usize>,
    /// The tensor's rows were permuted per head for interleaved RoPE, with this many heads.
    pub permuted_heads: Option<usize>,
}

fn plain(name: String) -> Option<Located> {
    Some(Located {
        name,
        expert: None,
        permuted_heads: None,
    })
}

/// Where `hf_name` (a Hugging Face tensor name of family `arch`) is in a GGUF written by llama.cpp's
/// converter; `None` when the converter writes no such tensor.
pub fn locate(arch: Architecture, hf_name: &str, heads: usize, kv_heads: usize) -> Option<Located> {
    let (stem, suffix) = hf_name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    match arch {
        Architecture::Llada => llada(stem, suffix, heads, kv_heads),
        Architecture::Dream | Architecture::LladaMoe => qwen_style(stem, suffix),
        _ => None,
    }
}

fn llada(stem: &str, suffix: &str, heads: usize, kv_heads: usize) -> Option<Located> {
    let stem = stem.strip_prefix("model.transformer.")?;
    let top = match stem {
        "wte" => Some("token_embd"),
        "ln_f" => Some("output_norm"),
        "ff_out" => Some("output"),
        _ => None,
    };
    if let Some(top) = top {
        return plain(format!("{top}.{suffix}"));
    }
    let rest = stem.strip_prefix("blocks.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (target, permuted) = match part {
        "attn_norm" => ("attn_norm", None),
        "q_proj" => ("attn_q", Some(heads)),
        "k_proj" => ("attn_k", Some(kv_heads)),
        "v_proj" => ("attn_v", None),
        "attn_out" => ("attn_output", None),
        "ff_norm" => ("ffn_norm", None),
        "ff_proj" => ("ffn_gate", None),
        "up_proj" => ("ffn_up", None),
        "ff_out" => ("ffn_down", None),
        _ => return None,
    };
    Some(Located {
        name: format!("blk.{layer}.{target}.{suffix}"),
        expert: None,
        permuted_heads: permuted,
    })
}

fn qwen_style(stem: &str, suffix: &str) -> Option<Located> {
    match stem {
        "model.embed_tokens" => return plain(format!("token_embd.{suffix}")),
        "model.norm" => return plain(format!("output_norm.{suffix}")),
        "lm_head" => return plain(format!("output.{suffix}")),
        _ => {}
    }
    let rest = stem.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    if let Some(expert_part) = part.strip_prefix("mlp.experts.") {
        let (expert, proj) = expert_part.split_once('.')?;
        let target = match proj {
            "gate_proj" => "ffn_gate_exps",
            "up_proj" => "ffn_up_exps",
            "down_proj" => "ffn_down_exps",
            _ => return None,
        };
        return Some(Located {
            name: format!("blk.{layer}.{target}.{suffix}"),
            expert: Some(expert.parse().ok()?),
            permuted_heads: None,
        });
    }
    let target = match part {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "mlp.gate" => "ffn_gate_inp",
        _ => return None,
    };
    plain(format!("blk.{layer}.{target}.{suffix}"))
}

/// Undo the converter's per-head row permutation of `bytes` (`rows` rows of equal size, `heads`
/// heads): stored row `h*d + 2j + s` goes back to `h*d + s*d/2 + j`. `None` when the rows do not
/// split into heads of an even size.
pub fn unpermute_rows(bytes: &[u8], rows: usize, heads: usize) -> Option<Vec<u8>> {
    if rows == 0 || heads == 0 || !rows.is_multiple_of(heads) || !bytes.len().is_multiple_of(rows) {
        return None;
    }
    let head_dim = rows / heads;
    if !head_dim.is_multiple_of(2) {
        return None;
    }
    let row = bytes.len() / rows;
    let half = head_dim / 2;
    let mut out = vec![0u8; bytes.len()];
    for h in 0..heads {
        for j in 0..half {
            for s in 0..2 {
                let stored = h * head_dim + 2 * j + s;
                let original = h * head_dim + s * half + j;
                out[original * row..(original + 1) * row]
                    .copy_from_slice(&bytes[stored * row..(stored + 1) * row]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_follow_the_converter() {
        let at =
            |arch, name| locate(arch, name, 4, 2).map(|l| (l.name, l.expert, l.permuted_heads));
        assert_eq!(
            at(
                Architecture::Llada,
                "model.transformer.blocks.3.ff_proj.weight"
            ),
            Some(("blk.3.ffn_gate.weight".into(), None, None))
        );
        assert_eq!(
            at(
                Architecture::Llada,
                "model.transformer.blocks.0.k_proj.weight"
            ),
            Some(("blk.0.attn_k.weight".into(), None, Some(2)))
        );
        assert_eq!(
            at(Architecture::Llada, "model.transformer.ff_out.weight"),
            Some(("output.weight".into(), None, None))
        );
        assert_eq!(
            at(Architecture::Dream, "model.layers.1.self_attn.q_proj.bias"),
            Some(("blk.1.attn_q.bias".into(), None, None))
        );
        assert_eq!(
            at(
                Architecture::LladaMoe,
                "model.layers.1.mlp.experts.7.down_proj.weight"
            ),
            Some(("blk.1.ffn_down_exps.weight".into(), Some(7), None))
        );
        assert_eq!(
            at(Architecture::LladaMoe, "model.layers.0.mlp.gate.weight"),
            Some(("blk.0.ffn_gate_inp.weight".into(), None, None))
        );
        assert_eq!(
            at(Architecture::Dream, "model.layers.0.mystery.weight"),
            None
        );
    }

    #[test]
    fn unpermute_inverts_the_converter_permutation() {
        // Two heads of size 4, one byte per row: the converter stores [0, 2, 1, 3] within a head.
        let original: Vec<u8> = (0..8).collect();
        let stored = [0u8, 2, 1, 3, 4, 6, 5, 7];
        assert_eq!(unpermute_rows(&stored, 8, 2).unwrap(), original);
        assert!(unpermute_rows(&stored, 8, 3).is_none());
    }
}
