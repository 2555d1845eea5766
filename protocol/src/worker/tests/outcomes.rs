//! Outcomes kept until answered, resent after reconnects, reshaped to fit; drains.

use super::*;

#[test]
fn a_resumed_attempts_outcome_survives_the_late_answer_to_its_suspension() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let first = fence(7, 1);
    let resumed = fence(7, 2);
    run(&mut m, 100, 1, first);
    let suspend = Outcome::Suspend {
        waitpoint: "approval".into(),
        timeout_ms: Some(0),
        on_timeout: SuspendTimeout::Resume,
    };
    let mut out = Vec::new();
    m.handler_finished(200, first, Some(suspend), &mut out);
    let suspended = sent(&out, |c| {
        matches!(
            c,
            Command::Suspend {
                timeout_ms: Some(1),
                ..
            }
        )
    })
    .expect("a zero suspension timeout is sent as 1 ms");
    // The signal resumed the task and its next attempt finished before the answer to
    // the suspension arrived.
    run(&mut m, 300, 2, resumed);
    let mut out = Vec::new();
    m.handler_finished(400, resumed, Some(Outcome::Complete(Vec::new())), &mut out);
    reply(&mut m, 500, suspended, Answer::Suspended);
    assert!(!m.idle(), "the completion is still unanswered");
    assert_eq!(m.summary().suspended, 1);
    // A reconnect sends it again.
    let mut out = Vec::new();
    m.disconnected(600, &mut out);
    m.on_timer(600 + 100, &mut out);
    m.connected(700, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let again = reply(&mut m, 710, seq, registered(None));
    let resent = commands(&again)
        .into_iter()
        .any(|c| matches!(c, Command::Complete { fence, .. } if fence == resumed));
    assert!(resent, "the completion was not sent again: {again:?}");
}

#[test]
fn an_output_too_large_for_any_frame_is_reported_as_a_permanent_failure() {
    let mut m = WorkerMachine::new(Config {
        max_error_bytes: 40,
        ..config(1)
    });
    register(&mut m, 0, Some(1_000));
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.handler_finished(200, f, Some(Outcome::Complete(vec![0; 937])), &mut out);
    let failure = commands(&out).into_iter().find_map(|c| match c {
        Command::Fail {
            error, permanent, ..
        } => Some((error, permanent)),
        _ => None,
    });
    let (error, permanent) = failure.expect("a failure instead of the output");
    assert!(permanent);
    assert!(
        error.starts_with("the task's output of 937 bytes"),
        "{error}"
    );
    assert_eq!(error.len(), 40, "cut to max_error_bytes");
    // An output that fits is sent as it is.
    let g = fence(8, 1);
    run(&mut m, 300, 2, g);
    let mut out = Vec::new();
    m.handler_finished(400, g, Some(Outcome::Complete(vec![0; 936])), &mut out);
    assert!(sent(&out, |c| matches!(c, Command::Complete { .. })).is_some());
}

#[test]
fn an_output_the_coordinator_refuses_as_too_large_fails_the_attempt_for_good() {
    let (mut m, f, complete) = completing(vec![1; 100]);
    let refusal = Refusal::from_code("too_large", "too_large: output".into(), None);
    let out = reply(&mut m, 300, complete, Answer::Refused(refusal));
    let failed = sent(&out, |c| {
        matches!(
            c,
            Command::Fail {
                permanent: true,
                ..
            }
        )
    });
    assert!(failed.is_some(), "{out:?}");
    assert!(out.contains(&Output::OutcomeRefused {
        fence: f,
        message: "too_large: output".into(),
        instead: Instead::FailedForGood,
    }));
    assert!(!m.idle(), "the failure awaits its answer");
    reply(&mut m, 400, failed.unwrap(), Answer::Failed);
    assert!(m.idle());
    assert_eq!(m.summary().failed, 1);
}

