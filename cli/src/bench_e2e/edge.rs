//! `keel bench-e2e --stream-frames N --edges`: streaming edges end to end. One job of
//! --tasks producers, each read by a consumer task through a fifo edge (or a bounded
//! `block` edge with --edge-capacity); each producer emits N frames, --frames-per-emit
//! at a time, and each consumer reads them with `task.stream` as they are stored,
//! acknowledging every --frames-per-emit frames (every half capacity at most). Every frame carries the time its emit
//! was sent, so the consumer measures how long a frame takes from `emit` to `next`.

use super::cluster::Cluster;
use super::stream::Producer;
use super::BenchE2eArgs;
use crate::output::outln;
use keel_engine::{EdgePolicy, JobSpec, OnFull, StreamEdge, TaskSpec};
use keel_grpc::client::{ClientOptions, Jobs};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::{DescribeJobRequest, SubmitJobRequest};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Producers `t0..` and a consumer `c<i>` streaming from each.
fn edge_job(args: &BenchE2eArgs) -> JobSpec {
    let policy = match args.edge_capacity {
        0 => EdgePolicy::Fifo,
        capacity => EdgePolicy::Bounded {
            capacity,
            on_full: OnFull::Block,
        },
    };
    let mut tasks = Vec::new();
    for i in 0..args.tasks.max(1) {
        tasks.push(TaskSpec::new(format!("t{i}")));
        let mut consumer = TaskSpec::new(format!("c{i}"));
        consumer.stream_from = vec![StreamEdge {
            from: format!("t{i}"),
            policy,
        }];
        tasks.push(consumer);
    }
    let mut spec = JobSpec::new("bench-edges", tasks);
    spec.result = vec!["c0".into()];
    spec
}

pub(super) async fn edge_bench(args: &BenchE2eArgs, backend: &str) -> Result<(), String> {
    let pairs = u64::from(args.tasks.max(1));
    if u64::from(args.workers) * u64::from(args.concurrency) < 2 * pairs {
        return Err(format!(
            "--edges needs a slot per producer and per consumer: {} workers of {} slots hold fewer than {}",
            args.workers,
            args.concurrency,
            2 * pairs
        ));
    }
    let (_open, gate) = watch::channel(true);
    let consumed = Arc::new(Mutex::new(Vec::new()));
    let producer = Producer {
        frames: args.stream_frames,
        per_emit: args.frames_per_emit,
        frame_bytes: args.frame_bytes,
        epoch: Instant::now(),
        gate,
        consumed: Some(consumed.clone()),
        // A consumer acknowledging less often than its edge holds would stall it.
        ack_every: match args.edge_capacity {
            0 => args.frames_per_emit,
            capacity => args.frames_per_emit.min(capacity.div_ceil(2)),
        },
    };
    let cluster = Cluster::start(args, 0, Some(producer)).await?;
    let jobs = ClientOptions::new(cluster.url.clone())
        .jobs()
        .await
        .map_err(|e| e.to_string())?;
    let outcome =
        tokio::time::timeout(Duration::from_secs(args.timeout), run_job(args, jobs)).await;
    let failed = cluster.failed_emits();
    let coordinator = cluster.stop().await;
    let took = match outcome {
        Ok(result) => result?,
        Err(_) => return Err(format!("the run did not finish within {}s", args.timeout)),
    };
    if failed > 0 {
        return Err(format!("{failed} handlers failed to emit or read"));
    }
    let delays = std::mem::take(&mut *consumed.lock().unwrap_or_else(|p| p.into_inner()));
    let expected = pairs * u64::from(args.stream_frames);
    if delays.len() as u64 != expected {
        return Err(format!(
            "the consumers read {} frames, not the {expected} emitted",
            delays.len()
        ));
    }
    report(args, backend, took, delays);
    outln!("  {}", super::log_summary(&coordinator));
    Ok(())
}

/// Submits the job and waits for it to succeed; returns how long that took.
async fn run_job(args: &BenchE2eArgs, mut jobs: Jobs) -> Result<Duration, String> {
    let started = Instant::now();
    let request = SubmitJobRequest {
        spec: Some(job_spec_to_proto(&edge_job(args))),
    };
    let job = jobs
        .submit_job(request)
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .job;
    loop {
        let view = jobs
            .describe_job(DescribeJobRequest { job })
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        match view.status.map(|s| s.outcome).unwrap_or_default().as_str() {
            "" => tokio::time::sleep(Duration::from_millis(20)).await,
            "succeeded" => return Ok(started.elapsed()),
            other => return Err(format!("the job ended {other}")),
        }
    }
}

/// Prints frames/s over `took` and the quantiles of the frames' `delays` (ns).
fn report(args: &BenchE2eArgs, backend: &str, took: Duration, mut delays: Vec<u64>) {
    let (pairs, expected) = (args.tasks.max(1), delays.len());
    delays.sort_unstable();
    let at = |q: f64| {
        let i = ((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1));
        delays.get(i).map_or(0.0, |d| *d as f64 / 1e6)
    };
    let edge = match args.edge_capacity {
        0 => "fifo".to_string(),
        n => format!("bounded {n} block"),
    };
    outln!(
        "{backend} edges ({edge}): {expected} frames of {} bytes from {pairs} producers in emits of {} in {:.2}s = {:.0} frames/s to consumers; emit to consumer p50 {:.2}ms p99 {:.2}ms max {:.2}ms",
        args.frame_bytes.max(8),
        args.frames_per_emit.max(1),
        took.as_secs_f64(),
        expected as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
