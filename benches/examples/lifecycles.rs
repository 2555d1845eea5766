//! Runs a fixed number of task lifecycles (submit, grant, accept, complete) through the
//! engine and prints the rate. Deterministic work, so `perf stat -e instructions` or
//! `valgrind --tool=callgrind` on it gives repeatable counts on a busy machine:
//! `cargo run --release -p keel-benches --example lifecycles -- 200 1000000`
//! runs 200 batches of 1,000 lifecycles above a backlog of 1,000,000 queued tasks.

use keel_engine::{
    Accepted, ClientCommand, Config, Effect, Engine, Input, InstanceId, JobSpec, Limits, Payload,
    TaskSpec, WorkerCommand, WorkerId,
};
use std::time::Instant;

/// The allocator the `keel` binary ships with; allocation is a large share of a
/// lifecycle, so measuring with the system allocator would misstate production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: u32 = 1_000;

fn tasks(prefix: &str, n: u32) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| TaskSpec::new(format!("{prefix}{i}")))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let queued: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let config = Config {
        retention_ms: 1,
        limits: Limits {
            max_tasks_per_job: queued.max(BATCH),
            max_jobs_in_flight_per_tenant: u32::MAX,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let w = WorkerId::new("w1");
    let i = InstanceId::new(1);
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: BATCH,
    };
    engine.apply(0, Input::worker(&w, i, reg));
    let preload = JobSpec::new("preload", tasks("p", queued));
    engine.apply(0, Input::Client(ClientCommand::SubmitJob(preload)));
    let template = tasks("t", BATCH);
    let started = Instant::now();
    for n in 1..=batches {
        let mut job = JobSpec::new(format!("batch{n}"), template.clone());
        job.priority = 1;
        engine.apply(n, Input::Client(ClientCommand::SubmitJob(job)));
        let out = engine.apply(
            n,
            Input::worker(&w, i, WorkerCommand::RequestWork { credits: BATCH }),
        );
        let grants: Vec<_> = out
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            })
            .collect();
        assert_eq!(grants.len(), BATCH as usize);
        for grant in grants {
            let out = engine.apply(
                n,
                Input::worker(&w, i, WorkerCommand::AcceptGrant { grant }),
            );
            let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
                panic!("accept refused: {:?}", out.reply);
            };
            let done = WorkerCommand::Complete {
                fence,
                output: Payload::default(),
            };
            engine.apply(n, Input::worker(&w, i, done));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let total = batches * BATCH as u64;
    println!(
        "lifecycles={total} queued={queued} wall_s={secs:.3} per_sec={:.0}",
        total as f64 / secs
    );
}
