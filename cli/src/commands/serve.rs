//! `hone serve`: load a checkpoint and serve it as an OpenAI-compatible HTTP API with dynamic
//! batching (see `hone_serve`). Owns the flags, model loading, the tokio runtime and the signals
//! (SIGTERM / Ctrl-C start a graceful shutdown).

use crate::flags;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hone_engine::model::DiffusionModel;
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::tokenizer::{GenerationDefaults, TextTokenizer};

use crate::backends::serve::{EngineDecoder, EngineFrontend};
use crate::engine_options::EngineOptions;
use crate::exit::Hinted;
use hone_serve::ServerOptions;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineOptions,

    /// Address to listen on (loopback by default: pass 0.0.0.0 to accept other machines, and set
    /// --api-key-env then).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,

    /// Require `Authorization: Bearer <key>` on /v1/*, with the key read from this environment
    /// variable.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,

    /// Most sequences decoded together (each choice of a request is one sequence).
    #[arg(long, default_value_t = 8, value_parser = flags::count::<1024>)]
    pub max_batch: usize,

    /// Most sequences waiting for a batch slot; more get 429.
    #[arg(long, default_value_t = 64, value_parser = flags::count::<1_000_000>)]
    pub max_queue: usize,

    /// Milliseconds newly arrived requests wait for others before their first step, so requests
    /// sent together decode in one batched forward.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub batch_window_ms: u64,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_parser = flags::count::<{ 1 << 30 }>)]
    pub max_body_bytes: usize,

    /// How long in-flight requests may still run after SIGTERM / Ctrl-C before they are failed,
    /// e.g. 30s (plain numbers are seconds).
    #[arg(long, default_value = "30s", value_parser = flags::duration)]
    pub shutdown_timeout: std::time::Duration,

    /// How long a client may take to send a request's headers before its connection is closed,
    /// e.g. 10s (plain numbers are seconds).
    #[arg(long, default_value = "10s", value_parser = flags::duration)]
    pub header_timeout: std::time::Duration,

    /// The model id clients send and /v1/models lists (default: the checkpoint folder's name, or
    /// the hub id).
    #[arg(long)]
    pub served_model_name: Option<String>,

    /// Benchmarks: random weights of this config.json (or preset) instead of --model's weights;
    /// --model then only supplies the tokenizer and generation_config.json.
    #[arg(long, hide = true)]
    pub random_config: Option<String>,

    /// Seed of the --random-config weights.
    #[arg(long, hide = true, default_value_t = 0)]
    pub random_seed: u64,
}

struct Loaded {
    model: Box<dyn DiffusionModel>,
    tokenizer: TextTokenizer,
    tokens: TokenIds,
    defaults: GenerationDefaults,
}

fn load(args: &ServeArgs) -> anyhow::Result<Loaded> {
    let Some(config) = &args.random_config else {
        let loaded = crate::engine_options::load_model(&args.engine)?;
        let tokenizer = loaded.tokenizer.ok_or_else(|| {
            Hinted::new(
                anyhow::anyhow!(
                    "{} has no tokenizer.json: the server needs one to read and write text",
                    loaded.name
                ),
                ["pass a checkpoint folder that contains tokenizer.json"],
            )
        })?;
        return Ok(Loaded {
            model: loaded.model,
            tokens: TokenIds::from(&loaded.special),
            tokenizer,
            defaults: loaded.generation,
        });
    };
    let (arch, value) = crate::engine_options::read_random_config(config)?;
    let spec = crate::engine_options::model_spec(&args.engine)?;
    let dtype = hone_engine::checkpoint::OpenedCheckpoint::dtype(&spec);
    let dir = hone_engine::checkpoint::resolve(&args.engine.model)?;
    let files = hone_engine::checkpoint::CheckpointFiles::open(&dir)?;
    let tokenizer = files
        .tokenizer(arch)?
        .ok_or_else(|| anyhow::anyhow!("{} has no tokenizer.json", dir.display()))?;
    let special = files.special_tokens(Some(&tokenizer))?;
    let model = hone_engine::random::random_model(
        arch,
        &value,
        args.random_seed,
        &spec.device,
        dtype,
        args.engine.quantize,
    )?;
    Ok(Loaded {
        model,
        tokenizer,
        tokens: TokenIds::from(&special),
        defaults: files.generation_defaults(),
    })
}

/// A local folder is served under its name; a hub id as given.
fn default_model_id(model: &str) -> String {
    let path = Path::new(model);
    if path.exists() {
        if let Some(name) = path
            .canonicalize()
            .ok()
            .as_deref()
            .and_then(Path::file_name)
        {
            return name.to_string_lossy().into_owned();
        }
    }
    model.to_string()
}

fn api_key(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let Some(var) = &args.api_key_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_string())),
        _ => Err(Hinted::new(
            anyhow::anyhow!(
                "--api-key-env {var}: the environment variable {var} is not set or empty"
            ),
            [format!(
                "export {var}=<a secret key> before starting the server"
            )],
        )
        .into()),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let api_key = api_key(&args)?;
    let address: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (args.host.as_str(), args.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or(())
        })
        .map_err(|()| {
            Hinted::new(
                anyhow::anyhow!("cannot resolve --host {}", args.host),
                ["pass an IP address such as 127.0.0.1"],
            )
        })?;
    let model_id = args
        .served_model_name
        .clone()
        .unwrap_or_else(|| default_model_id(&args.engine.model));
    let loaded = load(&args)?;
    let tokenizer = Arc::new(loaded.tokenizer);
    let base = hone_engine::sampling::family::base_settings(loaded.model.info(), &model_id);
    let frontend = EngineFrontend::new(
        model_id.clone(),
        Arc::clone(&tokenizer),
        loaded.tokens,
        loaded.defaults,
        loaded.model.info().clone(),
    )
    .with_base_settings(base);
    let decoder = EngineDecoder::new(loaded.model, tokenizer);
    let has_api_key = api_key.is_some();
    let options = ServerOptions {
        api_key,
        max_batch: args.max_batch.max(1),
        max_queue: args.max_queue,
        max_body_bytes: args.max_body_bytes,
        batch_window: Duration::from_millis(args.batch_window_ms),
        shutdown_timeout: args.shutdown_timeout,
        header_timeout: args.header_timeout,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hone-serve")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Hinted::new(
                anyhow::anyhow!("cannot listen on {address}: {e}"),
                ["pick another --port (0 = any free port) or stop the process using this one"],
            )
        })?;
        let bound = listener.local_addr()?;
        note!("hone serve: listening on http://{bound}/v1 (model `{model_id}`)");
        if !bound.ip().is_loopback() && !has_api_key {
            note!(
                "hone serve: warning: {} is reachable from other machines and no --api-key-env is set: anyone who can reach it can use the model",
                bound.ip()
            );
        }
        hone_serve::serve(listener, frontend, decoder, options, shutdown_signal()).await?;
        note!("hone serve: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
