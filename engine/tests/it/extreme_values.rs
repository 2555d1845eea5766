//! The `extreme_values` fuzz target's checks, run without the fuzzer: cases drawn by
//! proptest with every numeric field of the configuration, the job spec and the
//! commands taken from the edges of its type as often as from ordinary values, and
//! every input of the checked-in corpus (`fuzz/corpus/extreme_values/`).

// Tests read and write the corpus; the engine itself does no I/O.
#[allow(clippy::disallowed_methods)]
#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "../extreme/mod.rs"]
mod extreme;
#[path = "extreme_strategies.rs"]
mod strategies;

use extreme::*;
use keel_engine::{Accepted, Rejection};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use strategies::case;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn extreme_values_never_panic_and_keep_every_property(case in case()) {
        run(&case);
    }
}

/// Every checked-in input must still decode as a `Case` (a stale corpus would otherwise
/// pass by being skipped).
#[test]
fn every_corpus_input_keeps_every_property() {
    corpus_replay::replay("extreme_values", 10, |bytes| {
        let case: Case = postcard::from_bytes(bytes).expect("the corpus file decodes");
        run(&case);
    });
}

/// The fuzz target's entry point skips bytes that are not a case (as libFuzzer skips an
/// undecodable input) and runs the ones that are.
#[test]
fn the_fuzz_entry_skips_undecodable_bytes_and_runs_cases() {
    for garbage in [&[][..], &[0xff; 16][..], &[1, 2, 3][..]] {
        run_bytes(garbage);
    }
    run_bytes(&encode(&retry_overflow_case()));
}

/// The reported job file as a case: backoff and cap at `u64::MAX`, full jitter, a
/// failure (where `span + 1` overflowed), then a restart and the replay of the log,
/// as the coordinator's recovery does.
pub fn retry_overflow_case() -> Case {
    let config = ConfigDraw {
        seed: U64::Zero,
        grant_ttl_ms: U64::Any(5_000),
        lease_ttl_ms: U64::Any(30_000),
        liveness_timeout_ms: U64::Max,
        max_losses: U32::Any(5),
        retention_ms: U64::Any(3_600_000),
        blacklist: (U32::Zero, U64::Zero, U64::Zero),
        default_cap: None,
        caps: vec![],
        weights: vec![],
        limits: [U32::Any(16); 17],
        max_stored_bytes: U64::Any(1 << 20),
        rates: vec![],
    };
    let task = TaskDraw {
        payload: Len::Zero,
        caps: 0,
        deps: vec![],
        group: Group::AllOf,
        cancel_on_unsatisfied: false,
        max_attempts: U32::Any(3),
        backoff_base_ms: U64::Max,
        backoff_factor: U32::Two,
        backoff_max_ms: U64::Max,
        jitter_pct: 100,
        attempt_timeout_ms: None,
        delay_ms: U64::Zero,
        priority: None,
        allow_failure: false,
        estimated_ms: None,
        rate_key: None,
        stream: None,
    };
    let job = JobDraw {
        name: 0,
        tenant: 0,
        lane: 0,
        priority: I32::Zero,
        deadline_ms: None,
        max_concurrency: None,
        tasks: vec![task],
    };
    let steps = vec![
        Step::Register {
            worker: 0,
            instance: Some(U64::One),
            caps: 0,
            lanes: 0,
            max_concurrency: U32::One,
        },
        Step::Submit(job),
        Step::RequestWork {
            worker: 0,
            credits: U32::One,
        },
        Step::Accept { grant: 0 },
        Step::Fail {
            lease: 0,
            permanent: false,
            error: Len::One,
        },
        Step::Restart,
        Step::SetClock { at: U64::Max },
    ];
    Case { config, steps }
}

#[test]
fn the_reported_retry_overflow_runs_clean() {
    run(&retry_overflow_case());
}

/// Writes the seed corpus: the reported case and cases drawn by the strategy above.
/// `cargo test -p keel-engine --test it -- --ignored write_seed_corpus`
#[test]
#[ignore = "writes fuzz/corpus/extreme_values; run by hand after changing Case"]
#[allow(clippy::disallowed_methods)]
fn write_seed_corpus() {
    let dir = corpus_replay::fuzz_dir().join("corpus/extreme_values");
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let write = |name: &str, case: &Case| {
        std::fs::write(dir.join(name), encode(case)).expect("corpus file written");
    };
    write("retry-backoff-u64-max", &retry_overflow_case());
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = case();
    for i in 0..24 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        write(&format!("seed-{i:02}"), &case);
    }
}

/// The generator is only as good as what it reaches: over a fixed sample of cases,
/// every kind of acceptance comes up, and so does a lease at the end of time.
#[test]
fn the_generator_reaches_every_outcome() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = case();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..96 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        drive(&case, |_, out| {
            let kind = match &out.reply {
                Some(Ok(a)) => format!("{a:?}"),
                Some(Err(Rejection::InvalidJob(e))) => format!("invalid_job {e:?}"),
                Some(Err(r)) => r.code().to_string(),
                None => String::new(),
            };
            let kind = kind.split(['{', '(']).next().unwrap_or_default().trim();
            seen.insert(kind.to_string());
            if let Some(Ok(Accepted::LeaseStarted { expires_at, .. })) = &out.reply {
                if *expires_at > u64::MAX - u64::from(u32::MAX) {
                    seen.insert("lease at the end of time".into());
                }
            }
            if let Some(Ok(Accepted::Failed {
                retry_at: Some(_), ..
            })) = &out.reply
            {
                seen.insert("retry".into());
            }
            for e in &out.effects {
                budget_outcome(e).map(|k| seen.insert(k.to_string()));
            }
        });
    }
    for kind in [
        "JobSubmitted",
        "LeaseStarted",
        "Renewed",
        "Completed",
        "Failed",
        "retry",
        "Suspended",
        "Signalled",
        "JobCancelled",
        "limit_reached",
        "invalid_job BadRetry",
        "stale_fence",
        "lease at the end of time",
        "UsageRecorded",
        "unknown_budget",
        "invalid_usage",
        "invalid_job InvalidBudget",
        "job budget hard limit",
        "tenant budget hard limit",
        "ended by its budget",
        "Emitted",
        "stream_gap",
        "invalid_job BadField",
    ] {
        assert!(seen.contains(kind), "no case reached {kind}: {seen:?}");
    }
}

/// What a budget effect shows the generator reached, if anything.
fn budget_outcome(e: &keel_engine::Effect) -> Option<&'static str> {
    use keel_engine::{BudgetOwner, Effect, EndReason, LimitKind, TaskOutcome};
    match e {
        Effect::BudgetLimitReached {
            kind: LimitKind::Hard,
            owner,
            ..
        } => Some(match owner {
            BudgetOwner::Job(_) => "job budget hard limit",
            BudgetOwner::Tenant(_) => "tenant budget hard limit",
        }),
        Effect::TaskFinished {
            outcome:
                TaskOutcome::Cancelled {
                    reason: EndReason::BudgetExhausted,
                },
            ..
        } => Some("ended by its budget"),
        _ => None,
    }
}
