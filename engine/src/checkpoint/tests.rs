//! Unit tests of `checkpoint.rs`: family detection, architecture names, sharded indexes.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use serde_json::json;

#[test]
fn detects_families_and_refuses_the_rest() {
    let detect = |v: Value| detect_architecture(&v);
    assert_eq!(
        detect(json!({"model_type": "llada"})).unwrap(),
        Architecture::Llada
    );
    assert_eq!(
        detect(json!({"model_type": "Dream"})).unwrap(),
        Architecture::Dream
    );
    assert_eq!(
        detect(json!({"architectures": ["LLaDAModelLM"]})).unwrap(),
        Architecture::Llada
    );
    // LLaDA-MoE: `llada` with the MoE class or expert fields, and dllm's `lladamoe`.
    for config in [
        json!({"model_type": "llada", "architectures": ["LLaDAMoEModelLM"]}),
        json!({"model_type": "llada", "num_experts": 64, "moe_topk": 8}),
        json!({"model_type": "lladamoe"}),
    ] {
        assert_eq!(detect(config).unwrap(), Architecture::LladaMoe);
    }
    assert_eq!(
        detect(json!({"model_type": "llada2_moe", "architectures": ["LLaDA2MoeModelLM"], "num_experts": 256}))
            .unwrap(),
        Architecture::Llada2
    );
    // A Qwen2 config is Open-dCoder's; the tokenizer's mask token decides at load.
    assert_eq!(
        detect(json!({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]})).unwrap(),
        Architecture::OpenDcoder
    );
    for (config, family) in [
        (
            json!({"model_type": "sdar", "architectures": ["SDARForCausalLM"]}),
            "SDAR",
        ),
        (
            json!({"model_type": "Fast_dLLM_QwenForCausalLM", "architectures": ["Fast_dLLM_QwenForCausalLM"]}),
            "Fast-dLLM v2",
        ),
        (
            json!({"model_type": "nemotron_diffusion", "architectures": ["NemotronDiffusionForCausalLM"]}),
            "Nemotron-Labs-Diffusion",
        ),
        (
            json!({"model_type": "diffusion_gemma", "architectures": ["DiffusionGemmaForCausalLM"]}),
            "DiffusionGemma",
        ),
    ] {
        let msg = detect(config).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("{family} is not supported")) && msg.contains("supported: llada"),
            "{msg}"
        );
    }
    let msg = detect(json!({"model_type": "qwen2_moe", "num_experts": 60}))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("mixture-of-experts") && msg.contains("llada-moe"),
        "{msg}"
    );
    let error =
        detect(json!({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::UnknownArchitecture { model_type, architectures }
                if model_type == "gpt2" && architectures == &["GPT2LMHeadModel"]
        ),
        "{error}"
    );
    assert!(error.to_string().contains("supported: llada"), "{error}");
}

#[test]
fn arch_names_round_trip() {
    for arch in Architecture::ALL {
        assert_eq!(parse_architecture(arch.name()).unwrap(), arch);
        assert_eq!(
            serde_json::to_value(arch).unwrap(),
            Value::String(arch.name().into())
        );
    }
    assert_eq!(
        parse_architecture("LLaDA_MoE").unwrap(),
        Architecture::LladaMoe
    );
    let err = parse_architecture("gpt").unwrap_err().to_string();
    assert!(
        err.contains("open-dcoder") && err.contains("llada2"),
        "{err}"
    );
}

#[test]
fn index_lists_each_shard_once() {
    let text =
        r#"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s1.safetensors"}}"#;
    assert_eq!(
        shards_from_index(text, Path::new("i.json")).unwrap(),
        vec!["s1.safetensors", "s2.safetensors"]
    );
    assert!(shards_from_index("{}", Path::new("i.json")).is_err());
}
