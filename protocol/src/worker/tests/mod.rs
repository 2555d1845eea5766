//! The worker's decisions, driven input by input with time as a number: helpers,
//! and the tests of registering, credits, leases and the connection; outcomes and
//! drains are in `outcomes.rs`.

use super::*;

mod outcomes;
use keel_engine::{Fence, GrantId, InstanceId, JobId, Payload, SuspendTimeout, TaskId, TaskInput};

pub(super) const TTL: u64 = 3_000;
pub(super) const LIVENESS: u64 = 30_000;

pub(super) fn config(concurrency: u32) -> Config {
    Config {
        capabilities: Vec::new(),
        lanes: Vec::new(),
        concurrency,
        instance: InstanceId::new(5),
        backoff_min_ms: 100,
        backoff_max_ms: 5_000,
        jitter_seed: 1,
        answer_timeout_ms: 1_000,
        drain_timeout_ms: 60_000,
        frame_overhead_bytes: 64,
        max_error_bytes: 100,
        max_progress_bytes: 50,
    }
}

pub(super) fn fence(task: u64, epoch: u64) -> Fence {
    Fence {
        task: TaskId::new(task),
        attempt: 1,
        epoch,
    }
}

/// The seq of the last command matching `kind` among `out`.
pub(super) fn sent(out: &[Output], kind: fn(&Command) -> bool) -> Option<u64> {
    out.iter().rev().find_map(|o| match o {
        Output::Send { seq, command } if kind(command) => Some(*seq),
        _ => None,
    })
}

pub(super) fn commands(out: &[Output]) -> Vec<Command> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect()
}

/// Answers `seq`, and answers at once the work requests, heartbeats, drains and
/// releases that answer sends.
pub(super) fn reply(m: &mut WorkerMachine, now: Time, seq: u64, answer: Answer) -> Vec<Output> {
    let mut out = Vec::new();
    m.on_event(now, Event::Reply { seq, answer }, &mut out);
    ack(m, now, &out);
    out
}

/// Answers the commands among `out` whose answer changes nothing but the session.
pub(super) fn ack(m: &mut WorkerMachine, now: Time, out: &[Output]) {
    for o in out {
        if let Output::Send { seq, command } = o {
            if matches!(
                command,
                Command::Heartbeat
                    | Command::RequestWork { .. }
                    | Command::Drain
                    | Command::ReleaseGrant { .. }
            ) {
                let mut rest = Vec::new();
                let answer = Answer::Done;
                m.on_event(now, Event::Reply { seq: *seq, answer }, &mut rest);
                ack(m, now, &rest);
            }
        }
    }
}

pub(super) fn registered(frame_bytes: Option<u64>) -> Answer {
    Answer::Registered(Registered {
        lease_ttl_ms: TTL,
        liveness_timeout_ms: LIVENESS,
        frame_bytes,
    })
}

/// Connects and registers at `now`; returns what the registration's answer sent.
pub(super) fn register(m: &mut WorkerMachine, now: Time, frame_bytes: Option<u64>) -> Vec<Output> {
    let mut out = Vec::new();
    m.start(&mut out);
    m.on_timer(now, &mut out);
    assert!(out.contains(&Output::Connect), "{out:?}");
    out.clear();
    m.connected(now, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).expect("registers");
    reply(m, now, seq, registered(frame_bytes))
}

pub(super) fn offer(grant: u64, task: u64) -> Event {
    Event::GrantOffered(Offer {
        grant: GrantId::new(grant),
        job: JobId::new(1),
        task: TaskId::new(task),
        key: format!("k{task}"),
        attempt: 1,
        payload: b"p".to_vec(),
        inputs: vec![
            TaskInput {
                key: "up".into(),
                output: Some(Payload::from("data")),
            },
            TaskInput {
                key: "skipped".into(),
                output: None,
            },
        ],
        signal: Some(b"go".to_vec()),
        streams: vec![],
    })
}

