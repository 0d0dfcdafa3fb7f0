//! Mixture-of-experts building blocks shared by LLaDA-MoE (`llada_moe.rs`) and LLaDA2 (`llada2.rs`):
//! the SwiGLU expert, the two routers (softmax top-k; sigmoid with grouped top-k) and the sparse
//! forward that runs each expert only on the tokens routed to it.
//!
//! Routing is decided on the host from the router's f32 scores (`[tokens, experts]`, small), as the
//! references' `moe_infer` does (`tokens_per_expert.cpu()`). The forward then gathers the routed
//! tokens sorted by expert with one `index_select`, runs each expert that received tokens on its
//! contiguous slice, concatenates the outputs, scales them by the routing weights in f32 and sums
//! them back per token with one `index_add`. Experts no token chose cost nothing; the same tensor
//! ops run on CUDA.

use super::layers::{FusedLinear, Linear, Weights};
use crate::Result;
use candle_core::{DType, Tensor};

/// `down(silu(gate(x)) * up(x))` without biases (tensor names `gate_proj`, `up_proj`, `down_proj`).
#[derive(Debug, Clone)]
pub struct Mlp {
    /// `gate_proj` and `up_proj` packed into one matmul (also per expert: half the calls on the
    /// few tokens each expert receives).
    gate_up: FusedLinear,
    down_proj: Linear,
}

impl Mlp {
    pub fn load(vb: Weights, hidden: usize, intermediate: usize) -> candle_core::Result<Self> {
        Ok(Self {
            gate_up: FusedLinear::load(
                &[
                    (vb.pp("gate_proj"), intermediate),
                    (vb.pp("up_proj"), intermediate),
                ],
                hidden,
                false,
            )?,
            down_proj: Linear::load(vb.pp("down_proj"), intermediate, hidden, false)?,
        })
    }

