//! The test-only defects of the `fault-injection` feature do what the simulator's
//! broken-engine tests rely on them to do: a defect that silently did nothing would let
//! those tests pass for the wrong reason.
#![cfg(feature = "fault-injection")]

use keel_engine::*;
use keel_engine_harness::*;

fn complete_with(h: &mut Harness, w: &str, fence: Fence, output: &str) -> Outputs {
    let output = Payload::from(output);
    h.worker(w, 1, WorkerCommand::Complete { fence, output })
}

/// Task "a" run by w1 until its lease expires (it keeps heartbeating but stops
/// renewing), then by w2; returns both fences.
fn two_attempts(leak: bool) -> (Harness, TaskId, Fence, Fence) {
    let mut h = Harness::new(config());
    h.engine.inject_faults(Faults {
        leak_stale_outputs: leak,
        ..Faults::default()
    });
    h.register("w1", 1, &[], 1).unwrap();
    h.register("w2", 1, &[], 1).unwrap();
    let (_, t) = h.submit(job("j", &["a"])).unwrap();
    let first = h.take("w1", 1);
    for at in [4_000, 8_000] {
        h.at(at).worker("w1", 1, WorkerCommand::Heartbeat);
        h.at(at).worker("w2", 1, WorkerCommand::Heartbeat);
    }
    h.tick(10_000);
    let second = h.take("w2", 1);
    assert_eq!(second.attempt, 2);
    (h, t, first, second)
}

fn output(h: &Harness, t: TaskId) -> Option<Payload> {
    h.engine.task_output(t).expect("task").output
}

#[test]
fn a_leaking_engine_lets_a_stale_completion_replace_a_committed_output() {
    let (mut h, t, first, second) = two_attempts(true);
    // Running under the second attempt: a stale completion leaks nothing yet.
    complete_with(&mut h, "w1", first, "stale");
    assert_eq!(output(&h, t), None);
    complete_with(&mut h, "w2", second, "won");
    // The winner's own duplicate is not stale, and changes nothing.
    complete_with(&mut h, "w2", second, "again");
    assert_eq!(output(&h, t), Some(Payload::from("won")));
    let late = complete_with(&mut h, "w1", first, "stale");
    assert!(matches!(rejection(&late), Rejection::StaleFence { .. }));
    assert_eq!(output(&h, t), Some(Payload::from("stale")), "the defect");
}

#[test]
fn a_sound_engine_keeps_the_committed_output() {
    let (mut h, t, first, second) = two_attempts(false);
    complete_with(&mut h, "w2", second, "won");
    complete_with(&mut h, "w1", first, "stale");
    assert_eq!(output(&h, t), Some(Payload::from("won")));
}

/// The injected tick panic strikes only a tick that fires a timer, from its time on:
/// the drivers' tests of naming a panicking tick rely on a quiet tick passing.
#[test]
fn the_injected_tick_panic_needs_a_timer_due() {
    let mut h = Harness::new(config());
    h.engine.inject_faults(Faults {
        panic_on_tick_from: Some(100),
        ..Faults::default()
    });
    let mut spec = JobSpec::new("j", vec![TaskSpec::new("a")]);
    spec.deadline_ms = Some(300);
    h.submit(spec).unwrap();
    assert_eq!(h.engine.next_wakeup(), Some(300));
    h.tick(250);
    let due = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.tick(300)));
    assert!(due.is_err(), "a tick firing the deadline at 300 panics");
}

/// With `fast_refill` a bucket of one token a second has a token again after half a
/// second, which a sound engine refuses: the simulator's broken-rates test relies on it.
#[test]
fn a_fast_refilling_engine_grants_at_twice_the_rate() {
    for (fast, granted_at_500) in [(false, 0), (true, 1)] {
        let mut cfg = config();
        let api = Rate {
            rate: 1,
            per_ms: 1_000,
            burst: 1,
        };
        cfg.rates.keys.insert("api".into(), api);
        let mut h = Harness::new(cfg);
        h.engine.inject_faults(Faults {
            fast_refill: fast,
            ..Faults::default()
        });
        h.register("w", 1, &[], 3).unwrap();
        let mut spec = job("j", &["a", "b", "c"]);
        for t in &mut spec.tasks {
            t.rate_key = Some("api".into());
        }
        h.submit(spec).unwrap();
        assert_eq!(h.request("w", 1, 1).len(), 1, "the burst");
        assert_eq!(h.at(499).request("w", 1, 1).len(), 0, "fast {fast}");
        let late = h.at(500).request("w", 1, 1).len();
        assert_eq!(late, granted_at_500, "fast {fast}");
    }
}

