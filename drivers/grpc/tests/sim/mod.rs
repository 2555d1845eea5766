//! The nodes of the simulated cluster: a coordinator whose log outlives it, SDK workers,
//! a raw worker session that turns into a zombie, and the client that submits the job.

use keel_coordinator::{Clock, Coordinator, CoordinatorConfig};
use keel_engine::{Fence, GroupKind, JobSpec, TaskSpec};
use keel_grpc::client::{ClientOptions, Jobs, Workers};
use keel_grpc::proto::{self, coordinator_event, reply, worker_command, CoordinatorFrame};
use keel_grpc::server::{serve, ServerOptions};
use keel_grpc::worker::{Outcome, Summary, Task, Worker, WorkerConfig};
use keel_grpc::{job_spec_to_proto, proto::WorkerFrame};
use keel_log::MemoryLog;
use madsim::rand::Rng;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

pub const COORDINATOR_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PORT: u16 = 7070;
pub const LAYERS: usize = 4;
pub const WIDTH: usize = 30;

pub fn url() -> String {
    format!("http://{COORDINATOR_IP}:{PORT}")
}

/// Short timeouts keep the simulated run short; the ratios are the production ones.
pub fn engine_config(seed: u64) -> keel_engine::Config {
    keel_engine::Config {
        seed,
        grant_ttl_ms: 2_000,
        lease_ttl_ms: 6_000,
        liveness_timeout_ms: 4_000,
        // Each chaos event costs a running task at most one loss; this bounds them.
        max_losses: 10,
        ..keel_engine::Config::default()
    }
}

/// The simulated wall clock. `SystemClock` keeps a process-wide floor, which would carry
/// one seeded run's time (each starts at a random instant of 2022) into the next run
/// in this process and freeze the coordinator's clock there.
struct SimClock;

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        u64::try_from(since.as_millis()).unwrap()
    }
}

/// Runs one coordinator incarnation: recover from `log`, serve until the node dies.
pub async fn coordinator(log: Arc<MemoryLog>, seed: u64) {
    let config = CoordinatorConfig {
        engine: engine_config(seed),
        holder: "coordinator".into(),
        // Small batches and frequent snapshots, so a seed's few hundred entries go
        // through the append pipeline and recoveries start from snapshots.
        max_batch: 16,
        snapshot_every: 64,
        ..CoordinatorConfig::default()
    };
    let handle = Coordinator::start(config, log, Arc::new(SimClock))
        .await
        .expect("the coordinator recovers from its log");
    let listener = tokio::net::TcpListener::bind((COORDINATOR_IP, PORT))
        .await
        .expect("the coordinator binds its port");
    let stopped = handle.clone();
    let shutdown = async move {
        stopped.stopped().await;
    };
    serve(
        handle,
        listener,
        ServerOptions::default(),
        Arc::default(),
        shutdown,
    )
    .await
    .expect("the server runs");
}

/// A handler's finished run: the fence it ran under and the worker it ran on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ran {
    pub fence: Fence,
    pub worker: String,
}

/// What the SDK workers report to the test.
#[derive(Default)]
pub struct Tally {
    pub ran: Mutex<Vec<Ran>>,
    /// (worker, summary) of each incarnation that drained.
    pub summaries: Mutex<Vec<(String, Summary)>>,
}