#[test]
fn a_suspension_the_coordinator_refuses_as_invalid_fails_the_attempt_for_good() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let suspend = Outcome::Suspend {
        waitpoint: "bad name".into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Resume,
    };
    let mut out = Vec::new();
    m.handler_finished(200, f, Some(suspend), &mut out);
    let suspended = sent(&out, |c| matches!(c, Command::Suspend { .. })).unwrap();
    let message = "invalid_name: waitpoint \"bad name\"".to_string();
    let refusal = Refusal::from_code("invalid_name", message, None);
    let out = reply(&mut m, 300, suspended, Answer::Refused(refusal));
    let error = commands(&out)
        .into_iter()
        .find_map(|c| match c {
            Command::Fail {
                error,
                permanent: true,
                ..
            } => Some(error),
            _ => None,
        })
        .expect("a permanent failure instead of a dropped suspension");
    assert!(
        error.starts_with("the task's suspension was refused: invalid_name"),
        "{error}"
    );
    assert!(!m.idle(), "the failure awaits its answer");
}

/// A full store (`limit_reached`) leaves the attempt running on the coordinator: the
/// worker fails it, not for good, naming the limit, rather than dropping the report and
/// leaving the attempt to run out its lease.
#[test]
fn an_output_refused_for_a_full_store_fails_the_attempt_to_be_retried() {
    let (mut m, f, complete) = completing(vec![1; 100]);
    let message = "limit_reached: limit max_stored_bytes (536870912) reached".to_string();
    let refusal = Refusal::from_code("limit_reached", message, None);
    let out = reply(&mut m, 300, complete, Answer::Refused(refusal));
    let failed = sent(&out, |c| {
        matches!(
            c,
            Command::Fail { permanent: false, error, .. } if error.contains("max_stored_bytes")
        )
    });
    assert!(failed.is_some(), "{out:?}");
    assert!(has_refused(&out, f, Instead::FailedToRetry), "{out:?}");
    reply(&mut m, 400, failed.unwrap(), Answer::Failed);
    assert!(m.idle());
    assert_eq!((m.summary().failed, m.summary().stale), (1, 0));
}

#[test]
fn a_failure_the_coordinator_refuses_as_invalid_is_dropped_not_sent_again() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let failure = Outcome::Fail {
        error: "boom".into(),
        permanent: false,
    };
    let mut out = Vec::new();
    m.handler_finished(200, f, Some(failure), &mut out);
    let failed = sent(&out, |c| matches!(c, Command::Fail { .. })).unwrap();
    let refusal = Refusal::from_code("invalid_argument", "fail.error: bad".into(), None);
    let out = reply(&mut m, 300, failed, Answer::Refused(refusal));
    assert!(sent(&out, |_| true).is_none(), "{out:?}");
    assert!(m.idle());
}

#[test]
fn an_output_the_coordinator_refused_and_failed_is_counted_as_failed_and_not_resent() {
    let (mut m, f, complete) = completing(vec![1; 100]);
    let message = "output_over_limit: output of t7 refused".to_string();
    let refusal = Refusal::from_code("output_over_limit", message, None);
    let out = reply(&mut m, 300, complete, Answer::Refused(refusal));
    assert!(
        sent(&out, |_| true).is_none(),
        "nothing more is sent: {out:?}"
    );
    assert!(has_refused(&out, f, Instead::FailedForGood), "{out:?}");
    assert!(m.idle());
    assert_eq!((m.summary().failed, m.summary().stale), (1, 0));
}

#[test]
fn an_outcome_refused_as_stale_is_dropped_and_counted() {
    let (mut m, f, complete) = completing(Vec::new());
    let stale = Refusal::from_code("stale_fence", "stale".into(), None);
    let out = reply(&mut m, 300, complete, Answer::Refused(stale));
    assert!(has_refused(&out, f, Instead::Dropped), "{out:?}");
    assert!(m.idle());
    assert_eq!(m.summary().stale, 1);
}

/// An outcome the coordinator records as reported is not announced as refused.
#[test]
fn a_recorded_outcome_is_not_announced_as_refused() {
    let (mut m, _, complete) = completing(Vec::new());
    let out = reply(&mut m, 300, complete, Answer::Completed);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::OutcomeRefused { .. })),
        "{out:?}"
    );
    assert_eq!(m.summary().completed, 1);
}