/// With `starve_retries` a retried task is never granted while first attempts still
/// are, in other queues: the simulator's broken-liveness test relies on exactly that.
#[test]
fn a_starving_engine_grants_first_attempts_only() {
    for starve in [false, true] {
        let mut h = Harness::new(config());
        h.engine.inject_faults(Faults {
            starve_retries: starve,
            ..Faults::default()
        });
        h.register("w", 1, &[], 2).unwrap();
        let (_, retried) = h.submit(job("j", &["a"])).unwrap();
        let fence = h.take("w", 1);
        h.fail("w", 1, fence, false);
        h.tick(2_000);
        assert_eq!(h.task(retried).status.label(), "queued", "starve {starve}");
        let grants = h.at(2_000).request("w", 1, 1);
        assert_eq!(grants.len(), usize::from(!starve), "starve {starve}");
        // In a queue of its own: the defect passes over a queue whose head is a retry.
        let mut other = job("k", &["b"]);
        other.tenant = "other".into();
        let (_, first) = h.submit(other).unwrap();
        if starve {
            // The credit left waiting goes to the new first attempt at once.
            assert_eq!(h.task(first).status.label(), "offered");
            assert_eq!(h.task(retried).status.label(), "queued");
        }
    }
}

/// With `recount_usage` a report already counted is counted again while its attempt
/// runs, and no more once it has ended: the simulator's broken-budgets test relies on
/// the first, and a sound engine never does either.
#[test]
fn a_recounting_engine_counts_a_resent_report_again_while_it_runs() {
    use crate::budgets::{budget, budgeted, limit, usage, used};
    for recount in [false, true] {
        let mut h = Harness::new(config());
        h.engine.inject_faults(Faults {
            recount_usage: recount,
            ..Faults::default()
        });
        h.register("w", 1, &[], 1).unwrap();
        let b = budget(&[("tokens", limit(None, Some(1_000)))], OnHard::Finish);
        h.submit(budgeted("j", &["a"], b)).unwrap();
        let f = h.take("w", 1);
        assert_eq!(used(&usage(&mut h, f, "b", "tokens", 60, "r1")).0, 60);
        let again = used(&usage(&mut h, f, "b", "tokens", 60, "r1")).0;
        assert_eq!(again, if recount { 120 } else { 60 }, "recount {recount}");
        h.complete("w", 1, f);
        let late = used(&usage(&mut h, f, "b", "tokens", 60, "r1"));
        assert_eq!(late, (again, true), "recount {recount}");
    }
}

/// With `signal_first_attempt_only` the attempt a signal resumed carries it, but a
/// retry after it does not: the simulator's broken-signals test relies on exactly that.
#[test]
fn a_forgetful_engine_hands_the_signal_to_the_resumed_attempt_only() {
    use crate::inputs::{signal, start, suspend};
    for defect in [false, true] {
        let mut h = Harness::new(config());
        h.engine.inject_faults(Faults {
            signal_first_attempt_only: defect,
            ..Faults::default()
        });
        h.register("w", 1, &[], 1).unwrap();
        let mut task = TaskSpec::new("t");
        task.retry.backoff_base_ms = 0;
        task.retry.backoff_max_ms = 0;
        let (_, t) = h.submit(JobSpec::new("wait", vec![task])).unwrap();
        let (fence, _, _) = start(&mut h, "w", t);
        suspend(&mut h, fence, None, SuspendTimeout::Fail);
        signal(&mut h, t, "k1", "approved");
        let (resumed, _, carried) = start(&mut h, "w", t);
        assert_eq!(carried, Some(Payload::from("approved")), "defect {defect}");
        h.fail("w", 1, resumed, false);
        let (retry, _, carried) = start(&mut h, "w", t);
        assert_eq!(retry.attempt, 2);
        let want = (!defect).then(|| Payload::from("approved"));
        assert_eq!(carried, want, "defect {defect}");
    }
}
