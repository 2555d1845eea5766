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
