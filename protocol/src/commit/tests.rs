//! The pipeline's rules against a real engine.

use super::*;
use keel_engine::{ClientCommand, Config, Engine, InstanceId, JobSpec, TaskSpec, Time};
use keel_engine::{WorkerCommand, WorkerId};

/// Applies to a real engine at a fixed time; panics (as an outcome) on a chosen job.
struct Engined {
    engine: Engine,
    now: Time,
    panic_on: Option<&'static str>,
}

impl Apply for Engined {
    type Entry = (u64, Input);
    fn now(&self) -> Time {
        self.now.max(self.engine.now())
    }
    fn apply(&mut self, now: Time, offset: u64, input: Input) -> Outcome<(u64, Input)> {
        let entry = (offset, input.clone());
        if let Input::Client(ClientCommand::SubmitJob(spec)) = &input {
            if Some(spec.name.as_str()) == self.panic_on {
                return Outcome::Panicked(entry);
            }
        }
        Outcome::Applied(self.engine.apply(now, input), entry)
    }
}

type P = Pipeline<u32, &'static str, (u64, Input)>;

fn engined() -> Engined {
    Engined {
        engine: Engine::new(Config::default()),
        now: 10,
        panic_on: None,
    }
}

fn pipeline(max_batch: usize) -> P {
    let settings = Settings {
        max_batch,
        liveness_timeout_ms: 15_000,
    };
    Pipeline::new(settings, 0)
}

fn submit(name: &str) -> Input {
    Input::Client(ClientCommand::SubmitJob(JobSpec::new(
        name,
        vec![TaskSpec::new("a")],
    )))
}

fn one(p: &mut P, waiter: u32, name: &str) {
    p.push(Request::Input {
        input: submit(name),
        waiter,
    });
}

fn actions(p: &mut P) -> Vec<Action<u32, &'static str, (u64, Input)>> {
    std::iter::from_fn(|| p.next_action()).collect()
}

/// The one action, which must be an append.
fn appended(p: &mut P) -> Batch<u32, &'static str, (u64, Input)> {
    match actions(p).pop() {
        Some(Action::Append(batch)) => batch,
        _ => panic!("expected exactly an append"),
    }
}

fn released_waiters(released: &Released<u32, &'static str>) -> Vec<u32> {
    released
        .replies
        .iter()
        .filter_map(|r| match r {
            Reply::One(w, _) | Reply::Group(w, _) => Some(*w),
            Reply::Tick(_) => None,
        })
        .collect()
}

/// Replies released, and refusals with their waiters, in order.
fn summary(p: &mut P) -> Vec<String> {
    actions(p)
        .into_iter()
        .map(|a| match a {
            Action::Append(b) => format!("append {} at {}", b.len(), b.first()),
            Action::Release(r) => format!("release {:?} reads {:?}", released_waiters(&r), r.reads),
            Action::Refuse(r) => format!("refuse {:?} {:?} {:?}", r.waiters, r.reads, r.refusal),
            Action::Rebuild(f) => format!("rebuild {f:?}"),
            Action::Pause { fault, ms } => format!("pause {ms} ms {fault:?}"),
            Action::Panicked(b) => format!("panicked {}", b.len()),
        })
        .collect()
}

#[test]
fn one_append_in_flight_and_one_batch_applied_behind_it() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    one(&mut p, 2, "b");
    p.apply(&mut e);
    let mut first = appended(&mut p);
    assert_eq!((first.first(), first.len()), (0, 2));
    assert_eq!(first.take_entries().len(), 2);
    one(&mut p, 3, "c");
    p.apply(&mut e);
    assert!(
        actions(&mut p).is_empty(),
        "the second batch waits for the first"
    );
    assert!(
        e.engine.job_by_name("c").is_some(),
        "but is applied already"
    );
    one(&mut p, 4, "d");
    assert!(!p.taking(), "nothing more is applied while a batch waits");
    p.apply(&mut e);
    assert!(e.engine.job_by_name("d").is_none());
    p.append_done(first, AppendResult::Durable);
    assert_eq!(
        summary(&mut p),
        ["release [1, 2] reads []", "append 1 at 2"],
        "released only once durable, then the next batch goes to the log"
    );
    assert_eq!(p.durable_end(), 2);
    p.apply(&mut e);
    assert!(e.engine.job_by_name("d").is_some());
}

