//! Text in and out of a checkpoint: the `tokenizers` tokenizer, the chat prompt rendered from the
//! checkpoint's own Jinja `chat_template` (minijinja with Python string methods, configured like
//! transformers: `trim_blocks`, `lstrip_blocks`), built-in LLaDA and Qwen-style templates when a
//! checkpoint ships none, the special ids (mask, eos, pad, bos, end of turn) and the sampler defaults
//! of `generation_config.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Architecture;
use crate::{Error, Result};

/// Ids with a special meaning for decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecialTokens {
    /// The `[MASK]` id the diffusion model denoises.
    pub mask: u32,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub bos: Option<u32>,
    /// Ids that end an assistant turn besides `eos` (`<|eot_id|>`, `<|im_end|>`, further
    /// `eos_token_id`s of `generation_config.json`).
    pub end_of_turn: Vec<u32>,
}

/// Sampler settings a checkpoint suggests in `generation_config.json` (all optional; unknown fields
/// are ignored).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct GenerationDefaults {
    pub steps: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub max_length: Option<usize>,
    pub gen_length: Option<usize>,
    pub block_length: Option<usize>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub alg: Option<String>,
    pub alg_temp: Option<f64>,
    pub threshold: Option<f64>,
    pub eps: Option<f64>,
    pub cfg_scale: Option<f64>,
    pub remasking: Option<String>,
}

impl GenerationDefaults {
    pub fn from_json(value: &Value) -> Self {
        // Fields of the wrong type (e.g. `top_k: null` is fine, `"steps": "x"` is not) are dropped
        // one by one rather than failing the whole file.
        let mut clean = serde_json::Map::new();
        if let Value::Object(map) = value {
            for (key, v) in map {
                let mut probe = serde_json::Map::new();
                probe.insert(key.clone(), v.clone());
                if serde_json::from_value::<Self>(Value::Object(probe)).is_ok() {
                    clean.insert(key.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(Value::Object(clean)).unwrap_or_default()
    }
}

/// One turn of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// LLaDA-8B-Instruct's template (Llama-3 headers, `<|eot_id|>` ends a turn).
pub const LLADA_TEMPLATE: &str = "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 and bos_token %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// Qwen2-style ChatML template (Dream, DiffuCoder), with Qwen's default system prompt.
pub const QWEN_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The model's mask token as this tokenizer knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskToken {
    pub id: u32,
    /// The token's text (`None` when the id is outside the tokenizer's vocabulary).
    pub text: Option<String>,
    /// Whether the tokenizer marks it special (`<|mask|>`, `[MASK]`); an ordinary token (e.g. Qwen3's
    /// `</tool_response>` at Dream's mask id 151666) means tokenizer and model do not belong together.
    pub special: bool,
}

/// Something odd about a checkpoint that does not stop it from loading; the caller shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoadWarning {
    /// The model's mask id is an ordinary token of the tokenizer: prompts containing that text
    /// would be read as holes to fill, so they are refused.
    MaskIsOrdinaryToken { id: u32, token: String },
    /// The model's mask id is not in the tokenizer's vocabulary at all.
    MaskOutsideTokenizer { id: u32, tokenizer_vocab: usize },
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadWarning::MaskIsOrdinaryToken { id, token } => write!(
                f,
                "the model's mask id {id} is the ordinary token `{token}` of this tokenizer, not a special \
                 mask token: the tokenizer probably does not belong to this checkpoint (e.g. a stock Qwen \
                 tokenizer next to Dream weights); prompts containing `{token}` will be refused"
            ),
            LoadWarning::MaskOutsideTokenizer {
                id,
                tokenizer_vocab,
            } => write!(
                f,
                "the model's mask id {id} is outside the tokenizer's vocabulary of {tokenizer_vocab}: the \
                 tokenizer probably does not belong to this checkpoint"
            ),
        }
    }
}

/// A tokenizer with its chat template.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    template: String,
    template_is_builtin: bool,
    bos_token: Option<String>,
    eos_token: Option<String>,
    mask: Option<MaskToken>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("template_is_builtin", &self.template_is_builtin)
            .finish()
    }
}

/// A token named in `tokenizer_config.json`: a string or `{"content": ...}`.
fn token_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The `chat_template` of `tokenizer_config.json`: a string, or a list of `{name, template}` of
/// which `default` is used.
fn chat_template(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| list.first())
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

