//! `anthill serve`: opens an engine per domain under the data folder and serves the HTTP API until Ctrl-C
//! or SIGTERM, then stops accepting, lets requests in flight finish, drains the engines and closes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anthill_runtime::engine::Config;
use anthill_runtime::store::StoreConfig;
use anthill_runtime::{Domain, DomainVisitor};
use askama::Template;

use crate::feed::{Feed, FeedIndex, Indexer};
use crate::http::{router, AppState};
use crate::metrics::Metrics;
use crate::service::{DomainEngine, Engines};

/// Engine settings from flags and environment variables.
#[derive(Clone, Debug, clap::Args)]
pub struct EngineArgs {
    /// Writer threads per domain; aggregates are hashed to them. One by default: the writers of a domain
    /// commit together and LMDB writes one transaction at a time, so a second one only pays when deciding
    /// dominates (measured in docs/benchmarks.md), and every domain has its own writers already.
    #[arg(long, default_value_t = 1, env = "ANTHILL_PARTITIONS")]
    pub partitions: u32,
    /// Commands decided and committed together, at most.
    #[arg(long, default_value_t = 4096, env = "ANTHILL_BATCH_MAX")]
    pub batch_max: u32,
    /// Commands waiting per writer, at most; more are refused with 503.
    #[arg(long, default_value_t = 16384, env = "ANTHILL_QUEUE_MAX")]
    pub queue_max: u32,
    /// When queued commands wait longer than this, new ones are refused at once (503 + Retry-After).
    #[arg(long, default_value_t = 500, env = "ANTHILL_LATENCY_BUDGET_MS")]
    pub latency_budget_ms: u64,
    /// Aggregate instances kept in memory per writer.
    #[arg(long, default_value_t = 1_000_000, env = "ANTHILL_CACHE_MAX")]
    pub cache_max: u32,
    /// Events committed after which the instance records and view rows, kept in memory meanwhile, are written
    /// to their tables (a checkpoint): bounds what reopening replays after a crash.
    #[arg(long, default_value_t = 131_072, env = "ANTHILL_CHECKPOINT_EVENTS", value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_events: u32,
    /// The memory map of a new store, in MiB; a full map doubles (up to 1 TiB) without a restart.
    #[arg(long, default_value_t = 1024, env = "ANTHILL_MAP_SIZE_MB", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub map_size_mb: u64,
}

impl EngineArgs {
    pub fn config(&self) -> Config {
        Config {
            partitions: self.partitions,
            batch_size_max: self.batch_max,
            queue_depth_max: self.queue_max,
            latency_budget: Duration::from_millis(self.latency_budget_ms),
            cache_entries_max: self.cache_max,
            checkpoint_events_max: self.checkpoint_events,
            store: StoreConfig { map_size_bytes: self.map_size_mb << 20, ..StoreConfig::default() },
            ..Config::default()
        }
    }
}

/// What `anthill serve` was asked to do.
pub struct Options {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub engine: EngineArgs,
    pub tokens: Vec<String>,
    /// Worker threads of the HTTP runtime; `None`: one per CPU.
    pub http_threads: Option<usize>,
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// How [`open_engines_with`] opens the stores.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenMode<'a> {
    /// Read-only engines (no writers, no processes, no owner lock; see `Engine::open_read_only`). Domains without
    /// a store are left out, unless named by `only`.
    pub read_only: bool,
    /// Only this domain.
    pub only: Option<&'a str>,
}

struct Open<'a> {
    data: &'a std::path::Path,
    config: Config,
    mode: OpenMode<'a>,
    engines: Vec<DomainEngine>,
    error: Option<String>,
}

