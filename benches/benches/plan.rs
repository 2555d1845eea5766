//! Planning a 100,000-task job (the generated sharded-pipeline shape, with a pool).
//! The budget is one second for planning; validation is measured with it as well.

use criterion::{criterion_group, criterion_main, Criterion};
use keel_jobs::{generated_job, load_job, load_pool, plan, Limits};
use std::hint::black_box;
use std::time::Duration;

const POOL: &str = r#"
[[worker]]
name = "cpu"
count = 64
concurrency = 8
capabilities = ["net:warehouse"]
lanes = ["batch"]
"#;

fn bench_plan(c: &mut Criterion) {
    let limits = Limits::default();
    let text = generated_job("bench-100k", 100_000);
    let job = load_job("bench-100k.toml", &text, &limits).expect("generated job is valid");
    let pool = load_pool("pool.toml", POOL, &limits).expect("pool is valid");
    assert_eq!(job.spec().tasks.len(), 100_000);
    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("plan_100k_tasks", |b| {
        b.iter(|| plan(black_box(&job), Some(black_box(&pool))))
    });
    group.bench_function("validate_and_plan_100k_tasks", |b| {
        b.iter(|| {
            let loaded = keel_jobs::LoadedJob::from_spec(job.spec().clone(), &limits);
            let loaded = loaded.expect("valid");
            plan(&loaded, Some(&pool)).schedule.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
