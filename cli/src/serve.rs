//! `keel serve`: a coordinator with the gRPC services. The log is the embedded redb
//! file under `--data-dir` unless `--valkey` names a Valkey server, so it runs with
//! nothing else installed and survives restarts on the same directory.

use crate::connect::{init_tracing, runtime, terminated};
use crate::output;
use crate::serve_identity::{holder_for, lock_dir, DirLock};
use crate::serve_listen;
use clap::Args;
use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, SystemClock};
use keel_grpc::auth::Tokens;
use keel_grpc::metrics::{bind_metrics, serve_metrics, GrpcMetrics};
use keel_grpc::server::budget::{parse_bytes, Sizing};
use keel_grpc::server::{serve, ServerOptions, TlsFiles};
use keel_log::{Log, RedbLog, RedbOptions};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the gRPC services listen on, HOST:PORT (a host name is resolved; port 0
    /// picks a free one; the chosen address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: String,
    /// Directory of the embedded log; with --valkey, where this server keeps its
    /// identity, so a restart on it takes the partition back at once.
    #[arg(long, value_name = "DIR", default_value = "keel-data")]
    pub data_dir: PathBuf,
    /// Keep the log in Valkey at this URL (redis://HOST:PORT) instead.
    #[arg(long, value_name = "URL")]
    pub valkey: Option<String>,
    /// Bearer tokens, one `<client|worker> <token>` per line; without it, no auth.
    #[arg(long, value_name = "F")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, value_name = "F", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, value_name = "F", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Serve the web console over HTTP on this address (read-only unless
    /// --token-file is given: its client tokens allow cancel and retry).
    #[arg(long, value_name = "ADDR")]
    pub ui: Option<SocketAddr>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Inputs per group commit.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_batch: usize,
    /// The leadership lease in the log; a standby takes over this long after the
    /// leader stops renewing it.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub leader_ttl_ms: u64,
    /// Who this server is to the log's leadership lease (default: made once and kept
    /// in --data-dir). Servers sharing a partition need different names.
    #[arg(long, value_name = "NAME")]
    pub holder: Option<String>,
    /// Memory this server may use (e.g. 2GiB, 512MiB; at least 256MiB). Its limits on
    /// worker sessions, job watches, message size, workers and jobs per tenant are
    /// sized from it, so load is refused (RESOURCE_EXHAUSTED naming the limit) before
    /// memory runs out.
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = parse_bytes)]
    pub max_memory: u64,
    /// Start a new, empty embedded log when the one in --data-dir is missing or empty.
    /// Without it, a directory that has held a log refuses to start without its log.
    #[arg(long)]
    pub init: bool,
    /// Arm the engine's injected panic: a job named `keel-injected-panic` panics it.
    /// Only in builds with the `fault-injection` feature, for tests.
    #[cfg(feature = "fault-injection")]
    #[arg(long, hide = true)]
    pub inject_engine_panic: bool,
}

/// The engine settings a log was written with. A log with no snapshot yet is replayed
/// with them, so `keel serve` and `keel admin` must be given the same ones.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// A lease lasts this long without renewal.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub lease_ttl_ms: u64,
    /// A worker silent this long is declared lost and its tasks requeued.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    pub liveness_timeout_ms: u64,
    /// A grant offer waits this long for its acceptance.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub grant_ttl_ms: u64,
    /// How long a finished job stays queryable by id and answers a resubmission of
    /// its spec under its name as a duplicate (e.g. 30s, 5m, 1h, 7d; at least 1s);
    /// then it is forgotten.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::duration::parse_retention)]
    pub retention: Duration,
    /// Tenant caps and weights and rate limits, in TOML (see README, "Policy").
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl EngineArgs {
    /// The engine's configuration, refused (naming the flag and its floor) when the
    /// engine's `Config::validate` refuses it.
    pub fn config(&self) -> Result<keel_engine::Config, String> {
        let mut config = keel_engine::Config {
            lease_ttl_ms: self.lease_ttl_ms,
            liveness_timeout_ms: self.liveness_timeout_ms,
            grant_ttl_ms: self.grant_ttl_ms,
            retention_ms: u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX),
            ..keel_engine::Config::default()
        };
        if let Some(path) = &self.policy {
            crate::serve_policy::apply(path, &mut config)?;
        }
        config.validate().map_err(|e| {
            let flag = match e.field.as_str() {
                "grant_ttl_ms" => "--grant-ttl-ms",
                "lease_ttl_ms" => "--lease-ttl-ms",
                "liveness_timeout_ms" => "--liveness-timeout-ms",
                "retention_ms" => "--retention",
                field => match (crate::serve_policy::file_key(field), &self.policy) {
                    (Some(key), Some(path)) => {
                        return e.message_for(&format!("--policy {}: {key}", path.display()))
                    }
                    _ => return e.to_string(),
                },
            };
            e.message_for(flag)
        })?;
        Ok(config)
    }
}

