//! The cluster a bench run measures: a coordinator on redb (in a temporary directory)
//! or Valkey, the gRPC services on 127.0.0.1, and SDK workers whose handler counts the
//! tasks it ran (and, measuring streams, emits frames), all in this process.

use super::stream::Producer;
use super::BenchE2eArgs;
use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, Metrics, SystemClock};
use keel_grpc::client::ClientOptions;
use keel_grpc::metrics::GrpcMetrics;
use keel_grpc::server::{serve, ServerOptions};
use keel_grpc::worker::{Handler, Outcome, Task, Worker, WorkerConfig};
use keel_log::{Log, RedbLog};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(super) struct Cluster {
    pub url: String,
    pub handle: Handle,
    pub metrics: Arc<GrpcMetrics>,
    /// Handler runs so far, across workers.
    pub ran: Arc<AtomicU64>,
    /// Handler runs whose inputs were not each exactly `--output-bytes` long.
    pub bad_inputs: Arc<AtomicU64>,
    /// Handlers whose emits were refused or cut off.
    failed_emits: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), keel_grpc::server::ServeError>>,
    workers: Vec<JoinHandle<Result<keel_grpc::worker::Summary, keel_grpc::worker::WorkerError>>>,
    /// The Valkey partition the run made, deleted when it stops.
    valkey: Option<(Arc<ValkeyLog>, u32)>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `run` tells runs apart: each gets a fresh Valkey partition, so no run replays
    /// another's entries.
    /// With a `producer`, every handler emits its frames before it completes.
    pub async fn start(
        args: &BenchE2eArgs,
        run: u32,
        producer: Option<Producer>,
    ) -> Result<Cluster, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (handle, valkey) = open_coordinator(args, run, dir.path()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let metrics = Arc::new(GrpcMetrics::default());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(
            handle.clone(),
            listener,
            ServerOptions::default(),
            metrics.clone(),
            until(stopped.clone()),
        ));
        let bench = BenchHandler {
            ran: Arc::new(AtomicU64::new(0)),
            bad_inputs: Arc::new(AtomicU64::new(0)),
            failed_emits: Arc::new(AtomicU64::new(0)),
            producer,
            output: vec![b'x'; args.output_bytes as usize],
        };
        let workers = (0..args.workers)
            .map(|i| {
                let config = WorkerConfig::new(
                    ClientOptions::new(url.clone()),
                    format!("bench-{i}"),
                    args.concurrency,
                );
                tokio::spawn(Worker::new(config).run(bench.clone(), until(stopped.clone())))
            })
            .collect();
        Ok(Cluster {
            url,
            handle,
            metrics,
            ran: bench.ran,
            bad_inputs: bench.bad_inputs,
            failed_emits: bench.failed_emits,
            stop,
            server,
            workers,
            valkey,
            _dir: dir,
        })
    }

    /// Handlers whose emits failed so far.
    pub fn failed_emits(&self) -> u64 {
        self.failed_emits.load(Ordering::Relaxed)
    }

    /// Stops workers, server and coordinator, and deletes the run's Valkey partition
    /// (runs would otherwise leave their outputs behind, and a server whose data grows
    /// run by run rewrites its append-only file ever more slowly, skewing later runs);
    /// returns the coordinator's metrics.
    pub async fn stop(self) -> Metrics {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        let _ = self.server.await;
        let metrics = self.handle.metrics();
        let _ = self.handle.shutdown().await;
        if let Some((log, partition)) = self.valkey {
            if let Err(e) = log.delete_partition(partition).await {
                eprintln!("keel bench-e2e: could not delete partition {partition}: {e}");
            }
        }
        metrics
    }
}

/// Every worker's handler: counts its runs, checks its inputs, emits the producer's
/// frames if there is one, and completes with `output`.
#[derive(Clone)]
struct BenchHandler {
    ran: Arc<AtomicU64>,
    bad_inputs: Arc<AtomicU64>,
    failed_emits: Arc<AtomicU64>,
    producer: Option<Producer>,
    output: Vec<u8>,
}

impl Handler for BenchHandler {
    async fn run(&self, t: Task) -> Outcome {
        self.ran.fetch_add(1, Ordering::Relaxed);
        let expected = Some(self.output.len());
        if t.inputs()
            .iter()
            .any(|i| i.output.as_ref().map(|o| o.len()) != expected)
        {
            self.bad_inputs.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(producer) = &self.producer {
            if let Err(e) = producer.run(&t).await {
                eprintln!("keel bench-e2e: task {}: {e}", t.key);
                self.failed_emits.fetch_add(1, Ordering::Relaxed);
            }
        }
        Outcome::Complete(self.output.clone())
    }
}

/// A coordinator for run `run`: on a fresh Valkey partition with `--valkey` (returned
/// beside it, to be deleted after the run), else on a redb log in `dir`; with large
/// batches and rare snapshots.
async fn open_coordinator(
    args: &BenchE2eArgs,
    run: u32,
    dir: &Path,
) -> Result<(Handle, Option<(Arc<ValkeyLog>, u32)>), String> {
    let config = CoordinatorConfig {
        max_batch: 8192,
        snapshot_every: 10_000_000,
        holder: format!("bench-{}", std::process::id()),
        ..CoordinatorConfig::default()
    };
    match &args.valkey {
        Some(url) => {
            let log = ValkeyLog::connect(url, ValkeyOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let partition = std::process::id().wrapping_mul(256) ^ run;
            let config = CoordinatorConfig {
                partition,
                ..config
            };
            let log = Arc::new(log);
            let handle = start(config, log.clone()).await?;
            Ok((handle, Some((log, partition))))
        }
        None => {
            let log = Arc::new(RedbLog::open(dir).map_err(|e| e.to_string())?);
            Ok((start(config, log).await?, None))
        }
    }
}

async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn start<L: Log + 'static>(config: CoordinatorConfig, log: Arc<L>) -> Result<Handle, String> {
    Coordinator::start(config, log, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())
}
