//! `keel bench-e2e --stream-frames N`: output streams end to end. One job of `--tasks`
//! tasks; each task's handler emits N frames, `--frames-per-emit` at a time (each emit
//! awaited until stored), while a `TailStream` per task receives them. Every frame
//! carries the time its emit was sent, so the tail measures how long a frame takes from
//! the handler's `emit` to a reader. The handlers start emitting only once every tail
//! is open, so no frame waits for its reader.

use super::cluster::Cluster;
use super::BenchE2eArgs;
use crate::output::outln;
use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::{ClientOptions, Jobs};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::{SubmitJobRequest, TailStreamRequest};
use keel_grpc::worker::Task;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What each task's handler emits, and when it may start.
#[derive(Clone)]
pub(super) struct Producer {
    pub frames: u32,
    pub per_emit: u32,
    pub frame_bytes: u32,
    /// The instant frame stamps count from.
    pub epoch: Instant,
    /// Opens once every tail is listening.
    pub gate: watch::Receiver<bool>,
    /// With streaming edges: where consumers put each frame's delay from its emit.
    pub consumed: Option<std::sync::Arc<std::sync::Mutex<Vec<u64>>>>,
    /// With streaming edges: frames a consumer reads between acknowledgements.
    pub ack_every: u32,
}

impl Producer {
    /// Runs `task`: a consumer (one that streams from another) reads its edge, any
    /// other task emits its frames.
    pub async fn run(&self, task: &Task) -> Result<(), String> {
        match (&self.consumed, task.streams().first()) {
            (Some(consumed), Some(from)) => self.consume(task, from, consumed).await,
            _ => self.emit_all(task).await,
        }
    }

    /// Reads the edge from `from` to its end, acknowledging every `ack_every` frames,
    /// and records each frame's delay from its emit.
    async fn consume(
        &self,
        task: &Task,
        from: &str,
        consumed: &std::sync::Mutex<Vec<u64>>,
    ) -> Result<(), String> {
        let mut edge = task.stream(from);
        let (mut delays, mut unacked) = (Vec::new(), 0);
        while let Some(f) = edge.next().await.map_err(|e| e.to_string())? {
            let now = self.epoch.elapsed().as_nanos() as u64;
            let stamp: [u8; 8] = f
                .data
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default();
            delays.push(now.saturating_sub(u64::from_le_bytes(stamp)));
            unacked += 1;
            if unacked >= self.ack_every.max(1) {
                task.ack(from, f.seq + 1).await.map_err(|e| e.to_string())?;
                unacked = 0;
            }
        }
        consumed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(delays);
        Ok(())
    }

    /// Emits this task's frames, each stamped with when its emit was sent.
    pub async fn emit_all(&self, task: &Task) -> Result<(), String> {
        let _ = self.gate.clone().wait_for(|open| *open).await;
        let mut left = self.frames;
        while left > 0 {
            let n = left.min(self.per_emit.max(1));
            let stamp = (self.epoch.elapsed().as_nanos() as u64).to_le_bytes();
            let frame = |_| {
                let mut data = vec![b'.'; (self.frame_bytes as usize).max(8)];
                data[..8].copy_from_slice(&stamp);
                data
            };
            task.emit((0..n).map(frame).collect())
                .await
                .map_err(|e| e.to_string())?;
            left -= n;
        }
        Ok(())
    }
}

pub(super) async fn stream_bench(args: &BenchE2eArgs, backend: &str) -> Result<(), String> {
    let (gate_tx, gate) = watch::channel(false);
    let producer = Producer {
        frames: args.stream_frames,
        per_emit: args.frames_per_emit,
        frame_bytes: args.frame_bytes,
        epoch: Instant::now(),
        gate,
        consumed: None,
        ack_every: 1,
    };
    let epoch = producer.epoch;
    let cluster = Cluster::start(args, 0, Some(producer)).await?;
    let jobs = ClientOptions::new(cluster.url.clone())
        .jobs()
        .await
        .map_err(|e| e.to_string())?;
    let outcome = tokio::time::timeout(Duration::from_secs(args.timeout), async {
        let tails = open_tails(&jobs, args.tasks.max(1)).await?;
        let started = Instant::now();
        let _ = gate_tx.send(true);
        let mut delays = Vec::new();
        let mut running = JoinSet::new();
        for tail in tails {
            running.spawn(receive(tail, epoch));
        }
        while let Some(done) = running.join_next().await {
            delays.extend(done.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>((started.elapsed(), delays))
    })
    .await;
    let failed = cluster.failed_emits();
    let coordinator = cluster.stop().await;
    let (took, mut delays) = match outcome {
        Ok(result) => result?,
        Err(_) => return Err(format!("the run did not finish within {}s", args.timeout)),
    };
    if failed > 0 {
        return Err(format!("{failed} handlers had an emit refused"));
    }
    let expected = u64::from(args.tasks.max(1)) * u64::from(args.stream_frames);
    if delays.len() as u64 != expected {
        return Err(format!(
            "the tails received {} frames, not the {expected} emitted",
            delays.len()
        ));
    }
    delays.sort_unstable();
    let at = |q: f64| {
        let i = ((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1));
        delays.get(i).map_or(0.0, |d| *d as f64 / 1e6)
    };
    outln!(
        "{backend} streams: {expected} frames of {} bytes from {} tasks in emits of {} in {:.2}s = {:.0} frames/s through tails; emit to tail p50 {:.2}ms p99 {:.2}ms max {:.2}ms",
        args.frame_bytes.max(8),
        args.tasks.max(1),
        args.frames_per_emit.max(1),
        took.as_secs_f64(),
        expected as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    outln!("  {}", super::log_summary(&coordinator));
    Ok(())
}

/// Submits one job of `tasks` tasks and opens a tail on each.
async fn open_tails(
    jobs: &Jobs,
    tasks: u32,
) -> Result<Vec<tonic::Streaming<keel_grpc::proto::ReadStreamResponse>>, String> {
    let keys: Vec<String> = (0..tasks).map(|i| format!("t{i}")).collect();
    let spec = JobSpec::new("bench-streams", keys.iter().map(TaskSpec::new).collect());
    let request = SubmitJobRequest {
        spec: Some(job_spec_to_proto(&spec)),
    };
    let mut client = jobs.clone();
    let job = client
        .submit_job(request)
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .job;
    let mut tails = Vec::new();
    for key in keys {
        let request = TailStreamRequest {
            job,
            key,
            ..Default::default()
        };
        let tail = client
            .tail_stream(request)
            .await
            .map_err(|s| s.message().to_string())?;
        tails.push(tail.into_inner());
    }
    Ok(tails)
}

/// Reads a tail to its end; returns each frame's delay from its emit, in nanoseconds.
async fn receive(
    mut tail: tonic::Streaming<keel_grpc::proto::ReadStreamResponse>,
    epoch: Instant,
) -> Result<Vec<u64>, String> {
    let mut delays = Vec::new();
    while let Some(page) = tail.message().await.map_err(|s| s.to_string())? {
        let now = epoch.elapsed().as_nanos() as u64;
        for f in &page.frames {
            let stamp: [u8; 8] = f
                .data
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default();
            delays.push(now.saturating_sub(u64::from_le_bytes(stamp)));
        }
        if page.finished && page.frames.is_empty() {
            break;
        }
    }
    Ok(delays)
}
