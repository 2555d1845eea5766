//! Operation generators for the state-machine test. Operations name grants, leases,
//! jobs and suspended tasks by how recently they were seen rather than by id, so every
//! generated index resolves to something real and shrinking keeps sequences meaningful.

use keel_engine::*;
use proptest::prelude::*;

/// Four names against a limit of three live workers, so registration can be refused.
pub(crate) const WORKERS: [&str; 4] = ["w1", "w2", "w3", "w4"];
/// Worker capabilities are subsets of the first three; "tpu" is only ever required, so
/// a task needing it stays blocked until cancelled or past its deadline.
pub(crate) const CAPS: [&str; 4] = ["gpu", "ssd", "arm", "tpu"];

#[derive(Clone, Copy, Debug)]
pub(crate) enum InstPick {
    Current,
    /// One less than the current instance: a process that was replaced.
    Older,
}

/// Who sends a fenced command.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sender {
    /// The worker and instance that started the lease.
    Holder,
    /// The same worker name under whatever instance it has now.
    HolderCurrent,
    /// Some worker, usually not the holder.
    Other(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum FencedCmd {
    Renew,
    Complete,
    Fail {
        permanent: bool,
    },
    Suspend {
        waitpoint: u8,
        timeout_ms: Option<u64>,
        resume: bool,
    },
    /// `count` frames of the attempt; frame `k` holds `<epoch>.<k>`, so a check can
    /// tell which attempt and position it is. They start where the lease's appended
    /// frames end (`back` 0), resend the last one or two (`back` 1 or 2), or leave a
    /// gap of one (`back` 3).
    Emit {
        back: u8,
        count: u8,
    },
}

/// The data of frame `k` of the attempt under `fence`.
pub(crate) fn frame_data(fence: Fence, k: u64) -> String {
    format!("{}.{k}", fence.epoch)
}

impl FencedCmd {
    /// The command on `fence`, whose lease has had `emitted` frames appended.
    pub(crate) fn command(&self, fence: Fence, emitted: u64) -> WorkerCommand {
        match self {
            FencedCmd::Renew => WorkerCommand::Renew { fence },
            FencedCmd::Complete => WorkerCommand::Complete {
                fence,
                output: Payload::from("out"),
            },
            FencedCmd::Fail { permanent } => WorkerCommand::Fail {
                fence,
                error: "boom".into(),
                permanent: *permanent,
            },
            FencedCmd::Suspend {
                waitpoint,
                timeout_ms,
                resume,
            } => WorkerCommand::Suspend {
                fence,
                waitpoint: format!("wp{}", waitpoint % 2),
                timeout_ms: *timeout_ms,
                on_timeout: if *resume {
                    SuspendTimeout::Resume
                } else {
                    SuspendTimeout::Fail
                },
            },
            FencedCmd::Emit { back, count } => {
                let from = match back {
                    3 => emitted + 1,
                    back => emitted.saturating_sub(u64::from(*back)),
                };
                WorkerCommand::Emit {
                    fence,
                    from,
                    frames: (from..from + u64::from(*count))
                        .map(|k| Payload::from(frame_data(fence, k).into_bytes()))
                        .collect(),
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Register {
        w: usize,
        caps: u8,
        lanes: u8,
        conc: u32,
        next_instance: bool,
    },
    Heartbeat {
        w: usize,
        inst: InstPick,
    },
    RequestWork {
        w: usize,
        credits: u32,
    },
    Drain {
        w: usize,
    },
    Deregister {
        w: usize,
    },
    Accept {
        grant: usize,
        as_other: Option<usize>,
    },
    Release {
        grant: usize,
        as_other: Option<usize>,
    },
    Fenced {
        lease: usize,
        sender: Sender,
        cmd: FencedCmd,
    },
    Submit(JobGen),
    Cancel {
        job: usize,
    },
    Signal {
        task: usize,
        right_waitpoint: bool,
        key: u8,
    },
    Advance(u64),
}

#[derive(Clone, Debug)]
pub(crate) struct TaskGen {
    deps: Vec<usize>,
    kind: u8,
    quorum: u32,
    cancel_on_unsatisfied: bool,
    caps: u8,
    max_attempts: u32,
    jitter_pct: u8,
    attempt_timeout_ms: Option<u64>,
    delay_ms: u64,
    priority: Option<i32>,
    allow_failure: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct JobGen {
    name: u8,
    tenant: u8,
    fast_lane: bool,
    priority: i32,
    deadline_ms: Option<u64>,
    max_concurrency: Option<u32>,
    tasks: Vec<TaskGen>,
    /// Adds an edge from the first task to the last, making a cycle when the last task
    /// already depends on the first.
    close_cycle: bool,
}

/// Recent items are picked far more often than old ones.
fn pick() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..3, 1 => 0usize..40]
}

fn worker() -> impl Strategy<Value = usize> {
    0..WORKERS.len()
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        8 => Just(Sender::Holder),
        1 => Just(Sender::HolderCurrent),
        1 => worker().prop_map(Sender::Other),
    ]
}

fn fenced_cmd() -> impl Strategy<Value = FencedCmd> {
    prop_oneof![
        3 => Just(FencedCmd::Renew),
        6 => Just(FencedCmd::Complete),
        3 => any::<bool>().prop_map(|permanent| FencedCmd::Fail { permanent }),
        2 => (any::<u8>(), prop::option::of(100u64..3_000), any::<bool>()).prop_map(
            |(waitpoint, timeout_ms, resume)| FencedCmd::Suspend { waitpoint, timeout_ms, resume }
        ),
        1 => (0u8..4, 0u8..3).prop_map(|(back, count)| FencedCmd::Emit { back, count }),
    ]
}

fn task_gen() -> impl Strategy<Value = TaskGen> {
    (
        prop::collection::vec(0usize..8, 0..4),
        0u8..3,
        0u32..4,
        any::<bool>(),
        prop_oneof![4 => Just(0u8), 3 => 0u8..8, 1 => 0u8..16],
        1u32..4,
        0u8..60,
        prop_oneof![3 => Just(None), 1 => (100u64..3_000).prop_map(Some)],
        prop_oneof![3 => Just(0u64), 1 => 1u64..2_000],
        prop::option::of(-2i32..3),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(deps, kind, quorum, cancel, caps, max_attempts, jitter, timeout, delay, prio, af)| {
                TaskGen {
                    deps,
                    kind,
                    quorum,
                    cancel_on_unsatisfied: cancel,
                    caps,
                    max_attempts,
                    jitter_pct: jitter,
                    attempt_timeout_ms: timeout,
                    delay_ms: delay,
                    priority: prio,
                    allow_failure: af,
                }
            },
        )
}

fn job_gen() -> impl Strategy<Value = JobGen> {
    (
        0u8..6,
        0u8..3,
        prop::bool::weighted(0.3),
        -1i32..2,
        prop_oneof![3 => Just(None), 1 => (500u64..20_000).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => (1u32..3).prop_map(Some)],
        prop::collection::vec(task_gen(), 1..6),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(name, tenant, fast_lane, priority, deadline_ms, cap, tasks, close_cycle)| JobGen {
                name,
                tenant,
                fast_lane,
                priority,
                deadline_ms,
                max_concurrency: cap,
                tasks,
                close_cycle,
            },
        )
}

/// The spec a generated job stands for. Dependencies point only at earlier tasks, so a
/// spec is acyclic unless `close_cycle` adds a back edge.
pub(crate) fn job_spec(g: &JobGen) -> JobSpec {
    let keys: Vec<String> = (0..g.tasks.len()).map(|i| format!("k{i}")).collect();
    let mut tasks = Vec::new();
    for (i, t) in g.tasks.iter().enumerate() {
        let mut spec = TaskSpec::new(keys[i].clone());
        let mut ups: Vec<usize> = if i == 0 {
            vec![]
        } else {
            t.deps.iter().map(|d| d % i).collect()
        };
        if g.close_cycle && i == 0 && g.tasks.len() > 1 {
            ups.push(g.tasks.len() - 1);
        }
        ups.sort();
        ups.dedup();
        if !ups.is_empty() {
            let n = ups.len() as u32;
            let kind = match t.kind {
                0 => GroupKind::AllOf,
                1 => GroupKind::AnyOf,
                _ => GroupKind::Quorum(1 + t.quorum % n),
            };
            let upstream: Vec<&str> = ups.iter().map(|&u| keys[u].as_str()).collect();
            spec = spec.after(kind, &upstream);
            if let Some(group) = spec.deps.as_mut() {
                if t.cancel_on_unsatisfied {
                    group.on_unsatisfied = UnsatisfiedPolicy::Cancel;
                }
            }
        }
        let caps: Vec<&str> = (0..CAPS.len())
            .filter(|b| t.caps & (1 << b) != 0)
            .map(|b| CAPS[b])
            .collect();
        spec = spec.requires(&caps);
        spec.retry = RetryPolicy {
            max_attempts: t.max_attempts,
            backoff_base_ms: 100,
            backoff_factor: 2,
            backoff_max_ms: 1_000,
            jitter_pct: t.jitter_pct,
        };
        spec.attempt_timeout_ms = t.attempt_timeout_ms;
        spec.delay_ms = t.delay_ms;
        spec.priority = t.priority;
        spec.allow_failure = t.allow_failure;
        spec.payload = Payload::from(keys[i].as_str());
        tasks.push(spec);
    }
    let mut job = JobSpec::new(format!("job{}", g.name), tasks);
    job.tenant = ["a", "b", "c"][g.tenant as usize % 3].to_string();
    if g.fast_lane {
        job.lane = "fast".into();
    }
    job.priority = g.priority;
    job.deadline_ms = g.deadline_ms;
    job.max_concurrency = g.max_concurrency;
    job
}

pub(crate) fn op_strategy() -> impl Strategy<Value = Op> {
    let register = (
        worker(),
        0u8..8,
        any::<u8>(),
        1u32..5,
        prop::bool::weighted(0.3),
    )
        .prop_map(|(w, caps, lanes, conc, next_instance)| Op::Register {
            w,
            caps,
            lanes,
            conc,
            next_instance,
        });
    let inst = prop_oneof![5 => Just(InstPick::Current), 1 => Just(InstPick::Older)];
    let as_other = prop_oneof![6 => Just(None), 1 => worker().prop_map(Some)];
    prop_oneof![
        4 => register,
        3 => (worker(), inst).prop_map(|(w, inst)| Op::Heartbeat { w, inst }),
        6 => (worker(), 0u32..5).prop_map(|(w, credits)| Op::RequestWork { w, credits }),
        1 => worker().prop_map(|w| Op::Drain { w }),
        1 => worker().prop_map(|w| Op::Deregister { w }),
        8 => (pick(), as_other.clone()).prop_map(|(grant, as_other)| Op::Accept { grant, as_other }),
        1 => (pick(), as_other).prop_map(|(grant, as_other)| Op::Release { grant, as_other }),
        12 => (pick(), sender(), fenced_cmd())
            .prop_map(|(lease, sender, cmd)| Op::Fenced { lease, sender, cmd }),
        4 => job_gen().prop_map(Op::Submit),
        1 => pick().prop_map(|job| Op::Cancel { job }),
        2 => (pick(), prop::bool::weighted(0.8), any::<u8>())
            .prop_map(|(task, right_waitpoint, key)| Op::Signal { task, right_waitpoint, key }),
        7 => prop_oneof![
            4 => 1u64..300,
            2 => 300u64..2_000,
            1 => 2_000u64..40_000,
        ]
        .prop_map(Op::Advance),
    ]
}
