//! The `extreme_values` fuzz target: an engine configuration and a run of client and
//! worker commands in which every number (durations, deadlines, delays, timeouts,
//! backoff factors, counts, priorities, quorums, limits, credits, concurrency,
//! instance ids, tenant caps and weights, clock jumps) is drawn from the edges of its
//! type: 0, 1, 2, `u32::MAX` and `u32::MAX - 1`, `u64::MAX` and `u64::MAX - 1`,
//! `i32::MIN`, or an ordinary value. Shared with the in-tree tests
//! (`tests/it/extreme_values.rs`) through `#[path]`, so both run exactly the same code.
//!
//! A case is plain data, encoded with postcard: the fuzz target decodes its input
//! bytes as a `Case` (one byte picks an edge), `cargo test` decodes the checked-in
//! corpus the same way and also runs cases drawn by proptest.
//!
//! Nothing may panic. After every step the invariants hold; a snapshot restores to the
//! same digest when the configuration is valid, and is refused with the same
//! `ConfigError` as `Config::validate` when it is not; a snapshot with one byte
//! replaced restores or is refused, never panics, and an engine restored from it
//! survives further inputs. At the end, replaying the input log from scratch gives the
//! digest recorded after every step.

mod budget_draw;
pub use budget_draw::BudgetDraw;
mod draw;

use draw::Seen;
use keel_engine::*;
use serde::{Deserialize, Serialize};

/// A `u64` from the edges of its range, or any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum U64 {
    Zero,
    One,
    Two,
    U32Max,
    U32MaxLess1,
    MaxLess1,
    Max,
    Any(u64),
}