#[test]
fn a_batch_holds_at_most_max_batch_inputs_but_never_splits_a_group() {
    let (mut p, mut e) = (pipeline(2), engined());
    p.push(Request::Group {
        inputs: vec![submit("a"), submit("b"), submit("c")],
        waiter: 1,
    });
    one(&mut p, 2, "d");
    assert!(!p.has_room());
    p.apply(&mut e);
    let mut batch = appended(&mut p);
    assert_eq!(batch.len(), 3, "the whole group, and nothing after it");
    let entries = batch.take_entries();
    let offsets: Vec<u64> = entries.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, [0, 1, 2]);
    p.append_done(batch, AppendResult::Durable);
    let Some(Action::Release(released)) = p.next_action() else {
        panic!("released")
    };
    let Reply::Group(1, answers) = &released.replies[0] else {
        panic!("one group reply")
    };
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[2].position, 3);
}

#[test]
fn a_read_waits_for_the_writes_before_it_to_be_durable() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.push(Request::Read("after a"));
    p.apply(&mut e);
    let batch = appended(&mut p);
    one(&mut p, 2, "b");
    assert!(
        !p.taking(),
        "a read in flight must see exactly its batch's state"
    );
    p.apply(&mut e);
    assert!(e.engine.job_by_name("b").is_none());
    p.append_done(batch, AppendResult::Durable);
    assert_eq!(summary(&mut p), ["release [1] reads [\"after a\"]"]);
    // A read alone needs no append, but still waits for the append before it.
    p.apply(&mut e);
    let batch = appended(&mut p);
    p.push(Request::Read("after b"));
    p.apply(&mut e);
    assert!(actions(&mut p).is_empty(), "b is not durable yet");
    p.append_done(batch, AppendResult::Durable);
    assert_eq!(
        summary(&mut p),
        ["release [2] reads []", "release [] reads [\"after b\"]"]
    );
}

#[test]
fn a_failed_append_releases_nothing_and_refuses_by_what_was_recorded() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.apply(&mut e);
    let batch = appended(&mut p);
    one(&mut p, 2, "b");
    p.apply(&mut e);
    one(&mut p, 3, "c");
    p.append_done(batch, AppendResult::Failed(Fault::NoSpace));
    assert_eq!(
        summary(&mut p),
        [
            "refuse [1] [] NotDurable(NoSpace)",
            "refuse [2] [] Unrecorded(NoSpace)",
            "refuse [3] [] Unavailable(NoSpace)",
            "rebuild NoSpace",
        ]
    );
    one(&mut p, 4, "d");
    assert_eq!(summary(&mut p), ["refuse [4] [] Unavailable(NoSpace)"]);
    assert!(p.is_empty());
    p.rebuilt(0);
    assert_eq!(summary(&mut p), ["pause 100 ms NoSpace"]);
    p.unpause();
    one(&mut p, 5, "e");
    p.apply(&mut e);
    let batch = appended(&mut p);
    assert_eq!(batch.first(), 0, "the log ends where the rebuild found it");
}

#[test]
fn a_fenced_append_refuses_everything_not_durable_and_stops() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.apply(&mut e);
    let batch = appended(&mut p);
    one(&mut p, 2, "b");
    p.apply(&mut e);
    p.append_done(batch, AppendResult::Fenced { current: 7 });
    let lost = Refusal::NotLeader { fenced_by: Some(7) };
    assert_eq!(
        summary(&mut p),
        [
            format!("refuse [1] [] {lost:?}"),
            format!("refuse [2] [] {lost:?}")
        ]
    );
    one(&mut p, 3, "c");
    assert_eq!(summary(&mut p), [format!("refuse [3] [] {lost:?}")]);
}

#[test]
fn stopping_refuses_the_waiting_batch_and_answers_the_one_in_flight_by_its_append() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.apply(&mut e);
    let batch = appended(&mut p);
    one(&mut p, 2, "b");
    p.apply(&mut e);
    one(&mut p, 3, "c");
    p.push(Request::Read("r"));
    p.stop(Refusal::Stopped);
    assert_eq!(
        summary(&mut p),
        ["refuse [2] [] Stopped", "refuse [3] [\"r\"] Stopped"]
    );
    assert!(
        !p.is_empty(),
        "the append under way is still to be answered"
    );
    p.append_done(batch, AppendResult::Durable);
    assert_eq!(summary(&mut p), ["release [1] reads []"]);
    assert!(p.is_empty());
    // Had it failed after the stop, it is refused and no rebuild is asked for.
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.apply(&mut e);
    let batch = appended(&mut p);
    p.stop(Refusal::NotLeader { fenced_by: None });
    p.append_done(batch, AppendResult::Failed(Fault::Unreachable));
    assert_eq!(summary(&mut p), ["refuse [1] [] NotDurable(Unreachable)"]);
}

#[test]
fn a_held_append_waits_and_a_held_apply_takes_nothing() {
    let (mut p, mut e) = (pipeline(10), engined());
    p.hold(true, false);
    one(&mut p, 1, "a");
    p.apply(&mut e);
    assert!(
        actions(&mut p).is_empty(),
        "no append while a renewal is under way"
    );
    p.hold(false, false);
    assert_eq!(summary(&mut p), ["append 1 at 0"]);
    p.hold(false, true);
    one(&mut p, 2, "b");
    p.apply(&mut e);
    assert!(e.engine.job_by_name("b").is_none(), "held for a snapshot");
}

