//! The worker's bookkeeping without a connection: events and notes in, commands out.

use super::*;
use crate::proto::worker_command::Command;
use keel_engine::SuspendTimeout;
use tokio::time::Instant;

fn offer(grant: u64, task: u64) -> proto::CoordinatorEvent {
    proto::CoordinatorEvent {
        event: Some(Event::GrantOffered(proto::GrantOffered {
            grant,
            job: 1,
            task,
            attempt: 1,
            ..Default::default()
        })),
    }
}

fn reply(seq: u64, result: reply::Result) -> proto::CoordinatorEvent {
    proto::CoordinatorEvent {
        event: Some(Event::Reply(proto::Reply {
            seq,
            result: Some(result),
        })),
    }
}

fn started(fence: Fence) -> reply::Result {
    reply::Result::LeaseStarted(proto::LeaseStarted {
        fence: Some(fence_to_proto(fence)),
        ..Default::default()
    })
}

/// The seq of the last command of `kind` in the outbox.
fn last_seq(commands: &[proto::WorkerCommand], kind: fn(&Command) -> bool) -> u64 {
    let found = commands
        .iter()
        .rev()
        .find(|c| c.command.as_ref().is_some_and(kind));
    found.map(|c| c.seq).expect("the command was sent")
}

#[tokio::test]
async fn a_resumed_attempts_outcome_survives_the_late_answer_to_its_suspension() {
    let (notes, _notes_rx) = mpsc::channel(16);
    let handler = Arc::new(|_task: Task| async { Outcome::Complete(Vec::new()) });
    let mut state = State::new(1, 1, handler, notes);
    let first = Fence {
        task: TaskId(7),
        attempt: 1,
        epoch: 1,
    };
    let resumed = Fence { epoch: 2, ..first };

    state.on_event(offer(1, 7)).ok();
    let accept = last_seq(&state.take_outbox(), |c| {
        matches!(c, Command::AcceptGrant(_))
    });
    state.on_event(reply(accept, started(first))).ok();
    let suspend = Outcome::Suspend {
        waitpoint: "approval".into(),
        timeout: None,
        on_timeout: SuspendTimeout::default(),
    };
    state.on_note(Note::Done(first, Some(suspend)));
    let suspended = last_seq(&state.take_outbox(), |c| matches!(c, Command::Suspend(_)));

    // The signal resumed the task and its next attempt finished before the answer to
    // the suspension arrived.
    state.on_event(offer(2, 7)).ok();
    let accept = last_seq(&state.take_outbox(), |c| {
        matches!(c, Command::AcceptGrant(_))
    });
    state.on_event(reply(accept, started(resumed))).ok();
    state.on_note(Note::Done(resumed, Some(Outcome::Complete(Vec::new()))));
    state.take_outbox();
    let answer = reply::Result::Suspended(proto::Suspended {
        fence: Some(fence_to_proto(first)),
        duplicate: false,
    });
    state.on_event(reply(suspended, answer)).ok();

    assert!(!state.idle(), "the completion is still unacknowledged");
    // A reconnect sends it again.
    state.register(proto::Register::default());
    state.connected();
    let again = state.take_outbox();
    let resent = again.iter().any(|c| {
        matches!(&c.command, Some(Command::Complete(done))
            if done.fence.as_ref().map(fence_from_proto) == Some(resumed))
    });
    assert!(resent, "the completion was not sent again: {again:?}");
    assert_eq!(state.summary.suspended, 1);
}

