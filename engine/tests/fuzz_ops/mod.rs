//! The `engine_ops` fuzz target: an arbitrary sequence of client and worker commands and
//! time jumps applied to one engine. Shared with the in-tree tests
//! (`tests/it/fuzz_sequences.rs`) through `#[path]`, so both run exactly the same code.
//!
//! The fuzz crate compiles this file too, and only there derives `Arbitrary`: the
//! in-tree tests are built with `cfg(test)`, the fuzz targets are not, so keel-engine
//! needs no `arbitrary` dependency. Ops name workers, jobs, grants and leases by small
//! indices into what the run has seen, so most commands reach real state.
//!
//! After every step: invariants hold, and a refused command that touched nothing it may
//! touch left the state exactly as it was. At the end: replaying the input log from
//! scratch gives the same digest at every step, and so does restoring a snapshot taken
//! half way and replaying the rest.

mod seen;

use keel_engine::*;
use seen::Seen;
use serde::{Deserialize, Serialize};

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Case {
    pub seed: u64,
    pub ops: Vec<Op>,
}

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    Register {
        worker: u8,
        instance: Inst,
        caps: u8,
        lanes: u8,
        max_concurrency: u8,
    },
    Heartbeat {
        worker: u8,
        instance: Inst,
    },
    RequestWork {
        worker: u8,
        credits: u8,
    },
    Drain {
        worker: u8,
    },
    Deregister {
        worker: u8,
    },
    Accept {
        grant: u8,
        sender: Sender,
    },
    Release {
        grant: u8,
        sender: Sender,
    },
    Fenced {
        lease: u8,
        sender: Sender,
        stale_epoch: bool,
        cmd: Fenced,
    },
    Submit(JobOp),
    Cancel {
        job: u8,
    },
    Signal {
        task: u8,
        waitpoint: u8,
        key: u8,
        payload: u8,
    },
    Advance {
        ms: u16,
    },
    Jump {
        ms: u32,
    },
    /// Replace the engine by a restore of its own snapshot.
    Restart,
}

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Inst {
    Current,
    Next,
    Older,
}

/// Who sends a command about a grant or lease.
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) enum Sender {
    /// The worker and instance it was issued to.
    Owner,
    /// The same worker under an older instance.
    OwnerOlder,
    Other(u8),
}

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Fenced {
    Renew,
    Complete {
        output: u8,
    },
    Fail {
        permanent: bool,
        error: u8,
    },
    Suspend {
        waitpoint: u8,
        timeout_ms: Option<u16>,
        resume: bool,
    },
}

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JobOp {
    pub name: u8,
    pub tenant: u8,
    pub lane: u8,
    pub priority: i8,
    pub deadline_ms: Option<u16>,
    pub max_concurrency: Option<u8>,
    pub tasks: Vec<TaskOp>,
}

#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TaskOp {
    pub key: u8,
    pub caps: u8,
    pub deps: Vec<u8>,
    /// 0 all of, 1 any of, otherwise a quorum of `group % 4`.
    pub group: u8,
    pub cancel_on_unsatisfied: bool,
    pub max_attempts: u8,
    pub backoff_ms: u16,
    pub jitter_pct: u8,
    pub attempt_timeout_ms: Option<u16>,
    pub delay_ms: u16,
    pub priority: Option<i8>,
    pub allow_failure: bool,
    pub payload: u8,
}

/// Limits small enough that short sequences reach every refusal.
pub(crate) fn config(seed: u64) -> Config {
    let mut tenants = TenantPolicy {
        default_cap: Some(3),
        ..TenantPolicy::default()
    };
    tenants.weights.insert("t1".into(), 2);
    Config {
        seed,
        grant_ttl_ms: Config::MIN_GRANT_TTL_MS,
        lease_ttl_ms: Config::MIN_LEASE_TTL_MS,
        liveness_timeout_ms: Config::MIN_LIVENESS_TIMEOUT_MS,
        max_losses: 2,
        retention_ms: 1_000,
        blacklist: BlacklistPolicy {
            threshold: 2,
            window_ms: 500,
            cooldown_ms: 300,
        },
        tenants,
        // Tenant t1 is paced, so short sequences meet a throttled queue and its refill.
        rates: RatePolicy {
            tenants: std::collections::BTreeMap::from([(
                "t1".to_string(),
                Rate {
                    rate: 1,
                    per_ms: 200,
                    burst: 2,
                },
            )]),
            ..RatePolicy::default()
        },
        // Tenant t2 has an attempts budget that resets, so sequences meet a stopped
        // tenant, its revoked attempts and its reset.
        budgets: std::collections::BTreeMap::from([(
            "t2".to_string(),
            std::collections::BTreeMap::from([(
                "attempts".to_string(),
                BudgetSpec {
                    limits: std::collections::BTreeMap::from([(
                        ATTEMPTS.to_string(),
                        DimensionLimit {
                            soft: Some(2),
                            hard: Some(4),
                        },
                    )]),
                    on_hard: OnHard::Revoke,
                    reset_every_ms: Some(1_000),
                },
            )]),
        )]),
        limits: Limits {
            max_tasks_per_job: 6,
            max_deps_per_task: 3,
            max_dag_depth: 4,
            max_payload_bytes: 32,
            max_caps_per_worker: 3,
            max_caps_per_task: 2,
            max_cap_token_len: 8,
            max_name_len: 16,
            max_jobs_in_flight_per_tenant: 2,
            max_workers: 3,
            max_concurrency_per_worker: 4,
            max_pending_grants_per_worker: 5,
            max_lanes_per_worker: 2,
            max_signals_per_task: 2,
            max_live_jobs: 6,
            max_live_tasks: 16,
            max_tenants: 2,
            max_stored_bytes: 160,
            max_input_bytes_per_task: 48,
            max_output_bytes_per_job: 64,
            max_stream_bytes_per_job: 64,
        },
    }
}