#[test]
fn repeated_heartbeats_are_answered_without_an_entry() {
    let (mut p, mut e) = (pipeline(10), engined());
    let worker = WorkerId::new("w");
    let register = WorkerCommand::Register {
        capabilities: Vec::new(),
        lanes: Vec::new(),
        max_concurrency: 1,
    };
    for (waiter, command) in [
        (1, register),
        (2, WorkerCommand::Heartbeat),
        (3, WorkerCommand::Heartbeat),
    ] {
        p.push(Request::Input {
            input: Input::worker(&worker, InstanceId::new(1), command),
            waiter,
        });
    }
    p.apply(&mut e);
    let batch = appended(&mut p);
    assert_eq!(batch.len(), 2, "the second heartbeat is absorbed");
    p.append_done(batch, AppendResult::Durable);
    let Some(Action::Release(released)) = p.next_action() else {
        panic!("released")
    };
    assert_eq!(released.absorbed, 1);
    let Reply::One(3, absorbed) = &released.replies[2] else {
        panic!("in order")
    };
    assert!(absorbed.absorbed);
    assert_eq!(absorbed.position, 2, "durable with the entries before it");
}

#[test]
fn a_due_tick_goes_first_in_the_next_batch() {
    let (mut p, mut e) = (pipeline(10), engined());
    one(&mut p, 1, "a");
    p.tick();
    p.apply(&mut e);
    let mut batch = appended(&mut p);
    let entries = batch.take_entries();
    assert_eq!(entries[0].1, Input::Tick);
    p.append_done(batch, AppendResult::Durable);
    let Some(Action::Release(released)) = p.next_action() else {
        panic!("released")
    };
    assert!(matches!(&released.replies[0], Reply::Tick(a) if a.tick));
}

#[test]
fn an_engine_panic_stops_the_pipeline_with_the_panicking_entry_last() {
    let (mut p, mut e) = (pipeline(10), engined());
    e.panic_on = Some("bad");
    one(&mut p, 1, "a");
    one(&mut p, 2, "bad");
    one(&mut p, 3, "c");
    p.apply(&mut e);
    let Some(Action::Panicked(mut batch)) = p.next_action() else {
        panic!("panicked")
    };
    let entries = batch.take_entries();
    assert_eq!(entries.len(), 2, "the inputs after it are not applied");
    assert!(e.engine.job_by_name("c").is_none());
    one(&mut p, 4, "d");
    assert_eq!(summary(&mut p), ["refuse [4] [] Stopped"]);
}

#[test]
fn after_a_rebuild_inputs_wait_out_a_pause_that_doubles_with_each_failure_in_a_row() {
    let (mut p, mut e) = (pipeline(10), engined());
    let mut pauses = Vec::new();
    for waiter in 0..8 {
        one(&mut p, waiter, "a");
        p.apply(&mut e);
        let batch = appended(&mut p);
        p.append_done(batch, AppendResult::Failed(Fault::NoSpace));
        let _ = summary(&mut p);
        p.rebuilt(0);
        assert!(p.is_paused());
        // Paused: an input is refused at once, a read is served from the rebuilt state.
        one(&mut p, 100 + waiter, "b");
        p.push(Request::Read("r"));
        p.apply(&mut e);
        let seen = summary(&mut p);
        let pause = &seen[0];
        pauses.push(pause.clone());
        assert_eq!(
            &seen[1..],
            [
                format!("refuse [{}] [] Paused(NoSpace)", 100 + waiter),
                "release [] reads [\"r\"]".to_string(),
            ]
        );
        p.unpause();
        assert!(!p.is_paused());
    }
    assert_eq!(
        pauses,
        [
            "pause 100 ms NoSpace",
            "pause 200 ms NoSpace",
            "pause 400 ms NoSpace",
            "pause 800 ms NoSpace",
            "pause 1600 ms NoSpace",
            "pause 3200 ms NoSpace",
            "pause 5000 ms NoSpace",
            "pause 5000 ms NoSpace",
        ]
    );
    // A durable append starts the count again.
    one(&mut p, 50, "c");
    p.apply(&mut e);
    let batch = appended(&mut p);
    p.append_done(batch, AppendResult::Durable);
    let _ = summary(&mut p);
    one(&mut p, 51, "d");
    p.apply(&mut e);
    let batch = appended(&mut p);
    p.append_done(batch, AppendResult::Failed(Fault::NoSpace));
    let _ = summary(&mut p);
    p.rebuilt(0);
    assert_eq!(summary(&mut p), ["pause 100 ms NoSpace"]);
}