    /// An MLP of dense weights (`gate`, `up` `[intermediate, hidden]`, `down` `[hidden,
    /// intermediate]`).
    pub fn from_weights(gate: Tensor, up: Tensor, down: Tensor) -> candle_core::Result<Self> {
        Ok(Self {
            gate_up: FusedLinear::pack(vec![Linear::from_weight(gate), Linear::from_weight(up)])?,
            down_proj: Linear::from_weight(down),
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [gate, up] = self.gate_up.forward_n(x)?;
        self.down_proj.forward(&(gate.silu()? * up)?)
    }
}

/// How a router turns one token's scores into `(expert, weight)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// LLaDA-MoE (OLMoE): softmax over all experts in f32, `+ bias` when present, top-k of that; the
    /// weights are the chosen (biased) values, never renormalised.
    SoftmaxTopK {
        top_k: usize,
        bias: Option<Vec<f32>>,
    },
    /// LLaDA2 (DeepSeek-V3 style): sigmoid scores; the choice uses `score + bias`: the experts form
    /// `n_group` groups scored by the sum of their best two, the best `topk_group` groups are kept and
    /// the top-k experts among them are chosen; the weights are the *unbiased* scores of the chosen
    /// experts, divided by their sum (+1e-20) when `top_k > 1`, times `routed_scaling_factor`.
    SigmoidGrouped {
        top_k: usize,
        n_group: usize,
        topk_group: usize,
        routed_scaling_factor: f32,
        bias: Vec<f32>,
    },
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first (NaN sorts
/// last).
fn top_indices(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        values[b]
            .partial_cmp(&values[a])
            .unwrap_or_else(|| values[a].is_nan().cmp(&values[b].is_nan()))
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

impl Routing {
    pub fn top_k(&self) -> usize {
        match self {
            Routing::SoftmaxTopK { top_k, .. } | Routing::SigmoidGrouped { top_k, .. } => *top_k,
        }
    }

    /// The chosen experts and their weights for one token's router logits (f32, one per expert).
    pub fn route(&self, logits: &[f32]) -> Vec<(usize, f32)> {
        match self {
            Routing::SoftmaxTopK { top_k, bias } => {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                let mut probs: Vec<f32> = exps.iter().map(|&e| e / sum).collect();
                if let Some(bias) = bias {
                    for (p, b) in probs.iter_mut().zip(bias) {
                        *p += b;
                    }
                }
                top_indices(&probs, *top_k)
                    .into_iter()
                    .map(|e| (e, probs[e]))
                    .collect()
            }
            Routing::SigmoidGrouped {
                top_k,
                n_group,
                topk_group,
                routed_scaling_factor,
                bias,
            } => {
                let scores: Vec<f32> = logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect();
                let biased: Vec<f32> = scores.iter().zip(bias).map(|(s, b)| s + b).collect();
                let per_group = biased.len() / (*n_group).max(1);
                let group_scores: Vec<f32> = biased
                    .chunks(per_group.max(1))
                    .map(|group| top_indices(group, 2).iter().map(|&i| group[i]).sum())
                    .collect();
                let kept = top_indices(&group_scores, *topk_group);
                let masked: Vec<f32> = biased
                    .iter()
                    .enumerate()
                    .map(|(e, &v)| {
                        if kept.contains(&(e / per_group.max(1))) {
                            v
                        } else {
                            f32::NEG_INFINITY
                        }
                    })
                    .collect();
                let chosen = top_indices(&masked, *top_k);
                let picked: Vec<f32> = chosen.iter().map(|&e| scores[e]).collect();
                let norm = if *top_k > 1 {
                    picked.iter().sum::<f32>() + 1e-20
                } else {
                    1.0
                };
                chosen
                    .into_iter()
                    .zip(picked)
                    .map(|(e, s)| (e, s / norm * routed_scaling_factor))
                    .collect()
            }
        }
    }
}

/// Tokens grouped by expert: `tokens[i]` is routed to `expert_of[i]` with `weights[i]`, sorted by
/// expert; `counts[e]` tokens go to expert `e`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub tokens: Vec<u32>,
    pub weights: Vec<f32>,
    pub counts: Vec<usize>,
}

/// Route every token (`logits` `[tokens][experts]`) and group the assignments by expert.
pub fn dispatch(routing: &Routing, logits: &[Vec<f32>], num_experts: usize) -> Dispatch {
    let mut per_expert: Vec<Vec<(u32, f32)>> = vec![Vec::new(); num_experts];
    for (token, row) in logits.iter().enumerate() {
        for (expert, weight) in routing.route(row) {
            if let Some(list) = per_expert.get_mut(expert) {
                list.push((token as u32, weight));
            }
        }
    }
    let counts = per_expert.iter().map(Vec::len).collect();
    let (tokens, weights) = per_expert.into_iter().flatten().unzip();
    Dispatch {
        tokens,
        weights,
        counts,
    }
}

/// A sparse MoE feed-forward: router, routed experts, optional shared expert(s) added to every token.
#[derive(Debug)]
pub struct SparseMoe {
    /// Router weight `[experts, hidden]`, kept in f32 when `router_f32`.
    router: Tensor,
    router_f32: bool,
    experts: Vec<Mlp>,
    shared: Option<Mlp>,
    routing: Routing,
}

impl SparseMoe {
    /// `router` is the gate weight as loaded; with `router_f32` the router runs in f32 (LLaDA2's
    /// `router_dtype`), otherwise in the model dtype before the f32 softmax (LLaDA-MoE).
    pub fn new(
        router: Tensor,
        router_f32: bool,
        experts: Vec<Mlp>,
        shared: Option<Mlp>,
        routing: Routing,
    ) -> Self {
        Self {
            router,
            router_f32,
            experts,
            shared,
            routing,
        }
    }

    /// The routing of `x` `[tokens, hidden]` (host side).
    pub fn dispatch(&self, x: &Tensor) -> Result<Dispatch> {
        let logits = if self.router_f32 {
            x.to_dtype(DType::F32)?
                .matmul(&self.router.to_dtype(DType::F32)?.t()?)?
        } else {
            x.matmul(&self.router.t()?)?.to_dtype(DType::F32)?
        };
        let logits = logits.to_vec2::<f32>()?;
        Ok(dispatch(&self.routing, &logits, self.experts.len()))
    }

    /// `x` `[batch, len, hidden]` -> `[batch, len, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let hidden = dims[dims.len() - 1];
        let tokens = x.elem_count() / hidden.max(1);
        let flat = x.reshape((tokens, hidden))?;
        let plan = self.dispatch(&flat)?;
        let device = x.device();
        let dtype = x.dtype();
        let index = Tensor::from_vec(plan.tokens.clone(), plan.tokens.len(), device)?;
        let sorted = flat.index_select(&index, 0)?;
        let mut outputs = Vec::new();
        let mut start = 0;
        for (expert, &count) in self.experts.iter().zip(&plan.counts) {
            if count > 0 {
                outputs.push(expert.forward(&sorted.narrow(0, start, count)?)?);
                start += count;
            }
        }
        let routed = Tensor::cat(&outputs, 0)?.to_dtype(DType::F32)?;
        let weights = Tensor::from_vec(plan.weights, (start, 1), device)?;
        let routed = routed.broadcast_mul(&weights)?;
        let summed = Tensor::zeros((tokens, hidden), DType::F32, device)?
            .index_add(&index, &routed, 0)?
            .to_dtype(dtype)?;
        let y = match &self.shared {
            Some(shared) => (summed + shared.forward(&flat)?)?,
            None => summed,
        };
        Ok(y.reshape(dims)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn softmax_router_keeps_raw_top_probabilities() {
        let routing = Routing::SoftmaxTopK {
            top_k: 2,
            bias: None,
        };
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let chosen = routing.route(&logits);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert_eq!(chosen.len(), 2);
        assert_eq!((chosen[0].0, chosen[1].0), (1, 2));
        assert!((chosen[0].1 - 2f32.exp() / z).abs() < 1e-6);
        assert!((chosen[1].1 - 1f32.exp() / z).abs() < 1e-6);
        // Not renormalised: the two weights do not sum to one.
        assert!(chosen[0].1 + chosen[1].1 < 0.95);

        // A bias changes the choice and is part of the weight.
        let routing = Routing::SoftmaxTopK {
            top_k: 1,
            bias: Some(vec![0.0, 0.0, 0.0, 1.0]),
        };
        let chosen = routing.route(&logits);
        assert_eq!(chosen[0].0, 3);
        assert!((chosen[0].1 - ((-1f32).exp() / z + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn grouped_sigmoid_router_limits_groups_and_ignores_bias_in_weights() {
        // 8 experts in 4 groups of 2; top-2 of the best 2 groups.
        let logits = [3.0f32, -3.0, 0.5, 0.4, 2.0, 2.0, -2.0, -2.5];
        let routing = Routing::SigmoidGrouped {
            top_k: 2,
            n_group: 4,
            topk_group: 2,
            routed_scaling_factor: 2.5,
            bias: vec![0.0; 8],
        };
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        // Group sums: g0 = s(3)+s(-3) = 1.0, g1 = s(.5)+s(.4) ~ 1.22, g2 = 2 s(2) ~ 1.76, g3 small.
        // Kept groups: g2 and g1, so expert 0 (the best single score) is not eligible.
        let chosen = routing.route(&logits);
        let experts: Vec<usize> = chosen.iter().map(|c| c.0).collect();
        assert_eq!(experts, vec![4, 5]);
        let w = 2.5 * sig(2.0) / (2.0 * sig(2.0) + 1e-20);
        assert!((chosen[0].1 - w).abs() < 1e-6 && (chosen[1].1 - w).abs() < 1e-6);

        // A bias moves the choice to group 0, but the weights stay the unbiased scores.
        let mut bias = vec![0.0; 8];
        bias[0] = 1.0;
        let routing = Routing::SigmoidGrouped {
            top_k: 2,
            n_group: 4,
            topk_group: 1,
            routed_scaling_factor: 1.0,
            bias,
        };
        let chosen = routing.route(&logits);
        assert_eq!(chosen[0].0, 0);
        assert_eq!(chosen[1].0, 1);
        let total = sig(3.0) + sig(-3.0);
        assert!((chosen[0].1 - sig(3.0) / total).abs() < 1e-6);
    }

    #[test]
    fn dispatch_groups_tokens_by_expert() {
        let routing = Routing::SoftmaxTopK {
            top_k: 1,
            bias: None,
        };
        let logits = vec![
            vec![0.0, 5.0, 0.0],
            vec![5.0, 0.0, 0.0],
            vec![0.0, 5.0, 0.0],
        ];
        let plan = dispatch(&routing, &logits, 3);
        assert_eq!(plan.tokens, vec![1, 0, 2]);
        assert_eq!(plan.counts, vec![1, 2, 0]);
    }

    #[test]
    fn sparse_forward_equals_the_dense_weighted_sum() {
        use candle_core::Device;
        let dev = Device::Cpu;
        let (hidden, inter, experts) = (6, 4, 4);
        let mlp = |seed: usize| {
            let w = |r: usize, c: usize, s: usize| {
                let v: Vec<f32> = (0..r * c)
                    .map(|i| (((i * 7 + s * 13) % 11) as f32 - 5.0) * 0.05)
                    .collect();
                Tensor::from_vec(v, (r, c), &dev).unwrap()
            };
            Mlp::from_weights(
                w(inter, hidden, seed),
                w(inter, hidden, seed + 1),
                w(hidden, inter, seed + 2),
            )
            .unwrap()
        };
        let experts_list: Vec<Mlp> = (0..experts).map(|e| mlp(3 * e)).collect();
        let router_values: Vec<f32> = (0..experts * hidden)
            .map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.3)
            .collect();
        let router = Tensor::from_vec(router_values, (experts, hidden), &dev).unwrap();
        let routing = Routing::SoftmaxTopK {
            top_k: 2,
            bias: None,
        };
        let moe = SparseMoe::new(router, true, experts_list.clone(), None, routing);
        let xs: Vec<f32> = (0..5 * hidden)
            .map(|i| ((i % 7) as f32 - 3.0) * 0.2)
            .collect();
        let x = Tensor::from_vec(xs, (1, 5, hidden), &dev).unwrap();
        let sparse = moe.forward(&x).unwrap();

        // Dense reference: every expert on every token, weighted by the routing (0 when not chosen).
        let flat = x.reshape((5, hidden)).unwrap();
        let plan = moe.dispatch(&flat).unwrap();
        let mut weight = vec![vec![0f32; experts]; 5];
        let mut start = 0;
        for (e, &count) in plan.counts.iter().enumerate() {
            for i in start..start + count {
                weight[plan.tokens[i] as usize][e] = plan.weights[i];
            }
            start += count;
        }
        let mut dense = Tensor::zeros((5, hidden), DType::F32, &dev).unwrap();
        for (e, expert) in experts_list.iter().enumerate() {
            let w: Vec<f32> = weight.iter().map(|row| row[e]).collect();
            let w = Tensor::from_vec(w, (5, 1), &dev).unwrap();
            dense = (dense + expert.forward(&flat).unwrap().broadcast_mul(&w).unwrap()).unwrap();
        }
        let diff = (sparse.reshape((5, hidden)).unwrap() - dense)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "sparse and dense differ by {diff}");
        assert_eq!(
            plan.tokens.len(),
            5 * 2,
            "each token goes to exactly top_k experts"
        );
    }
}
