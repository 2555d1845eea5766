//! `keel bench-e2e`: end-to-end throughput and claim-to-start latency on loopback.
//! Each run starts its own cluster ([`cluster`]) and submits jobs through the client
//! API: first as fast as `--submitters` concurrent clients can (throughput), then at a
//! steady rate, small jobs at even intervals (latency), by default half the measured
//! throughput. A task counts once its job is reported finished. Every run is bounded by
//! the task count and `--timeout`. `--output-bytes` makes every task complete with that
//! much output, to measure what carrying and keeping results costs. `--stream-frames`
//! measures output streams instead ([`stream`]).

mod cluster;
mod edge;
mod stream;

use crate::connect::runtime;
use crate::output::{errln, outln};
use clap::Args;
use cluster::Cluster;
use keel_coordinator::{Histogram, Metrics};
use keel_engine::{GroupKind, JobSpec, TaskSpec};
use keel_grpc::client::{ClientOptions, Jobs};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::{ListJobsRequest, SubmitJobRequest};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Args, Debug, Clone)]
pub struct BenchE2eArgs {
    /// Keep the log in Valkey at this URL instead of a temporary redb file.
    #[arg(long, value_name = "URL")]
    pub valkey: Option<String>,
    /// Tasks per run.
    #[arg(long, default_value_t = 200_000)]
    pub tasks: u32,
    /// Tasks per job in the throughput run.
    #[arg(long, default_value_t = 1_000)]
    pub job_size: u32,
    /// Clients submitting at once in the throughput run.
    #[arg(long, default_value_t = 4)]
    pub submitters: u32,
    /// Tasks per second offered in the latency run; half the measured throughput if unset.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Tasks per job in the latency run, submitted at even intervals.
    #[arg(long, default_value_t = 50)]
    pub paced_job_size: u32,
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
    /// Concurrency of each worker.
    #[arg(long, default_value_t = 512)]
    pub concurrency: u32,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Bytes of output each task completes with; the coordinator logs and keeps them
    /// until the job is forgotten.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub output_bytes: u32,
    /// Every odd task of a job depends on the task before it, so half the tasks get the
    /// other half's outputs as their inputs (each handler checks it got exactly
    /// --output-bytes of them). Compare runs made with the same flag.
    #[arg(long)]
    pub pairs: bool,
    /// Throughput runs to make, alternating with as many runs without outputs when
    /// --output-bytes is set, so the two figures compared come from the same invocation
    /// on the same machine state; medians are reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Measure output streams instead: one job of --tasks tasks, each emitting this many
    /// frames while a tail per task reads them; reports frames/s and the delay from
    /// emit to tail. The frames are kept (durable), counted against the job's 64 MiB of
    /// stream bytes at their size plus 96 each.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stream_frames: u32,
    /// Frames per emit with --stream-frames; each emit waits until it is stored.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub frames_per_emit: u32,
    /// Bytes per frame with --stream-frames (at least 8: the frame's send time).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=1_048_576))]
    pub frame_bytes: u32,
    /// With --stream-frames: each task's frames are read by a consumer task through a
    /// streaming edge (`task.stream`, acknowledged every --frames-per-emit frames, and
    /// at least every half --edge-capacity)
    /// instead of a tail: `fifo`, or a bounded `block` edge with --edge-capacity.
    #[arg(long, requires = "stream_frames")]
    pub edges: bool,
    /// With --edges: a bounded edge of this many frames that blocks its producer when
    /// full; 0 is a fifo edge.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub edge_capacity: u32,
}