#[tokio::test]
async fn a_lease_not_renewed_in_time_stops_its_handler() {
    let (notes, _notes_rx) = mpsc::channel(16);
    let handler = Arc::new(|_task: Task| async { Outcome::Complete(Vec::new()) });
    let mut state = State::new(2, 1, handler, notes);
    let ttl = std::time::Duration::from_secs(30);
    state.set_lease_ttl(ttl);
    let fence = Fence {
        task: TaskId(7),
        attempt: 1,
        epoch: 1,
    };

    let before_accept = Instant::now();
    state.on_event(offer(1, 7)).ok();
    let accept = last_seq(&state.take_outbox(), |c| {
        matches!(c, Command::AcceptGrant(_))
    });
    state.on_event(reply(accept, started(fence))).ok();
    let until = state
        .next_expiry()
        .expect("a running lease is trusted until a deadline");
    assert!(until >= before_accept + ttl && until <= Instant::now() + ttl);

    // A renewal answered moves the deadline on, from when the renewal was sent.
    let before_renew = Instant::now();
    state.renew_all();
    let renew = last_seq(&state.take_outbox(), |c| matches!(c, Command::Renew(_)));
    let renewed = reply::Result::Renewed(proto::Renewed {
        fence: Some(fence_to_proto(fence)),
        expires_at_ms: 0,
    });
    state.on_event(reply(renew, renewed)).ok();
    let later = state.next_expiry().unwrap();
    assert!(
        later >= before_renew + ttl,
        "the renewal did not extend the lease"
    );

    state.expire(later - std::time::Duration::from_millis(1));
    assert_eq!(state.summary.revoked, 0, "stopped before its deadline");
    state.expire(later);
    assert_eq!(state.summary.revoked, 1);
    assert_eq!(state.next_expiry(), None);
    assert!(
        state.idle(),
        "the stopped attempt is the coordinator's to requeue"
    );
}

/// A state with one running attempt of task 7 under `fence`.
fn running(frame_limit: usize) -> (State, Fence) {
    let (notes, _) = mpsc::channel(16);
    let handler = Arc::new(|_task: Task| async { Outcome::Complete(Vec::new()) });
    let mut state = State::new(1, 1, handler, notes);
    state.set_frame_limit(frame_limit);
    let fence = Fence {
        task: TaskId(7),
        attempt: 1,
        epoch: 1,
    };
    state.on_event(offer(1, 7)).ok();
    let accept = last_seq(&state.take_outbox(), |c| {
        matches!(c, Command::AcceptGrant(_))
    });
    state.on_event(reply(accept, started(fence))).ok();
    (state, fence)
}

fn failure_sent(commands: &[proto::WorkerCommand]) -> Option<(String, bool)> {
    commands.iter().find_map(|c| match &c.command {
        Some(Command::Fail(f)) => Some((f.error.clone(), f.permanent)),
        _ => None,
    })
}

#[tokio::test]
async fn an_output_too_large_for_any_frame_is_reported_as_a_permanent_failure() {
    let limit = 256 << 10;
    let (mut state, fence) = running(limit);
    let output = vec![7u8; limit];
    state.on_note(Note::Done(fence, Some(Outcome::Complete(output))));
    let sent = state.take_outbox();
    assert!(
        !sent
            .iter()
            .any(|c| matches!(c.command, Some(Command::Complete(_)))),
        "an unsendable completion was queued"
    );
    let (error, permanent) = failure_sent(&sent).expect("a failure is reported instead");
    assert!(permanent);
    assert!(
        error.contains("262144 bytes") && error.contains("max_message_bytes"),
        "{error}"
    );
    // After a reconnect the same failure is sent, not the output.
    state.register(proto::Register::default());
    state.connected();
    assert!(failure_sent(&state.take_outbox()).is_some());
}

#[tokio::test]
async fn an_output_the_engine_refuses_as_too_large_fails_the_attempt_for_good() {
    let (mut state, fence) = running(16 << 20);
    state.on_note(Note::Done(fence, Some(Outcome::Complete(vec![1; 100]))));
    let complete = last_seq(&state.take_outbox(), |c| matches!(c, Command::Complete(_)));
    let refusal = proto::Refusal {
        status: tonic::Code::ResourceExhausted as i32,
        reason: "too_large".into(),
        message: "too_large: output of 100 bytes exceeds 10".into(),
        current_instance: None,
    };
    state
        .on_event(reply(complete, reply::Result::Refused(refusal)))
        .ok();
    let (error, permanent) = failure_sent(&state.take_outbox()).expect("a failure follows");
    assert!(permanent && error.contains("too_large"), "{error}");
    assert!(!state.idle(), "the failure awaits its answer");
}
