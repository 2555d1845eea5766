//! Full task lifecycles through `Engine::apply`: a job is submitted, its tasks are
//! granted to one worker, accepted and completed. Measured with 1,000 and with
//! 1,000,000 other tasks waiting in the queue, to show the cost of a lifecycle does not
//! grow with the backlog. The target is 1,000,000 lifecycles per second on one core,
//! and the 1M-queued cost within 1.5x of the 1k-queued cost.
//!
//! Each measured batch submits a job of `BATCH` tasks at a higher priority than the
//! backlog and runs all of its lifecycles, so the backlog stays queued at its preloaded
//! size however long criterion runs, and both cases do exactly the same work on top of
//! a backlog that differs only in size. (Draining the backlog instead would make the
//! 1M case pay, inside some random sample, for forgetting the finished 1M-task job in
//! one input.) The clock moves 1 ms per batch and finished jobs are retained for 1 ms,
//! so the engine forgets each batch's job as it would in production and memory stays
//! flat.
//!
//! A third case, `paced`, runs the 1,000-queued case with every batch task naming a
//! rate key whose bucket never runs dry: the cost a token bucket adds to each grant
//! (its check, its take and the refill arithmetic), compared with the unpaced case.
//!
//! A fourth, `budgeted`, gives each batch job a budget limiting attempts, attempt time
//! and a reported counter (limits never reached), and each attempt reports one usage
//! with its own dedup key before completing: the cost of counting every grant and
//! attempt end, plus one more command per task.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use keel_engine::{
    Accepted, BudgetSpec, ClientCommand, Config, DimensionLimit, Effect, Engine, Input, InstanceId,
    JobSpec, Limits, Payload, Rate, TaskSpec, Time, WorkerCommand, WorkerId, ATTEMPTS, ATTEMPT_MS,
};
use std::time::Duration;

/// The allocator the `keel` binary ships with; allocation is a large share of a
/// lifecycle, so measuring with the system allocator would misstate production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lifecycles per measured iteration; one work request asks for all of them, so it must
/// stay within the engine's per-request credit limit.
const BATCH: u32 = 1_000;

struct Lifecycles {
    engine: Engine,
    now: Time,
    worker: WorkerId,
    instance: InstanceId,
    grants: Vec<keel_engine::GrantId>,
    /// Each attempt reports usage before completing.
    reports: bool,
}

/// What each batch's tasks cost besides their lifecycle.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Paced,
    Budgeted,
}

/// The budget a budgeted batch job declares: three dimensions, none ever reached.
fn budget() -> BudgetSpec {
    let dims = [ATTEMPTS, ATTEMPT_MS, "tokens"];
    BudgetSpec {
        limits: dims
            .iter()
            .map(|d| {
                let limit = DimensionLimit {
                    soft: Some(u64::MAX - 1),
                    hard: Some(u64::MAX),
                };
                (d.to_string(), limit)
            })
            .collect(),
        ..BudgetSpec::default()
    }
}

fn config(queued: u32, mode: Mode) -> Config {
    let mut config = Config {
        retention_ms: 1,
        limits: Limits {
            max_tasks_per_job: queued.max(BATCH),
            max_jobs_in_flight_per_tenant: u32::MAX,
            ..Limits::default()
        },
        ..Config::default()
    };
    if mode == Mode::Paced {
        let bucket = Rate {
            rate: u32::MAX,
            per_ms: 1,
            burst: u32::MAX,
        };
        config.rates.keys.insert(RATE_KEY.into(), bucket);
    }
    config
}

/// The key paced batch tasks name.
const RATE_KEY: &str = "api";

fn tasks(prefix: &str, n: u32) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| TaskSpec::new(format!("{prefix}{i}")))
        .collect()
}