/// Offers task `task` at `now` and answers the accept with a lease under `f`.
pub(super) fn run(m: &mut WorkerMachine, now: Time, grant: u64, f: Fence) -> Vec<Output> {
    let mut out = Vec::new();
    m.on_event(now, offer(grant, f.task.get()), &mut out);
    let accept = sent(&out, |c| matches!(c, Command::AcceptGrant { .. })).expect("accepts");
    ack(m, now, &out);
    let started = reply(m, now + 10, accept, Answer::LeaseStarted { fence: f });
    let assignment = started.iter().find_map(|o| match o {
        Output::Start(a) if a.fence == f => Some(a),
        _ => None,
    });
    let Some(a) = assignment else {
        panic!("no start for {f:?}: {started:?}");
    };
    // The handler gets the offer's inputs and signal payload as they came.
    let Event::GrantOffered(o) = offer(grant, f.task.get()) else {
        unreachable!("offer() makes an offer")
    };
    assert_eq!((&a.inputs, &a.signal), (&o.inputs, &o.signal));
    started
}

#[test]
fn a_registration_asks_for_as_much_work_as_there_are_slots_and_offers_beyond_are_released() {
    let mut m = WorkerMachine::new(config(2));
    let out = register(&mut m, 0, None);
    assert_eq!(commands(&out), vec![Command::RequestWork { credits: 2 }]);
    run(&mut m, 100, 1, fence(7, 1));
    let mut out = Vec::new();
    m.on_event(200, offer(2, 8), &mut out);
    assert_eq!(m.credits(), 0, "one runs, one is being accepted");
    m.on_event(210, offer(3, 9), &mut out);
    let release = Command::ReleaseGrant {
        grant: GrantId::new(3),
    };
    assert!(commands(&out).contains(&release), "{out:?}");
}

#[test]
fn a_lease_is_trusted_for_one_ttl_from_when_its_renewal_was_sent() {
    let mut m = WorkerMachine::new(config(2));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    // Accepted at 100, answered at 110: trusted until 100 + TTL.
    let started = run(&mut m, 100, 1, f);
    let trust = Output::Trust {
        task: f.task,
        until: Some((f, 100 + TTL)),
    };
    assert!(started.contains(&trust), "{started:?}");
    // The renewal is due one third of a TTL after the start.
    let mut out = Vec::new();
    m.on_timer(110 + TTL / 3 - 1, &mut out);
    assert_eq!(sent(&out, |c| matches!(c, Command::Renew { .. })), None);
    m.on_timer(110 + TTL / 3, &mut out);
    let renew = sent(&out, |c| matches!(c, Command::Renew { .. })).expect("renews");
    let sent_at = 110 + TTL / 3;
    // Answered much later: the lease still counts from when the renewal was sent.
    let out = reply(&mut m, sent_at + 900, renew, Answer::Renewed);
    let renewed = Output::Trust {
        task: f.task,
        until: Some((f, sent_at + TTL)),
    };
    assert!(out.contains(&renewed), "{out:?}");
    // Nothing answered after that: the handler stops exactly at the deadline.
    let mut out = Vec::new();
    m.on_timer(sent_at + TTL - 1, &mut out);
    assert!(!out.contains(&Output::Cancel(f)));
    let mut out = Vec::new();
    let deadline = m.next_timeout().expect("a deadline");
    assert!(deadline <= sent_at + TTL);
    m.on_timer(sent_at + TTL, &mut out);
    assert!(out.contains(&Output::Cancel(f)), "{out:?}");
    assert_eq!(m.summary().revoked, 1);
}