impl U64 {
    pub fn get(self) -> u64 {
        match self {
            U64::Zero => 0,
            U64::One => 1,
            U64::Two => 2,
            U64::U32Max => u64::from(u32::MAX),
            U64::U32MaxLess1 => u64::from(u32::MAX - 1),
            U64::MaxLess1 => u64::MAX - 1,
            U64::Max => u64::MAX,
            U64::Any(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum U32 {
    Zero,
    One,
    Two,
    MaxLess1,
    Max,
    Any(u32),
}

impl U32 {
    pub fn get(self) -> u32 {
        match self {
            U32::Zero => 0,
            U32::One => 1,
            U32::Two => 2,
            U32::MaxLess1 => u32::MAX - 1,
            U32::Max => u32::MAX,
            U32::Any(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum I32 {
    Zero,
    One,
    MinusOne,
    Min,
    MinPlus1,
    Max,
    Any(i32),
}

impl I32 {
    pub fn get(self) -> i32 {
        match self {
            I32::Zero => 0,
            I32::One => 1,
            I32::MinusOne => -1,
            I32::Min => i32::MIN,
            I32::MinPlus1 => i32::MIN + 1,
            I32::Max => i32::MAX,
            I32::Any(v) => v,
        }
    }
}

/// A byte length, relative to the configured payload limit so both sides of it come
/// up; capped so a huge limit does not allocate gigabytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Len {
    Zero,
    One,
    AtLimit,
    OverLimit,
    Any(u16),
}

/// Longest payload a case allocates.
pub(crate) const MAX_LEN: u64 = 1 << 16;

impl Len {
    pub fn get(self, limit: u32) -> usize {
        let limit = u64::from(limit).min(MAX_LEN);
        (match self {
            Len::Zero => 0,
            Len::One => 1,
            Len::AtLimit => limit,
            Len::OverLimit => limit + 1,
            Len::Any(n) => u64::from(n),
        }) as usize
    }
}

/// Every field of `Config`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigDraw {
    pub seed: U64,
    pub grant_ttl_ms: U64,
    pub lease_ttl_ms: U64,
    pub liveness_timeout_ms: U64,
    pub max_losses: U32,
    pub retention_ms: U64,
    pub blacklist: (U32, U64, U64),
    pub default_cap: Option<U32>,
    /// By index into the tenant names of `draw::TENANTS`.
    pub caps: Vec<(u8, U32)>,
    pub weights: Vec<(u8, U32)>,
    /// The `u32` fields of `Limits` in declaration order.
    pub limits: [U32; 17],
    pub max_stored_bytes: U64,
    /// Token buckets: scope (tenant, lane, key), name index, rate, period, burst.
    #[serde(default)]
    pub rates: Vec<(u8, u8, U32, U32, U32)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Group {
    AllOf,
    AnyOf,
    Quorum(U32),
}

/// Every field of `TaskSpec`, `RetryPolicy` and `DepGroup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDraw {
    pub payload: Len,
    pub caps: u8,
    /// Upstream tasks by index into the job's tasks.
    pub deps: Vec<u8>,
    pub group: Group,
    pub cancel_on_unsatisfied: bool,
    pub max_attempts: U32,
    pub backoff_base_ms: U64,
    pub backoff_factor: U32,
    pub backoff_max_ms: U64,
    pub jitter_pct: u8,
    pub attempt_timeout_ms: Option<U64>,
    pub delay_ms: U64,
    pub priority: Option<I32>,
    pub allow_failure: bool,
    pub estimated_ms: Option<U64>,
    /// By index into `draw::RATE_KEYS`.
    #[serde(default)]
    pub rate_key: Option<u8>,
    /// Frames a bounded stream keeps; `None` keeps every frame.
    #[serde(default)]
    pub stream: Option<U32>,
}

/// Every field of `JobSpec`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobDraw {
    pub name: u8,
    pub tenant: u8,
    pub lane: u8,
    pub priority: I32,
    pub deadline_ms: Option<U64>,
    pub max_concurrency: Option<U32>,
    pub tasks: Vec<TaskDraw>,
}

/// One step. Workers are named by index into `draw::WORKERS`; grants, leases, jobs and
/// suspended tasks by how recently the run saw them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Step {
    Register {
        worker: u8,
        /// `None`: the instance after the newest the run saw for this worker.
        instance: Option<U64>,
        caps: u8,
        lanes: u8,
        max_concurrency: U32,
    },
    Heartbeat {
        worker: u8,
    },
    RequestWork {
        worker: u8,
        credits: U32,
    },
    /// A work request for one task, the acceptance of the offer it brings, then what
    /// the worker does with the lease.
    Take {
        worker: u8,
        then: Then,
    },
    Accept {
        grant: u8,
    },
    Release {
        grant: u8,
    },
    Renew {
        lease: u8,
    },
    Complete {
        lease: u8,
        output: Len,
    },
    Fail {
        lease: u8,
        permanent: bool,
        error: Len,
    },
    Suspend {
        lease: u8,
        timeout_ms: Option<U64>,
        resume: bool,
    },
    /// Emits frames on a recent lease, the first at position `from` of its attempt.
    Emit {
        lease: u8,
        from: U64,
        frames: Vec<Len>,
    },
    Signal {
        task: u8,
        key: u8,
        payload: Len,
    },
    Submit(JobDraw),
    Cancel {
        job: u8,
    },
    Drain {
        worker: u8,
    },
    Deregister {
        worker: u8,
    },
    /// Moves the clock forward, saturating at `u64::MAX`.
    Advance {
        ms: U64,
    },
    /// Sets the clock, possibly back (the engine then keeps its own).
    SetClock {
        at: U64,
    },
    /// Replaces the engine by a restore of its own snapshot.
    Restart,
    /// Restores a copy of the snapshot with byte `at` (modulo its length) replaced.
    Corrupt {
        at: U32,
        byte: u8,
    },
    /// Adds schedule `s<name % 3>` running `job`: on cron expression `cron` (an index
    /// into a fixed list, some in a zone with daylight saving) or every `every` ms, with
    /// the overlap and misfire policies `overlap % 3` and `misfire % 3`.
    AddSchedule {
        name: u8,
        job: JobDraw,
        every: U64,
        cron: Option<u8>,
        overlap: u8,
        misfire: u8,
        catch_up: U32,
        grace_ms: U64,
    },
    /// Pauses, resumes or deletes (`change % 3`) schedule `s<name % 3>`.
    ChangeSchedule {
        name: u8,
        change: u8,
    },
    /// Submits `job` with budgets, by name index.
    SubmitBudgeted {
        job: JobDraw,
        budgets: Vec<(u8, BudgetDraw)>,
    },
    /// Reports usage on a recent lease: budget and dimension by index (some name
    /// nothing declared), dedup key `k<key % 4>`.
    ReportUsage {
        lease: u8,
        budget: u8,
        dimension: u8,
        amount: U64,
        key: u8,
    },
    /// Applies the run's configuration with tenant budgets (tenant index, name index).
    TenantBudgets {
        budgets: Vec<(u8, u8, BudgetDraw)>,
    },
    /// Submits `job` with streaming edges between its tasks.
    SubmitStreaming {
        job: JobDraw,
        edges: Vec<EdgeDraw>,
    },
    /// Acknowledges `cursor` on the edge from task `t<from % 6>`, on a recent lease.
    Ack {
        lease: u8,
        from: u8,
        cursor: U64,
    },
    /// Reads at most `limit` frames of the edge from task `t<from % 6>` into a recent
    /// lease's task, from `cursor` (the acknowledged one when `None`).
    ReadEdge {
        lease: u8,
        from: u8,
        cursor: Option<U64>,
        limit: U32,
    },
}

/// A streaming edge into task `consumer` from task `producer` (indexes into the job's
/// tasks), with policy `policy % 4` (fifo, bounded, newest, broadcast); a bounded one
/// holds `capacity` frames and meets a full edge by `on_full % 3` (block, drop the
/// oldest, error).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EdgeDraw {
    pub consumer: u8,
    pub producer: u8,
    pub policy: u8,
    pub capacity: U32,
    pub on_full: u8,
}

/// What a worker does with a lease it just took.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Then {
    Hold,
    Complete(Len),
    Fail {
        permanent: bool,
        error: Len,
    },
    Suspend {
        timeout_ms: Option<U64>,
        resume: bool,
    },
    /// Reports usage of budget and dimension (by index) on the lease, key `k0`.
    Report {
        budget: u8,
        dimension: u8,
        amount: U64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    pub config: ConfigDraw,
    pub steps: Vec<Step>,
}

/// Decodes fuzz input bytes as a case and runs it; bytes that do not decode are
/// skipped, as libFuzzer does with an undecodable input.
pub(crate) fn run_bytes(data: &[u8]) {
    if let Ok(case) = postcard::from_bytes::<Case>(data) {
        run(&case);
    }
}

pub(crate) fn encode(case: &Case) -> Vec<u8> {
    postcard::to_allocvec(case).expect("a case encodes")
}

/// Runs the case; panics with a description of the first broken property.
pub(crate) fn run(case: &Case) {
    drive(case, |_, _| {});
}

/// Runs the case, showing `observe` every input and its outputs.
pub(crate) fn drive(case: &Case, mut observe: impl FnMut(&Input, &Outputs)) {
    let config = draw::config(&case.config);
    let valid = config.validate();
    let mut engine = Engine::new(config.clone());
    let mut seen = Seen::new(config.limits.max_payload_bytes);
    let mut now: Time = 0;
    let mut log: Vec<(Time, Input)> = Vec::new();
    let mut digests: Vec<Digest> = Vec::new();
    for step in &case.steps {
        match step {
            Step::Advance { ms } => now = now.saturating_add(ms.get()),
            Step::SetClock { at } => now = at.get(),
            Step::Restart => engine = restart(&engine, &valid),
            Step::Corrupt { at, byte } => corrupt(&engine, at.get(), *byte, now),
            _ => {}
        }
        let first = match step {
            Step::TenantBudgets { budgets } => Some(Input::Configure(Box::new(
                budget_draw::configured(&config, budgets, &draw::TENANTS),
            ))),
            _ => seen.input(step),
        };
        if let Step::ReadEdge { .. } = step {
            seen.read_edge(&engine, step);
        }
        let mut next = Some(first.unwrap_or(Input::Tick));
        while let Some(input) = next.take() {
            let out = engine.apply(now, input.clone());
            if let Err(v) = engine.check_invariants() {
                panic!("invariant broken after {step:?} as {input:?}: {v}");
            }
            observe(&input, &out);
            seen.learn(&input, &out);
            if let Step::Take { then, .. } = step {
                next = seen.follow_up(then, &input, &out);
            }
            log.push((now, input));
            digests.push(engine.digest());
        }
    }
    let mut replay = Engine::new(config);
    for (i, (now, input)) in log.iter().enumerate() {
        replay.apply(*now, input.clone());
        assert_eq!(replay.digest(), digests[i], "replay diverges at {input:?}");
    }
}

/// A restore of the engine's own snapshot: the same digest, or the refusal
/// `Config::validate` gives (the run then goes on with the engine it has).
fn restart(engine: &Engine, valid: &Result<(), ConfigError>) -> Engine {
    match (Engine::restore(&engine.snapshot()), valid) {
        (Ok(restored), Ok(())) => {
            assert_eq!(
                restored.digest(),
                engine.digest(),
                "restore changed the state"
            );
            restored
        }
        (Err(RestoreError::Config(e)), Err(expected)) => {
            assert_eq!(&e, expected, "restore refused another field");
            engine.clone()
        }
        (other, _) => panic!(
            "restore of an engine with config {valid:?} answered {:?}",
            other.map(|e| e.digest())
        ),
    }
}

/// A snapshot with one byte replaced restores or is refused; restored, it keeps its
/// invariants through a clock jump, work requests and cancellations.
fn corrupt(engine: &Engine, at: u32, byte: u8, now: Time) {
    let mut bytes = engine.snapshot();
    let i = at as usize % bytes.len();
    bytes[i] = byte;
    let Ok(mut hostile) = Engine::restore(&bytes) else {
        return;
    };
    let workers: Vec<(WorkerId, InstanceId)> = hostile
        .workers()
        .iter()
        .map(|w| (w.id.clone(), w.instance))
        .collect();
    let jobs: Vec<JobId> = hostile.jobs().iter().map(|j| j.id).collect();
    let mut inputs = vec![(now, Input::Tick)];
    for (w, inst) in &workers {
        let ask = WorkerCommand::RequestWork { credits: 2 };
        inputs.push((now, Input::worker(w, *inst, ask)));
    }
    inputs.extend(
        jobs.iter()
            .map(|&job| (now, Input::Client(ClientCommand::CancelJob { job }))),
    );
    inputs.push((Time::MAX, Input::Tick));
    for (t, input) in inputs {
        hostile.apply(t, input.clone());
        if let Err(v) = hostile.check_invariants() {
            panic!("a snapshot with byte {i} set to {byte} restored, then {input:?} broke: {v}");
        }
    }
}