/// Arms the engine's injected panic (a job named `keel-injected-panic`).
#[cfg(feature = "fault-injection")]
pub fn arm_injected_panic(engine: &mut keel_engine::Engine) {
    engine.inject_faults(keel_engine::Faults {
        panic_on_injected_job: true,
        ..keel_engine::Faults::default()
    });
}

impl ServeArgs {
    /// The coordinator's configuration, refused (naming the flag and its floor) when
    /// the engine's `Config::validate` refuses it.
    fn coordinator_config(&self) -> Result<CoordinatorConfig, String> {
        Ok(CoordinatorConfig {
            engine: self.engine.config()?,
            max_batch: self.max_batch,
            lease_ttl: Duration::from_millis(self.leader_ttl_ms),
            prepare_engine: self.prepare_engine(),
            ..CoordinatorConfig::default()
        })
    }

    #[cfg(feature = "fault-injection")]
    fn prepare_engine(&self) -> Option<fn(&mut keel_engine::Engine)> {
        self.inject_engine_panic
            .then_some(arm_injected_panic as fn(&mut keel_engine::Engine))
    }

    #[cfg(not(feature = "fault-injection"))]
    fn prepare_engine(&self) -> Option<fn(&mut keel_engine::Engine)> {
        None
    }

    fn server_options(&self) -> Result<ServerOptions, String> {
        let tokens = match &self.token_file {
            Some(path) => Some(Tokens::load(path)?),
            None => None,
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        if let Some(tls) = &tls {
            serve_listen::check_tls(tls)?;
        }
        Ok(ServerOptions {
            tokens,
            tls,
            ..ServerOptions::default()
        })
    }
}

pub fn run(args: &ServeArgs) -> ExitCode {
    init_tracing();
    match runtime().block_on(serve_until_stopped(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::stderr(&format!("keel serve: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_stopped(args: &ServeArgs) -> Result<(), String> {
    let (options, config) = sized_settings(args)?;
    // The address is taken before the partition: a server that could not serve must
    // never hold it (a standby on a paused leader's address would take the partition,
    // fail to bind, and leave nothing running once the leader resumed and found itself
    // deposed). While standing by, connections to it are closed at once.
    let listener = serve_listen::bind(&args.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            bind_metrics(addr)
                .await
                .map_err(|e| format!("metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let (handle, _dir_lock) = lead(args, config, &listener).await?;
    let metrics = Arc::new(GrpcMetrics::default());
    let exporter = match metrics_listener {
        Some(listener) => Some(export_metrics(listener, &handle, &metrics)?),
        None => None,
    };
    let _console = match args.ui {
        Some(addr) => {
            Some(crate::serve_console::start(addr, &handle, options.tokens.clone()).await?)
        }
        None => None,
    };
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    output::stdout_best_effort(&format!("listening on {scheme}://{addr}\n"));
    let watched = handle.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let served = serve(handle.clone(), listener, options, metrics, async move {
        // A coordinator that lost its lease stands by and takes the partition back
        // while the services answer UNAVAILABLE; it stops for good only when serving
        // needs an operator (an engine panic, a log it cannot read).
        let stopped = tokio::select! {
            _ = terminated() => None,
            e = watched.stopped() => Some(e),
        };
        let _ = stop_tx.send(stopped);
    })
    .await;
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    let stopped = stop_rx.await.ok().flatten();
    let shut = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await;
    served.map_err(|e| e.to_string())?;
    if let Some(e) = stopped {
        return Err(format!("the coordinator stopped: {e}"));
    }
    match shut {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the coordinator did not stop within 10s".into()),
    }
}

/// The server options and coordinator config the flags ask for, sized to `--max-memory`.
fn sized_settings(args: &ServeArgs) -> Result<(ServerOptions, CoordinatorConfig), String> {
    let sizing = Sizing::for_memory(args.max_memory)?;
    let mut options = args.server_options()?;
    let mut config = args.coordinator_config()?;
    sizing.apply(&mut config.engine.limits, &mut options);
    config
        .engine
        .validate()
        .map_err(|e| format!("--max-memory {}: {e}", args.max_memory))?;
    Ok((options, config))
}

/// Serves `/metrics` on `listener`: the coordinator's, the gRPC layer's and the engine
/// gauges a background task keeps current (`serve_gauges`). Prints where.
fn export_metrics(
    listener: tokio::net::TcpListener,
    handle: &Handle,
    metrics: &Arc<GrpcMetrics>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    output::stdout_best_effort(&format!(
        "metrics on http://{}\n",
        listener.local_addr().map_err(|e| e.to_string())?
    ));
    let lanes = Arc::new(std::sync::Mutex::new(String::new()));
    tokio::spawn(crate::serve_gauges::track(handle.clone(), lanes.clone()));
    let (handle, grpc) = (handle.clone(), metrics.clone());
    Ok(serve_metrics(listener, move || {
        let lanes = lanes.lock().map(|l| l.clone()).unwrap_or_default();
        handle.metrics().render_prometheus() + &grpc.render_prometheus() + &lanes
    }))
}

/// Opens the log and leads its partition (waiting as a standby while another server
/// leads it). With Valkey, the data directory is locked for as long as the lock lives.
async fn lead(
    args: &ServeArgs,
    config: CoordinatorConfig,
    listener: &tokio::net::TcpListener,
) -> Result<(Handle, Option<DirLock>), String> {
    match &args.valkey {
        Some(url) => {
            let dir_lock = lock_dir(&args.data_dir)?;
            let holder = match &args.holder {
                Some(name) => name.clone(),
                None => holder_for(&args.data_dir)?,
            };
            let log = ValkeyLog::connect(url, ValkeyOptions::default())
                .await
                .map_err(|e| format!("connecting to Valkey at {url}: {e}"))?;
            let handle = start(CoordinatorConfig { holder, ..config }, log, listener).await?;
            Ok((handle, Some(dir_lock)))
        }
        None => {
            let options = RedbOptions {
                init: args.init,
                ..RedbOptions::default()
            };
            let log = RedbLog::open_with(&args.data_dir, options).map_err(|e| e.to_string())?;
            // redb lets one process open the file at a time, so whoever opened it is the
            // only possible leader: a fixed holder name lets a restart after a crash
            // serve at once instead of waiting for its own old lease to lapse.
            let holder = args
                .holder
                .clone()
                .unwrap_or_else(|| "keel-serve-embedded".to_string());
            let handle = start(CoordinatorConfig { holder, ..config }, log, listener).await?;
            Ok((handle, None))
        }
    }
}

async fn start<L: Log + 'static>(
    config: CoordinatorConfig,
    log: L,
    listener: &tokio::net::TcpListener,
) -> Result<Handle, String> {
    let starting = Coordinator::start(config, Arc::new(log), Arc::new(SystemClock));
    serve_listen::refusing(listener, starting)
        .await
        .map_err(|e| format!("starting the coordinator: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn config_of(flags: &[&str]) -> Result<CoordinatorConfig, String> {
        let argv = std::iter::once("serve").chain(flags.iter().copied());
        Serve::parse_from(argv).args.coordinator_config()
    }

    #[test]
    fn timeouts_below_their_floors_are_refused_naming_the_flag() {
        for (flags, message) in [
            (
                ["--grant-ttl-ms", "0"],
                "--grant-ttl-ms must be at least 100 ms",
            ),
            (
                ["--lease-ttl-ms", "0"],
                "--lease-ttl-ms must be at least 1000 ms",
            ),
            (
                ["--liveness-timeout-ms", "999"],
                "--liveness-timeout-ms must be at least 1000 ms",
            ),
        ] {
            assert_eq!(config_of(&flags).err().as_deref(), Some(message));
        }
        assert!(config_of(&[]).is_ok());
    }
}
