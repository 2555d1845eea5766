//! The `extreme_values` fuzz target's checks, run without the fuzzer: cases drawn by
//! proptest with every numeric field of the configuration, the job spec and the
//! commands taken from the edges of its type as often as from ordinary values, and
//! every input of the checked-in corpus (`fuzz/corpus/extreme_values/`).

// Tests read and write the corpus; the engine itself does no I/O.
#[path = "extreme_cases.rs"]
mod cases;
#[allow(clippy::disallowed_methods)]
#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;
#[path = "../extreme/mod.rs"]
mod extreme;
#[path = "extreme_strategies.rs"]
mod strategies;

use cases::{retry_overflow_case, streaming_extremes_case};
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

#[test]
fn the_reported_retry_overflow_runs_clean() {
    run(&retry_overflow_case());
}

/// A streaming edge at its extremes keeps every property, and the case reaches what it
/// was written for: frames emitted, an acknowledgement taken, one past the producer's
/// end refused.
#[test]
fn a_streaming_edge_at_its_extremes_runs_clean() {
    let case = streaming_extremes_case();
    run(&case);
    let mut seen = std::collections::BTreeSet::new();
    drive(&case, |_, out| {
        seen.insert(match &out.reply {
            Some(Ok(a)) => format!("{a:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string(),
            Some(Err(r)) => r.code().to_string(),
            None => String::new(),
        });
    });
    for kind in [
        "JobSubmitted",
        "LeaseStarted",
        "Emitted",
        "Acked",
        "ack_past_end",
    ] {
        assert!(
            seen.contains(kind),
            "the case never reached {kind}: {seen:?}"
        );
    }
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
    write("stream-edge-extremes", &streaming_extremes_case());
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
        "invalid_job BadStreamEdge",
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