impl DomainVisitor for Open<'_> {
    fn visit<D: Domain>(&mut self) {
        if self.error.is_some() || self.mode.only.is_some_and(|name| name != D::NAME) {
            return;
        }
        let path = self.data.join(D::NAME);
        let opened = if self.mode.read_only {
            if self.mode.only.is_none() && !path.join("data.mdb").is_file() {
                return;
            }
            DomainEngine::open_read_only::<D>(&path, self.config.clone()).map_err(|e| e.to_string())
        } else {
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|()| DomainEngine::open::<D>(&path, self.config.clone()).map_err(|e| e.to_string()))
        };
        match opened {
            Ok(engine) => {
                tracing::debug!(domain = D::NAME, path = %path.display(), read_only = self.mode.read_only, "store open");
                self.engines.push(engine);
            }
            Err(e) => self.error = Some(format!("domain `{}`: {e}", D::NAME)),
        }
    }
}

/// Opens every built-in domain's engine under `data`.
pub fn open_engines(data: &std::path::Path, config: Config) -> Result<Engines, String> {
    open_engines_with(data, config, OpenMode::default())
}

/// Opens the built-in domains' engines under `data` as `mode` says.
pub fn open_engines_with(data: &std::path::Path, config: Config, mode: OpenMode<'_>) -> Result<Engines, String> {
    let mut open = Open { data, config, mode, engines: Vec::new(), error: None };
    crate::for_each_domain(&mut open);
    match open.error {
        Some(e) => Err(e),
        None => Ok(Engines::new(open.engines)),
    }
}

/// Opens the global feed's index under `data` and starts its indexer on `engines` (after catching up).
pub fn start_feed(data: &std::path::Path, engines: &Arc<Engines>) -> Result<(Arc<Feed>, Indexer), String> {
    let index = Arc::new(FeedIndex::open(data).map_err(|e| format!("the global feed: {e}"))?);
    let (published_sender, published) = tokio::sync::watch::channel(0);
    let source: Arc<dyn crate::feed::Source> = engines.clone();
    let indexer =
        Indexer::start(Arc::clone(&index), source, published_sender).map_err(|e| format!("the global feed: {e}"))?;
    Ok((Arc::new(Feed { index, published }), indexer))
}

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
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}

/// Serves until a shutdown signal.
pub fn run(options: Options) -> Result<(), String> {
    let engines = Arc::new(open_engines(&options.data, options.engine.config())?);
    let (feed, mut indexer) = start_feed(&options.data, &engines)?;
    let (shutdown_sender, shutdown) = tokio::sync::watch::channel(false);
    let domains = crate::DOMAINS;
    let catalog_html = crate::catalog::Catalog::new(domains, true).render().map_err(|e| e.to_string())?;
    let openapi_json = crate::openapi::document(domains).to_string();
    let state = Arc::new(AppState {
        backend: engines.clone(),
        metrics: Arc::new(Metrics::default()),
        tokens: options.tokens.clone(),
        catalog_html,
        openapi_json,
        feed: Some(feed),
        shutdown,
    });
    if options.tokens.is_empty() && !options.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %options.listen,
            "listening on a non-loopback address without authentication: set --tokens or ANTHILL_TOKENS"
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.http_threads {
        builder.worker_threads(threads);
    }
    let runtime = builder
        .enable_all()
        .thread_name("anthill-http")
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let address = listener.local_addr().map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        tracing::info!(
            "serving {} domain(s) on http://{address} (catalog at /, API description at /openapi.json)",
            domains.len(),
        );
        // Answers are small and written whole: no Nagle delay behind a client's delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Long polls answer and event streams end, so the graceful shutdown does not wait on them.
                shutdown_sender.send_replace(true);
            })
            .await
            .map_err(|e| format!("the server failed: {e}"))
    })?;
    drop(runtime);
    indexer.stop();
    match Arc::try_unwrap(engines) {
        Ok(mut engines) => engines.shutdown(),
        Err(_) => tracing::warn!("requests still hold the engines; they close when the last one ends"),
    }
    tracing::info!("stopped; every acknowledged command is on disk");
    Ok(())
}
