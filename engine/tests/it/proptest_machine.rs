//! Random operation sequences against the engine. Every input is derived from what the
//! engine said so far (grants and leases seen in its outputs, including long-dead ones),
//! so stale fences, foreign workers, old instances and lapsed grants come up as often as
//! the happy path. After every input the state must pass `check_invariants` and the
//! outputs must agree with an independent record of which lease is live; at the end a
//! snapshot, a replay of the input log, and a snapshot taken midway plus the inputs after
//! it must all rebuild the same state.

use keel_engine::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[path = "../machine/gen.rs"]
mod gen;
#[path = "../machine/harness.rs"]
mod harness;
#[path = "../machine/oracle.rs"]
mod oracle;

use gen::{op_strategy, Op};
use harness::Harness;

/// Short timeouts, a low blacklist threshold and a small loss budget, so expiry, loss,
/// blacklisting and loss-budget exhaustion all happen within a hundred operations.
fn config(seed: u64) -> Config {
    Config {
        seed,
        grant_ttl_ms: 400,
        lease_ttl_ms: 1_000,
        liveness_timeout_ms: 1_500,
        max_losses: 2,
        retention_ms: 5_000,
        blacklist: BlacklistPolicy {
            threshold: 2,
            window_ms: 3_000,
            cooldown_ms: 2_000,
        },
        tenants: TenantPolicy {
            default_cap: None,
            caps: BTreeMap::from([("b".to_string(), 1)]),
            weights: BTreeMap::from([("a".to_string(), 2)]),
        },
        rates: RatePolicy::default(),
        budgets: Default::default(),
        limits: Limits {
            max_tasks_per_job: 6,
            max_jobs_in_flight_per_tenant: 3,
            max_workers: 3,
            max_concurrency_per_worker: 4,
            max_signals_per_task: 2,
            ..Limits::default()
        },
    }
}

fn run(seed: u64, ops: &[Op], mid: prop::sample::Index) -> Result<(), TestCaseError> {
    let cfg = config(seed);
    let mut h = Harness::new(cfg.clone());
    let mid = mid.index(ops.len() + 1);
    let mut mid_state = None;
    for (i, op) in ops.iter().enumerate() {
        if i == mid {
            mid_state = Some((h.engine.snapshot(), h.log.len()));
        }
        if let Some((at, input)) = h.input(op) {
            h.apply(at, input)?;
        }
    }
    let (mid_snap, mid_len) = mid_state.unwrap_or_else(|| (h.engine.snapshot(), h.log.len()));
    let digest = h.engine.digest();

    let mut restored = Harness::restore(&h.engine.snapshot())?;
    prop_assert_eq!(restored.digest(), digest, "restore changed the digest");
    // The restored engine must also behave the same from here on.
    let later = h.now + 100_000;
    prop_assert_eq!(
        restored.apply(later, Input::Tick),
        h.engine.clone().apply(later, Input::Tick),
        "restored engine diverged on the next tick"
    );

    let mut replay = Engine::new(cfg);
    for (i, (at, input)) in h.log.iter().enumerate() {
        let out = replay.apply(*at, input.clone());
        prop_assert_eq!(&out, &h.outs[i], "replay diverged at input {}", i);
    }
    prop_assert_eq!(replay.digest(), digest, "replay gave another digest");

    let mut resumed = Harness::restore(&mid_snap)?;
    for (i, (at, input)) in h.log.iter().enumerate().skip(mid_len) {
        let out = resumed.apply(*at, input.clone());
        prop_assert_eq!(
            &out,
            &h.outs[i],
            "snapshot + replay diverged at input {}",
            i
        );
    }
    prop_assert_eq!(
        resumed.digest(),
        digest,
        "snapshot + replay gave another digest"
    );
    Ok(())
}

proptest! {
    // proptest's default of 256 cases; PROPTEST_CASES overrides it.
    #![proptest_config(ProptestConfig::default())]
    #[test]
    fn random_operations_keep_every_invariant(
        seed in any::<u64>(),
        ops in prop::collection::vec(op_strategy(), 1..300),
        mid in any::<prop::sample::Index>(),
    ) {
        run(seed, &ops, mid)?;
    }
}

/// The generator must actually reach the paths the properties are about; a strategy
/// that never completes, revokes, blacklists or suspends would pass vacuously.
#[test]
fn generated_runs_reach_the_interesting_paths() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op_strategy(), 120..160);
    let mut seen = BTreeSet::new();
    for seed in 0..256 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut h = Harness::new(config(seed));
        for op in &ops {
            if let Some((at, input)) = h.input(op) {
                h.apply(at, input).unwrap();
            }
        }
        for out in &h.outs {
            if let Some(reply) = &out.reply {
                seen.insert(match reply {
                    Ok(Accepted::Completed {
                        duplicate: false, ..
                    }) => "completed".to_string(),
                    Ok(Accepted::Signalled { resumed: true, .. }) => "resumed".to_string(),
                    Ok(Accepted::Emitted {
                        duplicate, next, ..
                    }) if *next > 0 => {
                        format!("emitted duplicate={duplicate}")
                    }
                    Ok(_) => String::new(),
                    Err(r) => r.code().to_string(),
                });
            }
            for e in &out.effects {
                let name = format!("{e:?}");
                seen.insert(name[..name.find([' ', '{']).unwrap_or(name.len())].to_string());
            }
        }
    }
    for want in [
        "completed",
        "resumed",
        "stale_fence",
        "not_lease_holder",
        "stale_instance",
        "worker_lost",
        "grant_not_yours",
        "unknown_grant",
        "job_name_conflict",
        "invalid_job",
        "LeaseRevoked",
        "GrantWithdrawn",
        "TaskRequeued",
        "TaskBlocked",
        "TaskUnblocked",
        "WorkerLost",
        "WorkerBlacklisted",
        "WorkerReadmitted",
        "WorkerDrained",
        "TaskSuspended",
        "JobFinished",
        "emitted duplicate=false",
        "stream_gap",
    ] {
        assert!(
            seen.contains(want),
            "no generated run reached {want}: {seen:?}"
        );
    }
}

/// The oracle must notice an engine that accepts completions whatever fence they carry:
/// that engine keeps a consistent state, so only the oracle can tell.
#[cfg(feature = "fault-injection")]
#[test]
fn the_oracle_catches_an_engine_that_ignores_fencing() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op_strategy(), 120..160);
    let mut caught = 0;
    for seed in 0..256 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut h = Harness::new(config(seed));
        h.engine.inject_faults(Faults {
            ignore_fencing: true,
            ..Faults::default()
        });
        for op in &ops {
            let Some((at, input)) = h.input(op) else {
                continue;
            };
            if let Err(e) = h.apply(at, input) {
                let msg = e.to_string();
                assert!(
                    !msg.contains("invariant broken"),
                    "the state checker fired first: {msg}"
                );
                caught += 1;
                break;
            }
        }
    }
    // Stale completions land on a running task in a few percent of generated runs.
    assert!(
        caught >= 3,
        "only {caught} of 256 runs caught completions on stale fences"
    );
}