/// Whether `out` announces that the coordinator refused `fence`'s outcome, and what
/// became of the attempt instead.
fn has_refused(out: &[Output], fence: Fence, instead: Instead) -> bool {
    out.iter().any(|o| {
        matches!(o, Output::OutcomeRefused { fence: f, instead: i, .. } if *f == fence && *i == instead)
    })
}

#[test]
fn an_unanswered_outcome_breaks_the_connection_and_is_sent_again_after_it() {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.handler_finished(200, f, Some(Outcome::Complete(b"x".to_vec())), &mut out);
    // The answer timeout, counted from the send, is the next thing due.
    let mut out = Vec::new();
    m.on_timer(1_199, &mut out);
    assert!(!out.contains(&Output::Disconnect));
    m.on_timer(1_200, &mut out);
    assert!(out.contains(&Output::Disconnect), "{out:?}");
    assert_eq!(m.summary().reconnects, 1);
    let retry = m.next_timeout().expect("a reconnect is due");
    assert!(
        (1_275..=1_300).contains(&retry),
        "backoff of 75..=100 ms: {retry}"
    );
    let mut out = Vec::new();
    m.on_timer(retry, &mut out);
    assert_eq!(out, vec![Output::Connect]);
    m.connected(retry, &mut out);
    let seq = sent(&out, |c| matches!(c, Command::Register { .. })).unwrap();
    let out = reply(&mut m, retry + 5, seq, registered(None));
    let complete = sent(&out, |c| matches!(c, Command::Complete { .. })).expect("resent");
    reply(&mut m, retry + 10, complete, Answer::Completed);
    assert!(m.idle());
    assert_eq!(m.summary().completed, 1);
}

#[test]
fn a_drain_finishes_running_work_then_deregisters() {
    let mut m = WorkerMachine::new(config(2));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.drain(200, &mut out);
    assert_eq!(commands(&out), vec![Command::Drain]);
    m.on_event(210, offer(2, 8), &mut out);
    let release = Command::ReleaseGrant {
        grant: GrantId::new(2),
    };
    assert!(commands(&out).contains(&release));
    let mut out = Vec::new();
    m.handler_finished(300, f, Some(Outcome::Complete(Vec::new())), &mut out);
    assert!(!commands(&out)
        .iter()
        .any(|c| matches!(c, Command::Deregister)));
    let complete = sent(&out, |c| matches!(c, Command::Complete { .. })).unwrap();
    let out = reply(&mut m, 310, complete, Answer::Completed);
    let dereg = sent(&out, |c| matches!(c, Command::Deregister)).expect("deregisters");
    let out = reply(&mut m, 320, dereg, Answer::Done);
    assert!(out.contains(&Output::Stopped(Stop::Finished)));
}

#[test]
fn a_drain_that_times_out_cancels_the_handlers_it_waited_for() {
    let mut m = WorkerMachine::new(Config {
        drain_timeout_ms: 500,
        ..config(1)
    });
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.drain(200, &mut out);
    // Keep the lease trusted and the connection alive while the drain runs.
    let mut out = Vec::new();
    m.on_timer(699, &mut out);
    assert!(!out.contains(&Output::Cancel(f)));
    let mut out = Vec::new();
    m.on_timer(700, &mut out);
    assert!(out.contains(&Output::Cancel(f)), "{out:?}");
    assert!(sent(&out, |c| matches!(c, Command::Deregister)).is_some());
}

/// A registered machine whose handler for task 7's first attempt returned `output` at
/// 200 ms, and the sequence number its completion was sent under.
fn completing(output: Vec<u8>) -> (WorkerMachine, Fence, u64) {
    let mut m = WorkerMachine::new(config(1));
    register(&mut m, 0, None);
    let f = fence(7, 1);
    run(&mut m, 100, 1, f);
    let mut out = Vec::new();
    m.handler_finished(200, f, Some(Outcome::Complete(output)), &mut out);
    let complete = sent(&out, |c| matches!(c, Command::Complete { .. })).unwrap();
    (m, f, complete)
}
