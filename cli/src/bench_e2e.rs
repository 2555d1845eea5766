//! `keel bench-e2e`: end-to-end throughput and claim-to-start latency on loopback.
//! Starts a coordinator (redb in a temporary directory, or `--valkey`), serves gRPC on
//! 127.0.0.1, runs SDK workers with a no-op handler in the same process and submits
//! jobs through the client API: first as fast as possible (throughput), then paced at
//! half that rate (latency). Every run is bounded by the task count and `--timeout`.

use crate::connect::runtime;
use clap::Args;
use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, SystemClock};
use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::ClientOptions;
use keel_grpc::job_spec_to_proto;
use keel_grpc::metrics::GrpcMetrics;
use keel_grpc::proto::{ListJobsRequest, SubmitJobRequest};
use keel_grpc::server::{serve, ServerOptions};
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use keel_log::{Log, RedbLog};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchE2eArgs {
    /// Keep the log in Valkey at this URL instead of a temporary redb file.
    #[arg(long, value_name = "URL")]
    pub valkey: Option<String>,
    /// Tasks per run.
    #[arg(long, default_value_t = 200_000)]
    pub tasks: u32,
    /// Tasks per submitted job.
    #[arg(long, default_value_t = 5_000)]
    pub job_size: u32,
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
    /// Concurrency of each worker.
    #[arg(long, default_value_t = 512)]
    pub concurrency: u32,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

pub fn run(args: &BenchE2eArgs) -> ExitCode {
    match runtime().block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel bench-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: &BenchE2eArgs) -> Result<(), String> {
    let backend = if args.valkey.is_some() {
        "valkey"
    } else {
        "redb"
    };
    let full = run_once(args, None).await?;
    println!(
        "{backend}: {} tasks in {:.2}s = {:.0} tasks/s; claim-to-start p50 <= {} p99 <= {}",
        args.tasks, full.secs, full.rate, full.p50, full.p99
    );
    let half = run_once(args, Some(full.rate / 2.0)).await?;
    println!(
        "{backend} at {:.0} tasks/s offered: {:.0} tasks/s done; claim-to-start p50 <= {} p99 <= {}",
        full.rate / 2.0,
        half.rate,
        half.p50,
        half.p99
    );
    Ok(())
}

struct RunResult {
    secs: f64,
    rate: f64,
    p50: String,
    p99: String,
}

async fn run_once(args: &BenchE2eArgs, pace: Option<f64>) -> Result<RunResult, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = CoordinatorConfig {
        max_batch: 8192,
        snapshot_every: 10_000_000,
        holder: format!("bench-{}", std::process::id()),
        ..CoordinatorConfig::default()
    };
    let handle = match &args.valkey {
        Some(url) => {
            let log = ValkeyLog::connect(url, ValkeyOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            // A fresh partition per run, so earlier runs' entries are not replayed.
            let config = CoordinatorConfig {
                partition: std::process::id() ^ u32::from(pace.is_some()),
                ..config
            };
            start(config, log).await?
        }
        None => {
            start(
                config,
                RedbLog::open(dir.path()).map_err(|e| e.to_string())?,
            )
            .await?
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let metrics = Arc::new(GrpcMetrics::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopping = stopped.clone();
    let server = tokio::spawn(serve(
        handle.clone(),
        listener,
        ServerOptions::default(),
        metrics.clone(),
        async move {
            let _ = stopping.wait_for(|s| *s).await;
        },
    ));
    let mut workers = Vec::new();
    for i in 0..args.workers {
        let config = WorkerConfig::new(
            ClientOptions::new(url.clone()),
            format!("bench-{i}"),
            args.concurrency,
        );
        let mut stopping = stopped.clone();
        let noop = |_t: Task| async { Outcome::Complete(Vec::new()) };
        workers.push(tokio::spawn(Worker::new(config).run(noop, async move {
            let _ = stopping.wait_for(|s| *s).await;
        })));
    }
    let mut jobs = ClientOptions::new(url.clone())
        .jobs()
        .await
        .map_err(|e| e.to_string())?;
    let job_size = args.job_size.max(1);
    let count = args.tasks.div_ceil(job_size);
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(args.timeout), async {
        for j in 0..count {
            if let Some(rate) = pace {
                let due = started + Duration::from_secs_f64(f64::from(j * job_size) / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let tasks = (0..job_size)
                .map(|i| TaskSpec::new(format!("t{i}")))
                .collect();
            let spec = JobSpec::new(format!("bench-{j}"), tasks);
            let request = SubmitJobRequest {
                spec: Some(job_spec_to_proto(&spec)),
            };
            jobs.submit_job(request)
                .await
                .map_err(|s| s.message().to_string())?;
        }
        loop {
            let list = jobs
                .list_jobs(ListJobsRequest {})
                .await
                .map_err(|s| s.message().to_string())?;
            let list = list.into_inner().jobs;
            if list.len() as u32 == count && list.iter().all(|j| !j.outcome.is_empty()) {
                return Ok::<(), String>(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    let _ = server.await;
    let _ = handle.shutdown().await;
    match outcome {
        Ok(result) => result?,
        Err(_) => return Err(format!("the run did not finish within {}s", args.timeout)),
    }
    let tasks = f64::from(count * job_size);
    let show = |q| match metrics.claim_to_start.quantile_bound(q) {
        Some(d) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        None => "over 5s".to_string(),
    };
    Ok(RunResult {
        secs,
        rate: tasks / secs,
        p50: show(0.5),
        p99: show(0.99),
    })
}

async fn start<L: Log + 'static>(config: CoordinatorConfig, log: L) -> Result<Handle, String> {
    Coordinator::start(config, Arc::new(log), Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())
}