impl TextTokenizer {
    /// Load `tokenizer.json`, with `tokenizer_config.json`'s template and tokens when given; a
    /// checkpoint without a template gets the built-in one that fits its special tokens (ChatML when
    /// the vocabulary has `<|im_start|>`, Llama-3 headers when it has `<|start_header_id|>`), else
    /// its family's.
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Value>,
        family: Architecture,
    ) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(tokenizer_json).map_err(|e| {
            Error::Tokenizer(format!("cannot load {}: {e}", tokenizer_json.display()))
        })?;
        let own = tokenizer_config.and_then(chat_template);
        let template_is_builtin = own.is_none();
        let template = own.unwrap_or_else(|| {
            let builtin = if inner.token_to_id("<|im_start|>").is_some() {
                QWEN_TEMPLATE
            } else if inner.token_to_id("<|start_header_id|>").is_some() {
                LLADA_TEMPLATE
            } else {
                match family {
                    Architecture::Llada | Architecture::LladaMoe | Architecture::Llada2 => {
                        LLADA_TEMPLATE
                    }
                    Architecture::Dream | Architecture::OpenDcoder => QWEN_TEMPLATE,
                }
            };
            builtin.to_string()
        });
        Ok(Self {
            inner,
            template,
            template_is_builtin,
            bos_token: tokenizer_config.and_then(|c| token_string(c.get("bos_token"))),
            eos_token: tokenizer_config.and_then(|c| token_string(c.get("eos_token"))),
            mask: None,
        })
    }

    /// Tell the tokenizer the model's mask id: [`Self::encode`] then refuses text that encodes to
    /// it, naming the cause. Returns the warning to show when the id is not a special token here.
    pub fn set_mask(&mut self, id: u32) -> Option<LoadWarning> {
        let text = self.inner.id_to_token(id);
        let special = self
            .inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special);
        self.mask = Some(MaskToken {
            id,
            text: text.clone(),
            special,
        });
        match text {
            None => Some(LoadWarning::MaskOutsideTokenizer {
                id,
                tokenizer_vocab: self.vocab_size(),
            }),
            Some(token) if !special => Some(LoadWarning::MaskIsOrdinaryToken { id, token }),
            Some(_) => None,
        }
    }

    /// The model's mask token, once [`Self::set_mask`] was called.
    pub fn mask(&self) -> Option<&MaskToken> {
        self.mask.as_ref()
    }

    /// Text to ids. Text that encodes to the model's mask id is refused, saying why: a mask in the
    /// prompt would be read as a position to fill.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let ids = encoding.get_ids().to_vec();
        if let Some(mask) = &self.mask {
            if ids.contains(&mask.id) {
                let token = mask.text.as_deref().unwrap_or("?");
                return Err(Error::InvalidInput(if mask.special {
                    format!(
                        "the text contains the mask token `{token}` (id {}), which the model would read as a \
                         position to fill: remove it from the prompt",
                        mask.id
                    )
                } else {
                    format!(
                        "the text contains `{token}`, which this tokenizer encodes as id {id}: the model's mask \
                         id. The tokenizer is an ordinary one whose token {id} is not a mask token, so it does \
                         not belong to this checkpoint: use the checkpoint's own tokenizer.json (or remove \
                         `{token}` from the prompt)",
                        id = mask.id
                    )
                }));
            }
        }
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    pub fn token_count(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text, false)?.len())
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The Jinja source in use, and whether it is a built-in fallback.
    pub fn chat_template(&self) -> (&str, bool) {
        (&self.template, self.template_is_builtin)
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Render `messages` with the chat template, ending with the assistant header when
    /// `add_generation_prompt`.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let mut env = minijinja::Environment::new();
        // transformers renders with `trim_blocks=True, lstrip_blocks=True`.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        env.add_template("chat", &self.template)
            .map_err(|e| Error::Tokenizer(format!("the chat template does not parse: {e:#}")))?;
        let template = env
            .get_template("chat")
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.clone().unwrap_or_default(),
                eos_token => self.eos_token.clone().unwrap_or_default(),
            })
            .map_err(|e| Error::Tokenizer(format!("rendering the chat template failed: {e:#}")))
    }
}