#[test]
fn a_refusal_naming_the_current_instance_jumps_past_it_and_a_lost_instance_takes_the_next() {
    let mut m = WorkerMachine::new(config(1));
    let mut out = Vec::new();
    m.start(&mut out);
    m.connected(0, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let stale = Refusal::from_code("stale_instance", "old".into(), Some(InstanceId::new(900)));
    let out = reply(&mut m, 10, seq, Answer::Refused(stale));
    assert!(out.contains(&Output::Disconnect));
    assert_eq!(m.instance(), InstanceId::new(901));
    assert_eq!(m.summary().registrations_refused, 1);
    // Registered as 901, running a task; then the coordinator declares it lost.
    let mut out = Vec::new();
    m.on_timer(m.next_timeout().unwrap(), &mut out);
    m.connected(200, &mut out);
    let seq = sent(&out, |c| {
        matches!(
            c,
            Command::Register { instance, .. } if *instance == InstanceId::new(901)
        )
    });
    reply(&mut m, 210, seq.unwrap(), registered(None));
    let f = fence(7, 1);
    run(&mut m, 300, 1, f);
    let mut out = Vec::new();
    m.on_event(
        400,
        Event::Lost {
            instance: Some(InstanceId::new(3)),
        },
        &mut out,
    );
    assert!(
        out.is_empty(),
        "another instance's loss is not this one's: {out:?}"
    );
    m.on_event(400, Event::Lost { instance: None }, &mut out);
    assert!(out.contains(&Output::Cancel(f)) && out.contains(&Output::Disconnect));
    assert_eq!(m.instance(), InstanceId::new(902));
    // The largest instance saturates rather than wrapping.
    let mut top = WorkerMachine::new(Config {
        instance: InstanceId::new(u64::MAX),
        ..config(1)
    });
    let mut out = Vec::new();
    top.start(&mut out);
    top.connected(0, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let stale = Refusal::from_code(
        "stale_instance",
        "old".into(),
        Some(InstanceId::new(u64::MAX)),
    );
    reply(&mut top, 10, seq, Answer::Refused(stale));
    assert_eq!(top.instance(), InstanceId::new(u64::MAX));
}

#[test]
fn a_malformed_registration_stops_the_worker() {
    let mut m = WorkerMachine::new(config(1));
    let mut out = Vec::new();
    m.start(&mut out);
    m.connected(0, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let invalid = Refusal::from_code("invalid_worker", "bad lane".into(), None);
    let out = reply(&mut m, 10, seq, Answer::Refused(invalid));
    assert!(out.contains(&Output::Stopped(Stop::Refused("bad lane".into()))));
    assert!(m.is_stopped());
    assert_eq!(m.next_timeout(), None);
}

#[test]
fn a_duplicated_offer_or_answer_never_starts_an_attempt_twice() {
    let mut m = WorkerMachine::new(config(2));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.on_event(150, offer(1, 7), &mut out);
    assert!(commands(&out).is_empty(), "{out:?}");
    m.handler_finished(200, f, Some(Outcome::Complete(Vec::new())), &mut out);
    // The same offer again after the attempt ended: the accept's answer repeats the
    // lease, which must not run again.
    let mut out = Vec::new();
    m.on_event(300, offer(1, 7), &mut out);
    let accept = sent(&out, |c| matches!(c, Command::AcceptGrant { .. })).unwrap();
    let out = reply(&mut m, 310, accept, Answer::LeaseStarted { fence: f });
    assert!(
        !out.iter().any(|o| matches!(o, Output::Start(_))),
        "{out:?}"
    );
}

#[test]
fn a_revoked_lease_stops_its_handler_and_frees_its_slot() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.on_event(200, Event::LeaseRevoked { fence: fence(7, 2) }, &mut out);
    assert!(out.is_empty(), "another epoch's revocation: {out:?}");
    m.on_event(200, Event::LeaseRevoked { fence: f }, &mut out);
    assert!(out.contains(&Output::Cancel(f)));
    assert!(commands(&out).contains(&Command::RequestWork { credits: 1 }));
    // The cancelled handler's own end changes nothing.
    let mut out = Vec::new();
    m.handler_finished(210, f, None, &mut out);
    assert!(out.is_empty());
}

#[test]
fn heartbeats_keep_their_cadence_and_a_silent_coordinator_is_left() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let beat = LIVENESS / 3;
    assert_eq!(m.next_timeout(), Some(beat));
    let mut out = Vec::new();
    m.on_timer(beat, &mut out);
    assert!(sent(&out, |c| matches!(c, Command::Heartbeat)).is_some());
    // Free slots are asked for again with every heartbeat.
    assert!(commands(&out).contains(&Command::RequestWork { credits: 1 }));
    ack(&mut m, beat + 5, &out);
    let mut out = Vec::new();
    m.on_timer(2 * beat, &mut out);
    assert!(sent(&out, |c| matches!(c, Command::Heartbeat)).is_some());
    let mut out = Vec::new();
    m.on_timer(2 * beat + 1_000, &mut out);
    assert!(out.contains(&Output::Disconnect), "{out:?}");
}

#[test]
fn a_lease_stops_being_trusted_while_the_connection_is_down() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.disconnected(200, &mut out);
    // The reconnect keeps failing; the deadline counts all the same.
    let mut now = 200;
    while now < 100 + TTL {
        now = m.next_timeout().expect("something is due").min(100 + TTL);
        let mut out = Vec::new();
        m.on_timer(now, &mut out);
        if out.contains(&Output::Connect) {
            m.disconnected(now, &mut out);
        }
        if now < 100 + TTL {
            assert!(!out.contains(&Output::Cancel(f)), "stopped at {now}");
        } else {
            assert!(out.contains(&Output::Cancel(f)), "{out:?}");
        }
    }
    assert_eq!(m.summary().revoked, 1);
}

