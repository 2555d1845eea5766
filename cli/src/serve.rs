//! `keel serve`: a coordinator with the gRPC services. The log is the embedded redb
//! file under `--data-dir` unless `--valkey` names a Valkey server, so it runs with
//! nothing else installed and survives restarts on the same directory.

use crate::connect::{init_tracing, runtime, terminated};
use crate::output;
use crate::serve_identity::{holder_for, lock_dir};
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
}

impl ServeArgs {
    fn coordinator_config(&self) -> CoordinatorConfig {
        let mut config = CoordinatorConfig {
            max_batch: self.max_batch,
            lease_ttl: Duration::from_millis(self.leader_ttl_ms),
            ..CoordinatorConfig::default()
        };
        config.engine.lease_ttl_ms = self.lease_ttl_ms;
        config.engine.liveness_timeout_ms = self.liveness_timeout_ms;
        config.engine.grant_ttl_ms = self.grant_ttl_ms;
        config.engine.retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        config
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
    let sizing = Sizing::for_memory(args.max_memory)?;
    let mut options = args.server_options()?;
    let mut config = args.coordinator_config();
    sizing.apply(&mut config.engine.limits, &mut options);
    let listener = serve_listen::bind(&args.listen).await?;
    let _dir_lock;
    let handle = match &args.valkey {
        Some(url) => {
            _dir_lock = lock_dir(&args.data_dir)?;
            let holder = match &args.holder {
                Some(name) => name.clone(),
                None => holder_for(&args.data_dir)?,
            };
            let log = ValkeyLog::connect(url, ValkeyOptions::default())
                .await
                .map_err(|e| format!("connecting to Valkey at {url}: {e}"))?;
            start(CoordinatorConfig { holder, ..config }, log, &listener).await?
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
            start(CoordinatorConfig { holder, ..config }, log, &listener).await?
        }
    };
    let metrics = Arc::new(GrpcMetrics::default());
    let exporter = match args.metrics {
        Some(addr) => {
            let listener = bind_metrics(addr)
                .await
                .map_err(|e| format!("metrics on {addr}: {e}"))?;
            output::stdout_best_effort(&format!(
                "metrics on http://{}\n",
                listener.local_addr().map_err(|e| e.to_string())?
            ));
            let lanes = Arc::new(std::sync::Mutex::new(String::new()));
            tokio::spawn(track_lane_depth(handle.clone(), lanes.clone()));
            let (handle, grpc) = (handle.clone(), metrics.clone());
            Some(serve_metrics(listener, move || {
                let lanes = lanes.lock().map(|l| l.clone()).unwrap_or_default();
                handle.metrics().render_prometheus() + &grpc.render_prometheus() + &lanes
            }))
        }
        None => None,
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    output::stdout_best_effort(&format!("listening on {scheme}://{addr}\n"));
    let deposed = handle.clone();
    let served = serve(handle.clone(), listener, options, metrics, async move {
        tokio::select! {
            _ = terminated() => {}
            e = deposed.stopped() => tracing::error!(error = %e, "the coordinator stopped serving"),
        }
    })
    .await;
    if let Some(exporter) = exporter {
        exporter.abort();
    }
    let leading = handle.is_leader();
    let stopped = tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await;
    served.map_err(|e| e.to_string())?;
    if !leading {
        return Err("the coordinator lost its partition".into());
    }
    match stopped {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the coordinator did not stop within 10s".into()),
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

/// Queue depth per lane, read every few seconds from the engine's ready index (the
/// coordinator's own metrics count the ready queue as a whole).
async fn track_lane_depth(handle: Handle, out: Arc<std::sync::Mutex<String>>) {
    loop {
        let counted = handle.read(|engine| engine.queued_by_lane()).await;
        let Ok(depth) = counted else { return };
        let mut text = String::from(
            "# HELP keel_lane_queue_depth Ready tasks waiting for a grant, per lane.\n# TYPE keel_lane_queue_depth gauge\n",
        );
        for (lane, n) in depth {
            text.push_str(&format!("keel_lane_queue_depth{{lane={lane:?}}} {n}\n"));
        }
        if let Ok(mut slot) = out.lock() {
            *slot = text;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