/// Whether a refusal of `input` must leave the state untouched: client commands and
/// registrations are checked before anything changes, and so is the sender of every
/// other worker command (a known, live, current instance is marked as seen first).
fn refusal_is_pure(engine: &Engine, input: &Input) -> bool {
    match input {
        Input::Tick | Input::Client(_) | Input::Configure(_) => true,
        Input::Worker {
            command: WorkerCommand::Register { .. },
            ..
        } => true,
        Input::Worker {
            worker, instance, ..
        } => !engine
            .workers()
            .iter()
            .any(|v| v.id == *worker && v.instance == *instance && v.status != "lost"),
    }
}

/// Runs the case; panics with a description of the first broken property.
pub(crate) fn run(case: &Case) {
    let mut engine = Engine::new(config(case.seed));
    let mut seen = Seen::default();
    let mut now: Time = 0;
    let mut log: Vec<(Time, Input)> = Vec::new();
    let mut digests = Vec::new();
    let mut halfway: Option<(usize, Vec<u8>)> = None;
    let mut step = |engine: &mut Engine, log: &mut Vec<(Time, Input)>, now, input: Input| {
        let out = engine.apply(now, input.clone());
        log.push((now, input));
        if let Err(v) = engine.check_invariants() {
            panic!(
                "invariant broken after input {}: {v}\n{:?}",
                log.len(),
                log.last()
            );
        }
        digests.push(engine.digest());
        out
    };
    for (i, op) in case.ops.iter().enumerate() {
        if i == case.ops.len() / 2 {
            halfway = Some((log.len(), engine.snapshot()));
        }
        match op {
            Op::Advance { ms } => now += u64::from(*ms),
            Op::Jump { ms } => now += u64::from(*ms),
            Op::Restart => {
                let restored = Engine::restore(&engine.snapshot()).expect("own snapshot restores");
                assert_eq!(
                    restored.digest(),
                    engine.digest(),
                    "restore changed the digest"
                );
                engine = restored;
            }
            _ => {}
        }
        let Some(input) = seen.input(op) else {
            step(&mut engine, &mut log, now, Input::Tick);
            continue;
        };
        step(&mut engine, &mut log, now, Input::Tick);
        let before = engine.digest();
        let pure = refusal_is_pure(&engine, &input);
        let out = step(&mut engine, &mut log, now, input.clone());
        if let (Some(Err(r)), true) = (&out.reply, pure) {
            assert_eq!(
                engine.digest(),
                before,
                "refusal {r:?} changed the state: {input:?}"
            );
            assert!(
                out.effects.is_empty(),
                "refusal {r:?} had effects {:?}",
                out.effects
            );
        }
        seen.learn(&input, &out);
    }
    replay_matches(case.seed, &log, &digests, 0, None);
    if let Some((at, snapshot)) = halfway {
        replay_matches(case.seed, &log, &digests, at, Some(&snapshot));
    }
}

/// Replays `log[from..]` on a fresh engine or a restored snapshot and compares the
/// digest after every input with the one the run recorded.
fn replay_matches(
    seed: u64,
    log: &[(Time, Input)],
    digests: &[Digest],
    from: usize,
    snapshot: Option<&[u8]>,
) {
    let mut engine = match snapshot {
        Some(bytes) => Engine::restore(bytes).expect("own snapshot restores"),
        None => Engine::new(config(seed)),
    };
    for (i, (now, input)) in log.iter().enumerate().skip(from) {
        engine.apply(*now, input.clone());
        assert_eq!(
            engine.digest(),
            digests[i],
            "replay from {from} diverges at input {i}: {input:?}"
        );
    }
}
