//! Hugging Face hub ids (`GSAI-ML/LLaDA-8B-Instruct`): found in the local HF cache (`HF_HUB_CACHE`,
//! else `HF_HOME/hub`, else `~/.cache/huggingface/hub`), otherwise downloaded into it with `hf-hub`
//! (progress bar on stderr). Without a network the error is `Error::CheckpointMissing`; the CLI says
//! how to get the files by hand.

use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo};

use crate::{Error, Result};

/// Files fetched besides `config.json` and the weights when present.
const OPTIONAL_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
];

/// Does `model` look like `owner/name` rather than a path?
pub fn looks_like_hub_id(model: &str) -> bool {
    let parts: Vec<&str> = model.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// The hub cache folder from the environment, as huggingface_hub computes it.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("huggingface").join("hub")
}

/// The snapshot folder of `id` in `cache` when it holds `config.json` and every weights file.
pub fn cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    let repo = Cache::new(cache.to_path_buf()).model(id.to_string());
    let config = repo.get("config.json")?;
    let dir = config.parent()?.to_path_buf();
    let weights = weight_files_listed(&dir).ok()?;
    let complete = if weights.is_empty() {
        dir.join("model.safetensors").exists()
    } else {
        weights.iter().all(|w| dir.join(w).exists())
    };
    complete.then_some(dir)
}

/// Shard names from `model.safetensors.index.json`, or empty when there is no index.
fn weight_files_listed(dir: &Path) -> Result<Vec<String>> {
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
        path: index.clone(),
        source,
    })?;
    super::shards_from_index(&text, &index)
}

/// Resolve `id` to a local snapshot folder: the cache first, then a download.
pub fn resolve(id: &str) -> Result<PathBuf> {
    let cache = cache_dir();
    if let Some(dir) = cached_snapshot(&cache, id) {
        return Ok(dir);
    }
    download(id, &cache)
}

fn download(id: &str, cache: &Path) -> Result<PathBuf> {
    let offline =
        std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let not_found = |why: String| Error::CheckpointMissing {
        id: id.to_owned(),
        cache: cache.to_path_buf(),
        why,
    };
    if offline {
        return Err(not_found("HF_HUB_OFFLINE is set".into()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| not_found(format!("cannot start the downloader: {e}")))?;
    runtime.block_on(async {
        let api = hf_hub::api::tokio::ApiBuilder::from_cache(Cache::new(cache.to_path_buf()))
            .with_progress(true)
            .build()
            .map_err(|e| not_found(format!("cannot start the downloader: {e}")))?;
        let repo = api.repo(Repo::model(id.to_string()));
        let config = repo
            .get("config.json")
            .await
            .map_err(|e| not_found(format!("download failed: {e}")))?;
        let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
        let weights = match repo.get("model.safetensors.index.json").await {
            Ok(index) => {
                let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
                    path: index.clone(),
                    source,
                })?;
                super::shards_from_index(&text, &index)?
            }
            Err(_) => vec!["model.safetensors".to_string()],
        };
        for file in &weights {
            repo.get(file)
                .await
                .map_err(|e| not_found(format!("downloading {file} failed: {e}")))?;
        }
        for file in OPTIONAL_FILES {
            // Optional: a checkpoint without them still loads (the tokenizer is then absent).
            let _ = repo.get(file).await;
        }
        Ok(dir)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hub_ids_are_told_from_paths() {
        assert!(looks_like_hub_id("GSAI-ML/LLaDA-8B-Instruct"));
        assert!(looks_like_hub_id("Dream-org/Dream-v0-Instruct-7B"));
        assert!(!looks_like_hub_id("./models/x"));
        assert!(!looks_like_hub_id("models"));
        assert!(!looks_like_hub_id("/abs/path"));
        assert!(!looks_like_hub_id("a/b/c"));
        assert!(!looks_like_hub_id("../x"));
    }

    #[test]
    fn finds_a_snapshot_in_a_cache_folder() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--tiny");
        let snapshot = repo.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123").unwrap();
        std::fs::write(snapshot.join("config.json"), "{}").unwrap();
        // No weights yet: not usable.
        assert_eq!(cached_snapshot(cache.path(), "org/tiny"), None);
        std::fs::write(snapshot.join("model.safetensors"), b"").unwrap();
        assert_eq!(
            cached_snapshot(cache.path(), "org/tiny"),
            Some(snapshot.clone())
        );
        assert_eq!(cached_snapshot(cache.path(), "org/other"), None);
        // A sharded checkpoint needs every shard.
        std::fs::remove_file(snapshot.join("model.safetensors")).unwrap();
        std::fs::write(
            snapshot.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(snapshot.join("model-00001-of-00002.safetensors"), b"").unwrap();
        assert_eq!(cached_snapshot(cache.path(), "org/tiny"), None);
        std::fs::write(snapshot.join("model-00002-of-00002.safetensors"), b"").unwrap();
        assert_eq!(cached_snapshot(cache.path(), "org/tiny"), Some(snapshot));
    }
}