#[test]
fn an_accept_left_unanswered_is_sent_again_after_a_reconnect_and_trusted_from_the_first() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let mut out = Vec::new();
    m.on_event(100, offer(1, 7), &mut out);
    assert!(sent(&out, |c| matches!(c, Command::AcceptGrant { .. })).is_some());
    let mut out = Vec::new();
    m.disconnected(150, &mut out);
    m.on_timer(m.next_timeout().unwrap(), &mut out);
    m.connected(300, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let out = reply(&mut m, 310, seq, registered(None));
    let accept = sent(
        &out,
        |c| matches!(c, Command::AcceptGrant { grant } if *grant == GrantId::new(1)),
    );
    let f = fence(7, 1);
    // The first accept may have started the lease: trust counts from it.
    let out = reply(
        &mut m,
        320,
        accept.expect("resent"),
        Answer::LeaseStarted { fence: f },
    );
    let trust = Output::Trust {
        task: f.task,
        until: Some((f, 100 + TTL)),
    };
    assert!(out.contains(&trust), "{out:?}");
}

#[test]
fn zero_and_maximal_settings_and_times_neither_panic_nor_spin() {
    let mut started = 0;
    for (ttl, now) in [(0, 0), (u64::MAX, u64::MAX - 10), (1, u64::MAX)] {
        let mut m = WorkerMachine::new(Config {
            concurrency: u32::MAX,
            backoff_min_ms: 0,
            backoff_max_ms: u64::MAX,
            answer_timeout_ms: ttl,
            drain_timeout_ms: ttl,
            frame_overhead_bytes: u64::MAX,
            max_error_bytes: 0,
            max_progress_bytes: 0,
            ..config(1)
        });
        let mut out = Vec::new();
        m.start(&mut out);
        m.connected(now, &mut out);
        let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
        let reg = Answer::Registered(Registered {
            lease_ttl_ms: ttl,
            liveness_timeout_ms: ttl,
            frame_bytes: Some(0),
        });
        let out = reply(&mut m, now, seq, reg);
        let credits = commands(&out).into_iter().find_map(|c| match c {
            Command::RequestWork { credits } => Some(credits),
            _ => None,
        });
        assert_eq!(credits, Some(u32::MAX));
        let mut out = Vec::new();
        m.on_event(now, offer(1, 7), &mut out);
        if let Some(accept) = sent(&out, |c| matches!(c, Command::AcceptGrant { .. })) {
            let f = fence(7, 1);
            let out = reply(&mut m, now, accept, Answer::LeaseStarted { fence: f });
            if out.iter().any(|o| matches!(o, Output::Start(_))) {
                started += 1;
                let mut out = Vec::new();
                m.progress(now, f, u32::MAX, "long".into(), &mut out);
                m.handler_finished(now, f, Some(Outcome::Complete(vec![1])), &mut out);
                // No room in a frame of 0 bytes: a permanent failure, its text cut to 0.
                let fail = Command::Fail {
                    fence: f,
                    error: String::new(),
                    permanent: true,
                };
                assert!(commands(&out).contains(&fail), "{out:?}");
            }
        }
        // Every timeout handled moves the next one on: a hundred wakes end somewhere.
        for _ in 0..100 {
            let Some(due) = m.next_timeout() else { break };
            let mut out = Vec::new();
            m.on_timer(due, &mut out);
            if out.contains(&Output::Connect) {
                m.connected(due, &mut out);
            }
        }
    }
    assert_eq!(started, 3, "every setting ran a handler");
}