impl Lifecycles {
    /// An engine with one worker (enough concurrency for a whole batch) and a job of
    /// `queued` ready tasks.
    fn new(queued: u32, mode: Mode) -> Lifecycles {
        let mut engine = Engine::new(config(queued, mode));
        let worker = WorkerId::new("w1");
        let instance = InstanceId::new(1);
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: BATCH,
        };
        let out = engine.apply(0, Input::worker(&worker, instance, reg));
        assert!(matches!(out.reply, Some(Ok(Accepted::Registered { .. }))));
        let preload = JobSpec::new("preload", tasks("p", queued));
        let out = engine.apply(0, Input::Client(ClientCommand::SubmitJob(preload)));
        assert!(matches!(out.reply, Some(Ok(Accepted::JobSubmitted { .. }))));
        assert_eq!(engine.queued(), queued as u64);
        Lifecycles {
            engine,
            now: 0,
            worker,
            instance,
            grants: Vec::with_capacity(BATCH as usize),
            reports: mode == Mode::Budgeted,
        }
    }

    fn worker(&self, command: WorkerCommand) -> Input {
        Input::worker(&self.worker, self.instance, command)
    }

    /// Submits `job`, then grants, accepts and completes `BATCH` tasks.
    fn batch(&mut self, job: JobSpec) {
        self.now += 1;
        let now = self.now;
        let out = self
            .engine
            .apply(now, Input::Client(ClientCommand::SubmitJob(job)));
        debug_assert!(matches!(out.reply, Some(Ok(_))));
        let request = self.worker(WorkerCommand::RequestWork { credits: BATCH });
        let out = self.engine.apply(now, request);
        self.grants.clear();
        self.grants
            .extend(out.effects.iter().filter_map(|e| match e {
                Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            }));
        assert_eq!(self.grants.len(), BATCH as usize, "a batch was not granted");
        for i in 0..self.grants.len() {
            let accept = self.worker(WorkerCommand::AcceptGrant {
                grant: self.grants[i],
            });
            let out = self.engine.apply(now, accept);
            let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
                panic!("accept refused: {:?}", out.reply);
            };
            if self.reports {
                let usage = self.worker(WorkerCommand::ReportUsage {
                    fence,
                    budget: "b".into(),
                    dimension: "tokens".into(),
                    amount: 100,
                    dedup_key: format!("r{i}"),
                });
                let out = self.engine.apply(now, usage);
                debug_assert!(matches!(
                    out.reply,
                    Some(Ok(Accepted::UsageRecorded { .. }))
                ));
            }
            let complete = self.worker(WorkerCommand::Complete {
                fence,
                output: Payload::default(),
            });
            let out = self.engine.apply(now, complete);
            debug_assert!(matches!(
                out.reply,
                Some(Ok(Accepted::Completed {
                    duplicate: false,
                    ..
                }))
            ));
        }
    }
}

/// Runs the lifecycle benchmarks under measurement `M`. Each engine is built only when
/// its benchmark runs, so a filter that selects one does not pay for the other.
fn lifecycles<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for (case, queued, mode) in [
        ("queued", 1_000u32, Mode::Plain),
        ("queued", 1_000_000, Mode::Plain),
        ("paced", 1_000, Mode::Paced),
        ("budgeted", 1_000, Mode::Budgeted),
    ] {
        let mut template = tasks("t", BATCH);
        if mode == Mode::Paced {
            for t in &mut template {
                t.rate_key = Some(RATE_KEY.into());
            }
        }
        let mut state: Option<Lifecycles> = None;
        let mut next = 0u64;
        group.bench_function(BenchmarkId::new(case, queued), |b| {
            let state = state.get_or_insert_with(|| Lifecycles::new(queued, mode));
            b.iter_batched(
                || {
                    next += 1;
                    let mut job = JobSpec::new(format!("batch{next}"), template.clone());
                    job.priority = 1;
                    if mode == Mode::Budgeted {
                        job.budgets.insert("b".into(), budget());
                    }
                    job
                },
                |job| state.batch(job),
                BatchSize::SmallInput,
            )
        });
        if let Some(state) = state {
            assert_eq!(
                state.engine.queued(),
                queued as u64,
                "the backlog must keep its size"
            );
            assert!(state.engine.check_invariants().is_ok());
        }
    }
    group.finish();
}

fn wall_time(c: &mut Criterion) {
    lifecycles(c, "engine_lifecycle");
}

fn cpu_time(c: &mut Criterion<ThreadCpu>) {
    lifecycles(c, "engine_lifecycle_cpu");
}

/// CPU time of the benchmarking thread. On a machine shared with builds and other
/// benchmarks, wall time mostly measures how often the thread was descheduled; CPU
/// time is what "lifecycles per second on one core" means.
struct ThreadCpu;

#[cfg(target_os = "linux")]
fn cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(target_os = "linux"))]
fn cpu_ns() -> u64 {
    // No portable thread CPU clock: fall back to wall time since first use.
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time, and throughput per CPU second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns cpu"),
            t if t < 1e6 => (1e3, "µs cpu"),
            t if t < 1e9 => (1e6, "ms cpu"),
            _ => (1e9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Bytes(n)
            | Throughput::BytesDecimal(n)
            | Throughput::Elements(n)
            | Throughput::Bits(n) => *n,
            Throughput::ElementsAndBytes { elements, .. } => *elements,
        } as f64;
        let per_s = n * 1e9 / typical;
        let (div, unit) = match per_s {
            r if r < 1e3 => (1.0, "elem/cpu-s"),
            r if r < 1e6 => (1e3, "Kelem/cpu-s"),
            _ => (1e6, "Melem/cpu-s"),
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group!(wall, wall_time);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu_time
}
criterion_main!(wall, cpu);