pub fn run(args: &BenchE2eArgs) -> ExitCode {
    match runtime().block_on(bench(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("keel bench-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How a run offers its jobs.
#[derive(Clone, Copy)]
enum Load {
    /// `submitters` clients, each submitting its share back to back.
    Flat { job_size: u32, submitters: u32 },
    /// One job of `job_size` tasks every `job_size / rate` seconds.
    Paced { job_size: u32, rate: f64 },
}

async fn bench(args: &BenchE2eArgs) -> Result<(), String> {
    let backend = if args.valkey.is_some() {
        "valkey"
    } else {
        "redb"
    };
    if args.stream_frames > 0 && args.edges {
        return edge::edge_bench(args, backend).await;
    }
    if args.stream_frames > 0 {
        return stream::stream_bench(args, backend).await;
    }
    let flat = Load::Flat {
        job_size: args.job_size.max(1),
        submitters: args.submitters.max(1),
    };
    let full = throughput(args, flat, backend).await?;
    let rate = args.rate.unwrap_or(full.rate / 2.0);
    let paced = Load::Paced {
        job_size: args.paced_job_size.max(1),
        rate,
    };
    let half = run_once(args, paced, 2 * args.repeat).await?;
    outln!(
        "{backend} latency: {rate:.0} tasks/s offered (jobs of {} tasks at even intervals), {:.0} tasks/s done; {}",
        args.paced_job_size, half.rate, half.latency
    );
    outln!("  {}", half.log);
    Ok(())
}

/// The throughput runs: `--repeat` of them, each after one without outputs when
/// `--output-bytes` is set; prints every run and, for several, the medians, and returns
/// the run with outputs that has the median rate.
async fn throughput(args: &BenchE2eArgs, load: Load, backend: &str) -> Result<RunResult, String> {
    let baseline_args = BenchE2eArgs {
        output_bytes: 0,
        ..args.clone()
    };
    let compare = args.output_bytes > 0;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..args.repeat {
        if compare {
            let base = run_once(&baseline_args, load, 2 * i + 1).await?;
            print_throughput(&baseline_args, &base, backend);
            without.push(base.rate);
        }
        let run = run_once(args, load, 2 * i).await?;
        print_throughput(args, &run, backend);
        with.push(run);
    }
    with.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let median = with.swap_remove(with.len() / 2);
    if compare {
        without.sort_by(f64::total_cmp);
        let base = without[without.len() / 2];
        outln!(
            "{backend} outputs of {} bytes: {:.0} tasks/s against {:.0} tasks/s without outputs in the same invocation ({:.0}%, medians of {} runs each)",
            args.output_bytes, median.rate, base, 100.0 * median.rate / base, args.repeat
        );
    } else if args.repeat > 1 {
        outln!(
            "{backend} throughput: median {:.0} tasks/s of {} runs",
            median.rate,
            args.repeat
        );
    }
    Ok(median)
}

fn print_throughput(args: &BenchE2eArgs, run: &RunResult, backend: &str) {
    outln!(
        "{backend} throughput: {} tasks in {:.2}s = {:.0} tasks/s ({} submitters, jobs of {} tasks{}, outputs of {} bytes); {}",
        run.tasks, run.secs, run.rate, args.submitters, args.job_size,
        if args.pairs { " in pairs" } else { "" }, args.output_bytes, run.latency
    );
    outln!("  {}", run.log);
}

struct RunResult {
    tasks: u32,
    secs: f64,
    rate: f64,
    latency: String,
    log: String,
}

async fn run_once(args: &BenchE2eArgs, load: Load, run: u32) -> Result<RunResult, String> {
    let cluster = Cluster::start(args, run, None).await?;
    let jobs = ClientOptions::new(cluster.url.clone())
        .jobs()
        .await
        .map_err(|e| e.to_string())?;
    let (job_size, count) = match load {
        Load::Flat { job_size, .. } | Load::Paced { job_size, .. } => {
            (job_size, args.tasks.div_ceil(job_size))
        }
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(args.timeout), async {
        submit_all(&jobs, load, count, args.pairs).await?;
        wait_finished(&jobs, &cluster, count, u64::from(count * job_size)).await
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let claim = &cluster.metrics.claim_to_start;
    let show = |q| match claim.quantile_bound(q) {
        Some(d) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        None => "over 5s".to_string(),
    };
    let latency = format!(
        "claim-to-start p50 <= {} p99 <= {} p99.9 <= {}",
        show(0.5),
        show(0.99),
        show(0.999)
    );
    let bad = cluster.bad_inputs.load(Ordering::Relaxed);
    let coordinator = cluster.stop().await;
    match outcome {
        Ok(result) => result?,
        Err(_) => return Err(format!("the run did not finish within {}s", args.timeout)),
    }
    if bad > 0 {
        return Err(format!(
            "{bad} tasks got inputs that were not their upstream task's {} bytes",
            args.output_bytes
        ));
    }
    let tasks = count * job_size;
    Ok(RunResult {
        tasks,
        secs,
        rate: f64::from(tasks) / secs,
        latency,
        log: log_summary(&coordinator),
    })
}

pub(super) fn log_summary(m: &Metrics) -> String {
    let mean = |h: &Histogram| h.sum / (h.count.max(1) as f64);
    format!(
        "log: {} inputs in {} appends, {:.0} entries and {:.2}ms per append on average",
        m.inputs,
        m.append_batch_size.count,
        mean(&m.append_batch_size),
        mean(&m.append_latency_seconds) * 1e3
    )
}

/// Submits `count` jobs as `load` says, each answered before it counts as submitted.
async fn submit_all(jobs: &Jobs, load: Load, count: u32, pairs: bool) -> Result<(), String> {
    let mut running = JoinSet::new();
    match load {
        Load::Flat {
            job_size,
            submitters,
        } => {
            for s in 0..submitters {
                let mut client = jobs.clone();
                running.spawn(async move {
                    for j in (s..count).step_by(submitters as usize) {
                        submit(&mut client, j, job_size, pairs).await?;
                    }
                    Ok::<(), String>(())
                });
            }
        }
        Load::Paced { job_size, rate } => {
            let start = tokio::time::Instant::now();
            for j in 0..count {
                let due = Duration::from_secs_f64(f64::from(j * job_size) / rate);
                tokio::time::sleep_until(start + due).await;
                let mut client = jobs.clone();
                running.spawn(async move { submit(&mut client, j, job_size, pairs).await });
            }
        }
    }
    while let Some(done) = running.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn submit(client: &mut Jobs, j: u32, job_size: u32, pairs: bool) -> Result<(), String> {
    let tasks = (0..job_size)
        .map(|i| {
            let task = TaskSpec::new(format!("t{i}"));
            if pairs && i % 2 == 1 {
                task.after(GroupKind::AllOf, &[&format!("t{}", i - 1)])
            } else {
                task
            }
        })
        .collect();
    let spec = JobSpec::new(format!("bench-{j}"), tasks);
    let request = SubmitJobRequest {
        spec: Some(job_spec_to_proto(&spec)),
    };
    client
        .submit_job(request)
        .await
        .map(|_| ())
        .map_err(|s| s.message().to_string())
}

/// Waits until the handlers ran every task, then until the coordinator reports every
/// job finished (their completions durable).
async fn wait_finished(
    jobs: &Jobs,
    cluster: &Cluster,
    count: u32,
    tasks: u64,
) -> Result<(), String> {
    while cluster.ran.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut client = jobs.clone();
    loop {
        let list = client
            .list_jobs(ListJobsRequest::default())
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner()
            .jobs;
        if list.len() as u32 == count && list.iter().all(|j| !j.outcome.is_empty()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
