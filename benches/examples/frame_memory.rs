//! What a retained stream frame costs the engine, and how fast frames go in: one task
//! emits N frames of B bytes in emits of K frames; prints per frame the extra heap
//! bytes (counted at the allocator), snapshot bytes and stored bytes (the engine's
//! accounting, which charges each frame its bytes plus `FRAME_OVERHEAD`); the rate
//! frames go in at is the `streams` bench's:
//! `cargo run --release -p keel-benches --example frame_memory -- 100 100000 10`
//! emits 100,000 frames of 100 bytes, 10 per emit.

use keel_benches::running_task;
use keel_engine::{
    Config, Engine, Fence, Input, InstanceId, Payload, TaskSpec, WorkerCommand, WorkerId,
};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live;

/// An engine whose one task runs under worker w1, with no byte limit in reach.
fn running() -> (Engine, WorkerId, InstanceId, Fence) {
    let mut config = Config::default();
    config.limits.max_output_bytes_per_job = u64::MAX / 2;
    config.limits.max_stored_bytes = u64::MAX / 2;
    running_task(config, TaskSpec::new("tail"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let bytes = next(100) as usize;
    let frames = next(100_000);
    let per_emit = next(10).max(1);
    let (mut engine, w, i, fence) = running();
    let (heap, snapshot, stored) = (live(), engine.snapshot().len(), engine.usage().stored_bytes);
    let mut from = 0;
    while from < frames {
        let n = per_emit.min(frames - from);
        // A fresh copy per frame, as each emit arrives with its own bytes.
        let batch = (0..n).map(|_| Payload::from(vec![b'x'; bytes])).collect();
        let emit = WorkerCommand::Emit {
            fence,
            from,
            frames: batch,
        };
        let out = engine.apply(2, Input::worker(&w, i, emit));
        assert!(matches!(out.reply, Some(Ok(_))), "{:?}", out.reply);
        from += n;
    }
    let n = frames as f64;
    println!(
        "frames={frames} bytes_each={bytes} per_emit={per_emit} heap_per_frame={:.1} snapshot_per_frame={:.1} stored_per_frame={:.1}",
        (live() - heap) as f64 / n,
        (engine.snapshot().len() as f64 - snapshot as f64) / n,
        (engine.usage().stored_bytes - stored) as f64 / n,
    );
}
