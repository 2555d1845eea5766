//! Frames through `Engine::apply`: one running task emits `K` frames of 100 bytes per
//! emit, into a stream that keeps its last 1,000 frames, so every emit both appends and
//! lets go of as many frames and memory stays flat however long criterion runs. The
//! figure is frames per second on one core, for K = 1 (an emit per frame) and K = 10
//! and 100 (the batches an SDK makes of a fast producer).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel_benches::running_task;
use keel_engine::{Config, Input, Payload, StreamMode, TaskSpec, WorkerCommand};

fn emits(c: &mut Criterion) {
    let mut group = c.benchmark_group("emit");
    for per_emit in [1u64, 10, 100] {
        group.throughput(Throughput::Elements(per_emit));
        group.bench_function(BenchmarkId::new("bounded_1000", per_emit), |b| {
            let mut task = TaskSpec::new("tail");
            task.stream = StreamMode::Bounded { frames: 1_000 };
            let (mut engine, w, i, fence) = running_task(Config::default(), task);
            let frame = Payload::from(vec![b'x'; 100]);
            let mut from = 0;
            b.iter(|| {
                let frames = (0..per_emit).map(|_| frame.clone()).collect();
                let emit = WorkerCommand::Emit {
                    fence,
                    from,
                    frames,
                };
                let out = engine.apply(2, Input::worker(&w, i, emit));
                debug_assert!(matches!(out.reply, Some(Ok(_))));
                from += per_emit;
                out
            });
        });
    }
    group.finish();
}

criterion_group!(benches, emits);
criterion_main!(benches);
