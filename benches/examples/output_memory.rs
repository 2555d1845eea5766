//! What a retained task output costs the engine: runs the same jobs twice, once with
//! empty outputs and once with outputs of N bytes, keeps every job retained, and
//! prints per output the extra heap bytes (counted at the allocator), snapshot bytes
//! and stored bytes (the engine's own accounting against `max_stored_bytes`):
//! `cargo run --release -p keel-benches --example output_memory -- 1024 100 100`
//! runs 100 jobs of 100 tasks with 1 KiB outputs.

use keel_engine::{
    Accepted, ClientCommand, Config, Effect, Engine, Input, InstanceId, JobSpec, Payload, TaskSpec,
    WorkerCommand, WorkerId,
};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live;

/// What the engine holds once every job ran with outputs of `bytes` bytes.
struct Held {
    heap: i64,
    snapshot: usize,
    stored: u64,
}

fn run(bytes: usize, jobs: u32, tasks: u32) -> Held {
    let before = live();
    let mut engine = Engine::new(Config::default());
    let (w, i) = (WorkerId::new("w1"), InstanceId::new(1));
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: tasks,
    };
    engine.apply(0, Input::worker(&w, i, reg));
    let output = Payload::from(vec![b'x'; bytes]);
    for j in 0..jobs {
        let specs = (0..tasks).map(|t| TaskSpec::new(format!("t{t}"))).collect();
        let job = JobSpec::new(format!("job{j}"), specs);
        engine.apply(1, Input::Client(ClientCommand::SubmitJob(job)));
        let work = WorkerCommand::RequestWork { credits: tasks };
        let grants: Vec<_> = engine
            .apply(1, Input::worker(&w, i, work))
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            })
            .collect();
        for grant in grants {
            let accept = WorkerCommand::AcceptGrant { grant };
            let out = engine.apply(1, Input::worker(&w, i, accept));
            let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
                panic!("accept refused: {:?}", out.reply);
            };
            // A fresh copy per task, as each completion arrives with its own bytes.
            let output = Payload::from(output.as_bytes().to_vec());
            engine.apply(
                1,
                Input::worker(&w, i, WorkerCommand::Complete { fence, output }),
            );
        }
    }
    assert_eq!(
        engine.usage().jobs,
        u64::from(jobs),
        "every job is retained"
    );
    let held = Held {
        heap: live() - before,
        snapshot: engine.snapshot().len(),
        stored: engine.usage().stored_bytes,
    };
    drop(engine);
    held
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let bytes = next(1024) as usize;
    let jobs = next(100) as u32;
    let tasks = next(100) as u32;
    let empty = run(0, jobs, tasks);
    let full = run(bytes, jobs, tasks);
    let n = f64::from(jobs) * f64::from(tasks);
    println!(
        "outputs={n} bytes_each={bytes} heap_per_output={:.1} snapshot_per_output={:.1} stored_per_output={:.1} (heap {} -> {}, snapshot {} -> {})",
        (full.heap - empty.heap) as f64 / n,
        (full.snapshot as f64 - empty.snapshot as f64) / n,
        (full.stored as f64 - empty.stored as f64) / n,
        empty.heap,
        full.heap,
        empty.snapshot,
        full.snapshot
    );
}