/// The mask token among the tokenizer's *special* added tokens, found by pattern: its text without
/// the delimiters `<`, `>`, `[`, `]`, `|` is `mask`, `mdm_mask`, `mask_token` or `m` (any case), e.g.
/// `<|mask|>`, `[MASK]`, `<mask>`, `<|mdm_mask|>`, Open-dCoder's `<M>`. The lowest such id wins.
pub fn find_mask_token(tokenizer: &TextTokenizer) -> Option<(u32, String)> {
    let mut found: Vec<(u32, String)> = tokenizer
        .inner
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special && is_mask_name(&token.content))
        .map(|(id, token)| (id, token.content))
        .collect();
    found.sort();
    found.into_iter().next()
}

fn is_mask_name(content: &str) -> bool {
    let core = content
        .trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '|'))
        .to_ascii_lowercase();
    let bracketed = core.len() < content.len();
    matches!(core.as_str(), "mask" | "mdm_mask" | "mask_token") || (bracketed && core == "m")
}

/// The ids of `eos_token_id`-style fields: a number or a list of numbers.
fn ids_of(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_u64)
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// Work out the special ids from `config.json`, `generation_config.json`, `tokenizer_config.json`
/// and the vocabulary, in that order of precedence.
pub fn special_tokens(
    config: &Value,
    generation: Option<&Value>,
    tokenizer_config: Option<&Value>,
    tokenizer: Option<&TextTokenizer>,
) -> Result<SpecialTokens> {
    let field = |name: &str| -> Vec<u32> {
        let from_config = ids_of(config.get(name));
        if from_config.is_empty() {
            generation.map(|g| ids_of(g.get(name))).unwrap_or_default()
        } else {
            from_config
        }
    };
    let by_name = |key: &str| -> Option<u32> {
        let token = tokenizer_config.and_then(|c| token_string(c.get(key)))?;
        tokenizer?.token_to_id(&token)
    };
    let vocab =
        |names: &[&str]| -> Option<u32> { names.iter().find_map(|n| tokenizer?.token_to_id(n)) };

    let mask = field("mask_token_id")
        .first()
        .copied()
        .or_else(|| vocab(&["<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>"]))
        .or_else(|| tokenizer.and_then(find_mask_token).map(|(id, _)| id))
        .ok_or_else(|| {
            Error::Checkpoint(
                "no mask token: config.json has no mask_token_id and the tokenizer has no special mask token \
                 (<|mdm_mask|>, <|mask|>, [MASK], <M>, ...); is this a diffusion checkpoint?"
                    .into(),
            )
        })?;
    // generation_config's eos list (e.g. [eos, eot]) wins over config.json's single id.
    let mut eos_ids = generation
        .map(|g| ids_of(g.get("eos_token_id")))
        .unwrap_or_default();
    if eos_ids.is_empty() {
        eos_ids = ids_of(config.get("eos_token_id"));
    }
    let eos = eos_ids.first().copied().or_else(|| by_name("eos_token"));
    let pad = field("pad_token_id")
        .first()
        .copied()
        .or_else(|| by_name("pad_token"));
    let bos = field("bos_token_id")
        .first()
        .copied()
        .or_else(|| by_name("bos_token"));
    let mut end_of_turn: Vec<u32> = eos_ids.iter().skip(1).copied().collect();
    for name in ["<|eot_id|>", "<|im_end|>", "<|end_of_turn|>", "<|end|>"] {
        if let Some(id) = vocab(&[name]) {
            if Some(id) != eos && !end_of_turn.contains(&id) {
                end_of_turn.push(id);
            }
        }
    }
    Ok(SpecialTokens {
        mask,
        eos,
        pad,
        bos,
        end_of_turn,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn special_ids_follow_precedence() {
        let config = json!({"mask_token_id": 250, "eos_token_id": 251, "pad_token_id": 252});
        let generation =
            json!({"eos_token_id": [7, 8], "steps": 128, "top_k": null, "alg": "entropy"});
        let ids = special_tokens(&config, Some(&generation), None, None).unwrap();
        assert_eq!(
            ids,
            SpecialTokens {
                mask: 250,
                eos: Some(7),
                pad: Some(252),
                bos: None,
                end_of_turn: vec![8]
            }
        );
        let ids = special_tokens(&config, None, None, None).unwrap();
        assert_eq!(ids.eos, Some(251));
        let err = special_tokens(&json!({}), None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mask_token_id"), "{err}");
        let defaults = GenerationDefaults::from_json(
            &json!({"steps": 128, "alg": "entropy", "top_k": null, "eps": "bad"}),
        );
        assert_eq!(defaults.steps, Some(128));
        assert_eq!(defaults.alg.as_deref(), Some("entropy"));
        assert_eq!(defaults.eps, None);
    }

    #[test]
    fn mask_tokens_are_recognised_by_pattern() {
        for name in [
            "<|mask|>",
            "[MASK]",
            "<mask>",
            "<|mdm_mask|>",
            "<M>",
            "[mask_token]",
        ] {
            assert!(is_mask_name(name), "{name}");
        }
        for name in [
            "M",
            "<|im_start|>",
            "<|endoftext|>",
            "<masked>",
            "<|fim_middle|>",
        ] {
            assert!(!is_mask_name(name), "{name}");
        }
    }
}

#[cfg(test)]
mod qwen3_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::PathBuf;

    fn qwen3() -> TextTokenizer {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tokenizers/qwen3");
        let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap();
        let config: Value = serde_json::from_str(&text).unwrap();
        TextTokenizer::from_files(
            &dir.join("tokenizer.json"),
            Some(&config),
            Architecture::Dream,
        )
        .unwrap()
    }

    #[test]
    fn real_source_code_round_trips() {
        let tokenizer = qwen3();
        let source = include_str!("checkpoint.rs");
        let ids = tokenizer.encode(source, false).unwrap();
        assert!(
            ids.len() > 500 && ids.len() < source.len(),
            "{} ids",
            ids.len()
        );
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), source);
        assert_eq!(tokenizer.token_count(source).unwrap(), ids.len());
        let im_end = tokenizer.token_to_id("<|im_end|>").unwrap();
        assert_eq!(tokenizer.encode("<|im_end|>", false).unwrap(), vec![im_end]);
        assert_eq!(tokenizer.decode(&[im_end], true).unwrap(), "");
    }

    #[test]
    fn renders_the_checkpoints_own_multi_turn_template() {
        let tokenizer = qwen3();
        assert!(
            !tokenizer.chat_template().1,
            "the checkpoint ships a template"
        );
        let messages = [
            ChatMessage::new("system", "You are hone."),
            ChatMessage::new("user", "Write add."),
            // Qwen3's template strips an earlier turn's reasoning with Python string methods.
            ChatMessage::new("assistant", "<think>\nthinking\n</think>\n\nfn add() {}"),
            ChatMessage::new("user", "Now sub."),
        ];
        let rendered = tokenizer.render_chat(&messages, true).unwrap();
        let expected = "<|im_start|>system\nYou are hone.<|im_end|>\n\
                        <|im_start|>user\nWrite add.<|im_end|>\n\
                        <|im_start|>assistant\nfn add() {}<|im_end|>\n\
                        <|im_start|>user\nNow sub.<|im_end|>\n\
                        <|im_start|>assistant\n";
        assert_eq!(rendered, expected);
        let without = tokenizer.render_chat(&messages[..2], false).unwrap();
        assert!(without.ends_with("Write add.<|im_end|>\n"), "{without:?}");
    }

    #[test]
    fn builtin_templates_render() {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tokenizers/qwen3");
        // Without tokenizer_config.json the vocabulary's <|im_start|> selects the ChatML fallback.
        let tokenizer =
            TextTokenizer::from_files(&dir.join("tokenizer.json"), None, Architecture::Llada)
                .unwrap();
        assert!(tokenizer.chat_template().1);
        let rendered = tokenizer
            .render_chat(&[ChatMessage::new("user", "hi")], true)
            .unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let llada = TextTokenizer {
            template: LLADA_TEMPLATE.into(),
            bos_token: Some("<|startoftext|>".into()),
            ..TextTokenizer::from_files(&dir.join("tokenizer.json"), None, Architecture::Llada)
                .unwrap()
        };
        let rendered = llada
            .render_chat(&[ChatMessage::new("user", " hi \n")], true)
            .unwrap();
        assert_eq!(
            rendered,
            "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}