/// Runs one SDK worker incarnation until `stop` is set, then drains. `stop` is polled:
/// a tokio `watch` with several receivers wakes them in an order drawn from a seed that
/// is process-wide, so the second run of a seed in a process would differ from the first.
pub async fn sdk_worker(name: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut config = WorkerConfig::new(ClientOptions::new(url()), name.clone(), 4);
    config.backoff_max = Duration::from_secs(2);
    let handler = {
        let (tally, worker) = (tally.clone(), name.clone());
        move |task: Task| {
            let tally = tally.clone();
            let worker = worker.clone();
            async move {
                let ms = madsim::rand::thread_rng().gen_range(500..2_000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let fence = task.fence;
                tally.ran.lock().unwrap().push(Ran { fence, worker });
                Outcome::Complete(task.payload.clone())
            }
        }
    };
    let shutdown = async move {
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let summary = Worker::new(config)
        .run(handler, shutdown)
        .await
        .expect("the worker runs");
    tally.summaries.lock().unwrap().push((name, summary));
}

/// The job: `LAYERS` layers of `WIDTH` tasks, each after two tasks of the layer before.
pub fn job() -> JobSpec {
    let key = |layer: usize, i: usize| format!("l{layer}-t{i}");
    let mut tasks = Vec::new();
    for layer in 0..LAYERS {
        for i in 0..WIDTH {
            let task = TaskSpec::new(key(layer, i));
            tasks.push(if layer == 0 {
                task
            } else {
                let up = [key(layer - 1, i), key(layer - 1, (i + 1) % WIDTH)];
                task.after(GroupKind::AllOf, &[up[0].as_str(), up[1].as_str()])
            });
        }
    }
    JobSpec::new("layers", tasks)
}

async fn jobs_client() -> Jobs {
    loop {
        if let Ok(jobs) = ClientOptions::new(url()).jobs().await {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits the job (retrying until the coordinator answers) and returns its id.
pub async fn submit() -> u64 {
    let spec = job_spec_to_proto(&job());
    loop {
        let request = proto::SubmitJobRequest {
            spec: Some(spec.clone()),
        };
        match jobs_client().await.submit_job(request).await {
            Ok(response) => return response.into_inner().job,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Polls until the job has an outcome; survives coordinator restarts.
pub async fn wait_finished(job: u64) -> proto::DescribeJobResponse {
    loop {
        let described = jobs_client()
            .await
            .describe_job(proto::DescribeJobRequest { job })
            .await;
        if let Ok(view) = described {
            let view = view.into_inner();
            if view.status.as_ref().is_some_and(|s| !s.outcome.is_empty()) {
                return view;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One raw worker session, speaking the protocol frame by frame.
struct RawSession {
    out: mpsc::UnboundedSender<WorkerFrame>,
    inbound: tonic::Streaming<CoordinatorFrame>,
    seq: u64,
}

impl RawSession {
    /// Connects and registers `instance` of worker "zombie"; `None` if that failed.
    async fn open(instance: u64) -> Option<RawSession> {
        let mut client: Workers = ClientOptions::new(url()).workers().await.ok()?;
        let (out, rx) = mpsc::unbounded_channel();
        let register = worker_command::Command::Register(proto::Register {
            worker_id: "zombie".into(),
            instance,
            max_concurrency: 1,
            ..proto::Register::default()
        });
        // The coordinator reads the registration before it answers the call.
        let commands = vec![proto::WorkerCommand {
            seq: 1,
            command: Some(register),
        }];
        out.send(WorkerFrame { commands }).ok()?;
        let response = client.session(UnboundedReceiverStream::new(rx)).await;
        let inbound = response.ok()?.into_inner();
        let mut session = RawSession {
            out,
            inbound,
            seq: 1,
        };
        match session.reply(1).await? {
            reply::Result::Registered(_) => Some(session),
            _ => None,
        }
    }

    fn send(&mut self, command: worker_command::Command) -> Option<u64> {
        self.seq += 1;
        let commands = vec![proto::WorkerCommand {
            seq: self.seq,
            command: Some(command),
        }];
        self.out.send(WorkerFrame { commands }).ok()?;
        Some(self.seq)
    }

    /// Reads until the reply to `seq`; `None` if the session ended first.
    async fn reply(&mut self, seq: u64) -> Option<reply::Result> {
        loop {
            let frame = self.inbound.message().await.ok()??;
            for event in frame.events {
                if let Some(coordinator_event::Event::Reply(r)) = event.event {
                    if r.seq == seq {
                        return r.result;
                    }
                }
            }
        }
    }

    /// Reads until a grant is offered; `None` if the session ended first.
    async fn offer(&mut self) -> Option<u64> {
        loop {
            let frame = self.inbound.message().await.ok()??;
            for event in frame.events {
                if let Some(coordinator_event::Event::GrantOffered(g)) = event.event {
                    return Some(g.grant);
                }
            }
        }
    }

    /// Asks for one task and accepts it; `None` if the session ended first.
    async fn lease(&mut self) -> Option<Fence> {
        self.send(worker_command::Command::RequestWork(proto::RequestWork {
            credits: 1,
        }))?;
        let grant = self.offer().await?;
        let seq = self.send(worker_command::Command::AcceptGrant(proto::AcceptGrant {
            grant,
        }))?;
        match self.reply(seq).await? {
            reply::Result::LeaseStarted(started) => started.fence.map(fence_from_proto),
            _ => None,
        }
    }
}

fn fence_from_proto(f: proto::Fence) -> Fence {
    Fence {
        task: keel_engine::TaskId::new(f.task),
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

fn fence_to_proto(f: Fence) -> proto::Fence {
    proto::Fence {
        task: f.task.get(),
        attempt: f.attempt,
        epoch: f.epoch,
    }
}

/// What the zombie saw when it reported its stale completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZombieReport {
    pub fence: Fence,
    /// The answer to its Complete: a refusal's (code, reason), or what else came back.
    pub answer: Result<(i32, String), String>,
}

/// Takes a lease, renews it until told it was partitioned and healed (`healed`), then
/// reports the task complete with the fence it holds.
pub async fn zombie(
    leased: mpsc::UnboundedSender<Fence>,
    mut healed: watch::Receiver<bool>,
) -> ZombieReport {
    let mut instance = 1;
    let (mut session, fence) = loop {
        if let Some(mut session) = RawSession::open(instance).await {
            if let Some(fence) = session.lease().await {
                break (session, fence);
            }
        }
        instance += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = leased.send(fence);
    let renew = || {
        worker_command::Command::Renew(proto::Renew {
            fence: Some(fence_to_proto(fence)),
        })
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = healed.wait_for(|h| *h) => break,
            _ = ticks.tick() => {
                session.send(renew());
                session.send(worker_command::Command::Heartbeat(proto::Heartbeat {}));
            }
        }
    }
    let complete = worker_command::Command::Complete(proto::Complete {
        fence: Some(fence_to_proto(fence)),
        output: b"zombie".to_vec(),
    });
    // The session survives a partition; if the coordinator restarted meanwhile it did
    // not, and the completion goes over a new one from a later instance.
    let mut answer = match session.send(complete.clone()) {
        Some(seq) => session.reply(seq).await,
        None => None,
    };
    while answer.is_none() {
        instance += 1;
        if let Some(mut fresh) = RawSession::open(instance).await {
            if let Some(seq) = fresh.send(complete.clone()) {
                answer = fresh.reply(seq).await;
            }
        }
    }
    let answer = match answer {
        Some(reply::Result::Refused(r)) => Ok((r.status, r.reason)),
        other => Err(format!("{other:?}")),
    };
    ZombieReport { fence, answer }
}
