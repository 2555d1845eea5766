//! Streaming edges: a consumer is released once its producer starts, reads the
//! producer's frames through its edge's policy at a cursor it acknowledges, resumes
//! there when retried, never gets an earlier producer lease's frames once a newer one
//! has begun, and ends by its policy when the producer fails. A bounded edge's room is
//! what the producer's emits meet.

use keel_engine::*;
use keel_engine_harness::{accepted, config, rejection, Harness};

fn emit(h: &mut Harness, w: &str, fence: Fence, from: u64, texts: &[&str]) -> Outputs {
    h.emit(w, 1, fence, from, texts)
}

/// How many frames the producer's attempt has appended after the emit.
fn next_of(out: &Outputs) -> u64 {
    match accepted(out) {
        Accepted::Emitted { next, .. } => *next,
        other => panic!("expected an emit to be accepted, got {other:?}"),
    }
}

fn ack(h: &mut Harness, w: &str, fence: Fence, cursor: u64) -> Outputs {
    let from = "p".to_string();
    h.worker(
        w,
        1,
        WorkerCommand::Ack {
            fence,
            from,
            cursor,
        },
    )
}

fn read(h: &Harness, consumer: TaskId, from: Option<u64>) -> EdgePage {
    let read = EdgeRead { from, limit: 100 };
    h.engine
        .read_edge(consumer, "p", read)
        .expect("the edge exists")
}

/// The texts of a page's frames.
fn texts(page: &EdgePage) -> Vec<String> {
    let text = |f: &StreamFrame| String::from_utf8_lossy(f.data.as_bytes()).into_owned();
    page.frames.iter().map(text).collect()
}

/// A job of producer `p` and consumer `c` streaming from it under `policy`; workers
/// `pw` (which only runs `p`) and `cw` (which only runs `c`) registered. Returns (job, producer, consumer).
fn pair(h: &mut Harness, policy: EdgePolicy) -> (JobId, TaskId, TaskId) {
    h.register("pw", 1, &["p"], 1).unwrap();
    h.register("cw", 1, &["c"], 1).unwrap();
    let mut c = TaskSpec::new("c").requires(&["c"]);
    c.stream_from = vec![StreamEdge {
        from: "p".into(),
        policy,
    }];
    let p = TaskSpec::new("p").requires(&["p"]);
    let (job, p) = h.submit(JobSpec::new("edge", vec![p, c])).unwrap();
    (job, p, TaskId::nth_after(p, 1))
}

#[test]
fn a_consumer_is_released_when_its_producer_starts_and_reads_every_frame_in_order() {
    let mut h = Harness::new(config());
    let (job, p, c) = pair(&mut h, EdgePolicy::Fifo);
    h.tick(h.now + 1);
    assert_eq!(
        h.task(c).status,
        TaskStatus::Waiting,
        "until the producer starts"
    );
    let pf = h.take("pw", 1);
    assert_eq!(pf.task, p);
    assert_eq!(h.task(c).status, TaskStatus::Queued);
    let cf = h.take("cw", 1);
    assert_eq!(cf.task, c, "the consumer runs beside its producer");
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 0, &["a", "b", "c"])), 3);
    let page = read(&h, c, None);
    assert_eq!(texts(&page), ["a", "b", "c"]);
    assert_eq!((page.next, page.skipped, page.end.clone()), (3, 0, None));
    assert!(matches!(
        accepted(&ack(&mut h, "cw", cf, 2)),
        Accepted::Acked {
            acked: 2,
            duplicate: false,
            ..
        }
    ));
    // An acknowledgement is monotone, and bounded by the frames there are.
    assert!(matches!(
        accepted(&ack(&mut h, "cw", cf, 1)),
        Accepted::Acked {
            acked: 2,
            duplicate: true,
            ..
        }
    ));
    assert_eq!(rejection(&ack(&mut h, "cw", cf, 4)).code(), "ack_past_end");
    // The consumer's retry resumes from its acknowledged cursor.
    h.fail("cw", 1, cf, false);
    assert_eq!(texts(&read(&h, c, None)), ["c"]);
    h.complete("pw", 1, pf);
    let end = read(&h, c, Some(3));
    assert_eq!(end.end, Some(TaskOutcome::Succeeded), "end of stream");
    let last = read(&h, c, Some(2));
    assert_eq!(texts(&last), ["c"], "the last frame comes with the end");
    assert!(last.end.is_some());
    let none = EdgeRead {
        from: Some(2),
        limit: 0,
    };
    let page = h.engine.read_edge(c, "p", none).unwrap();
    assert!(
        page.end.is_none(),
        "not the end until every frame owed was read"
    );
    h.tick(h.now + 2_000);
    let cf = h.take("cw", 1);
    h.complete("cw", 1, cf);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Succeeded));
    let result = h.engine.job_result(job).unwrap();
    let keys: Vec<&str> = result.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["c"], "the producer streamed from is not a sink");
    h.check_replay();
}

#[test]
fn a_retried_producer_is_a_new_segment_and_its_earlier_frames_are_not_delivered() {
    let mut h = Harness::new(config());
    let (_, _, c) = pair(&mut h, EdgePolicy::Fifo);
    let first = h.take("pw", 1);
    emit(&mut h, "pw", first, 0, &["old0", "old1", "old2"]);
    let cf = h.take("cw", 1);
    ack(&mut h, "cw", cf, 1);
    h.fail("pw", 1, first, false);
    // Between leases the old frames are still the latest: delivered.
    assert_eq!(texts(&read(&h, c, None)), ["old1", "old2"]);
    h.tick(h.now + 2_000);
    let second = h.take("pw", 1);
    assert_eq!(second.attempt, 2);
    // Once the new lease holds the task, the old lease's unread frames are skipped.
    let page = read(&h, c, None);
    assert!(page.frames.is_empty());
    assert_eq!((page.next, page.skipped), (3, 2));
    emit(&mut h, "pw", second, 0, &["new0"]);
    let page = read(&h, c, Some(page.next));
    assert_eq!(texts(&page), ["new0"]);
    assert_eq!(page.frames[0].attempt, 2, "frames carry their attempt");
    h.check_replay();
}

#[test]
fn a_full_blocking_edge_takes_what_fits_and_refuses_the_rest_until_acknowledged() {
    let mut h = Harness::new(config());
    let on_full = OnFull::Block;
    let (_, p, c) = pair(
        &mut h,
        EdgePolicy::Bounded {
            capacity: 2,
            on_full,
        },
    );
    let pf = h.take("pw", 1);
    let cf = h.take("cw", 1);
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 0, &["a", "b", "x"])), 2);
    let full = emit(&mut h, "pw", pf, 2, &["x"]);
    assert_eq!(
        rejection(&full),
        &Rejection::StreamFull {
            task: p,
            consumer: c,
            capacity: 2
        }
    );
    assert!(rejection(&full).retryable());
    ack(&mut h, "cw", cf, 1);
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 2, &["x", "y"])), 3);
    assert_eq!(texts(&read(&h, c, None)), ["b", "x"]);
    // A finished consumer holds its producer back no more.
    h.complete("cw", 1, cf);
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 3, &["y", "z", "w"])), 6);
    h.check_replay();
}

#[test]
fn a_drop_oldest_edge_moves_the_consumer_past_the_frames_it_drops() {
    let mut h = Harness::new(config());
    let on_full = OnFull::DropOldest;
    let (_, _, c) = pair(
        &mut h,
        EdgePolicy::Bounded {
            capacity: 2,
            on_full,
        },
    );
    let pf = h.take("pw", 1);
    h.take("cw", 1);
    assert_eq!(
        next_of(&emit(&mut h, "pw", pf, 0, &["a", "b", "c", "d"])),
        4
    );
    let page = read(&h, c, None);
    assert_eq!(texts(&page), ["c", "d"]);
    assert_eq!((page.skipped, page.dropped), (2, 2));
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 4, &["e"])), 5);
    let page = read(&h, c, None);
    assert_eq!(texts(&page), ["d", "e"]);
    assert_eq!(page.dropped, 3);
    h.check_replay();
}

#[test]
fn an_overflowing_error_edge_fails_the_producer_and_skips_the_consumer() {
    let mut h = Harness::new(config());
    let on_full = OnFull::Error;
    let (job, p, c) = pair(
        &mut h,
        EdgePolicy::Bounded {
            capacity: 1,
            on_full,
        },
    );
    let pf = h.take("pw", 1);
    let cf = h.take("cw", 1);
    assert_eq!(next_of(&emit(&mut h, "pw", pf, 0, &["a"])), 1);
    let out = emit(&mut h, "pw", pf, 1, &["b"]);
    assert_eq!(rejection(&out).code(), "stream_full");
    assert!(matches!(
        h.task(p).status,
        TaskStatus::Done(TaskOutcome::Failed { .. })
    ));
    // The running consumer was told to stop, and ends skipped.
    assert!(out.effects.iter().any(|e| matches!(
        e,
        Effect::LeaseRevoked { fence, reason: EndReason::DependencyUnsatisfied, .. } if *fence == cf
    )));
    assert_eq!(h.task(c).status, TaskStatus::Done(TaskOutcome::Skipped));
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn a_newest_edge_delivers_only_the_latest_frame() {
    let mut h = Harness::new(config());
    let (_, _, c) = pair(&mut h, EdgePolicy::Newest);
    let pf = h.take("pw", 1);
    h.take("cw", 1);
    emit(&mut h, "pw", pf, 0, &["1", "2", "3"]);
    let page = read(&h, c, None);
    assert_eq!(texts(&page), ["3"]);
    assert_eq!((page.next, page.skipped), (3, 2));
    assert!(read(&h, c, Some(3)).frames.is_empty());
    h.check_replay();
}

#[test]
fn a_producer_that_never_starts_skips_its_waiting_consumer_and_cancel_fails_the_job() {
    let mut h = Harness::new(config());
    h.register("pw", 1, &[], 1).unwrap();
    let mut c = TaskSpec::new("c").after(GroupKind::AllOf, &["gate"]);
    c.stream_from = vec![StreamEdge {
        from: "p".into(),
        policy: EdgePolicy::Broadcast,
    }];
    if let Some(d) = c.deps.as_mut() {
        d.on_unsatisfied = UnsatisfiedPolicy::Cancel;
    }
    let mut p = TaskSpec::new("p").after(GroupKind::AllOf, &["gate"]);
    p.retry.max_attempts = 1;
    let spec = JobSpec::new("never", vec![TaskSpec::new("gate"), p, c]);
    let (job, gate) = h.submit(spec).unwrap();
    let gf = h.take("pw", 1);
    h.fail("pw", 1, gf, true);
    let view = |i: u64| h.task(TaskId::nth_after(gate, i)).status;
    assert_eq!(view(1), TaskStatus::Done(TaskOutcome::Skipped));
    assert!(matches!(
        view(2),
        TaskStatus::Done(TaskOutcome::Cancelled { .. })
    ));
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}

#[test]
fn a_zombie_consumer_cannot_acknowledge() {
    let mut h = Harness::new(config());
    let (_, _, c) = pair(&mut h, EdgePolicy::Fifo);
    let pf = h.take("pw", 1);
    let stale = h.take("cw", 1);
    emit(&mut h, "pw", pf, 0, &["a", "b"]);
    h.fail("cw", 1, stale, false);
    assert!(rejection(&ack(&mut h, "cw", stale, 2)).is_fencing());
    assert_eq!(read(&h, c, None).acked, 0);
    let unknown = h.worker(
        "pw",
        1,
        WorkerCommand::Ack {
            fence: pf,
            from: "nobody".into(),
            cursor: 0,
        },
    );
    assert_eq!(rejection(&unknown).code(), "unknown_edge");
}

fn refusal(tasks: Vec<TaskSpec>) -> String {
    match validate_job(&JobSpec::new("bad", tasks), &Limits::default()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the job was admitted"),
    }
}

fn streams(key: &str, from: &str, policy: EdgePolicy) -> TaskSpec {
    let mut t = TaskSpec::new(key);
    t.stream_from = vec![StreamEdge {
        from: from.into(),
        policy,
    }];
    t
}

#[test]
fn edges_the_engine_cannot_run_are_refused_naming_them() {
    let fifo = EdgePolicy::Fifo;
    assert_eq!(
        refusal(vec![streams("c", "nope", fifo)]),
        "task \"c\" depends on unknown task \"nope\""
    );
    let both = streams("c", "p", fifo).after(GroupKind::AllOf, &["p"]);
    assert_eq!(
        refusal(vec![TaskSpec::new("p"), both]),
        "task \"c\" lists dependency \"p\" twice"
    );
    let cycle = refusal(vec![
        streams("a", "b", fifo),
        TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
    ]);
    assert!(cycle.contains("cycle"), "{cycle}");
    let zero = EdgePolicy::Bounded {
        capacity: 0,
        on_full: OnFull::Block,
    };
    assert_eq!(
        refusal(vec![TaskSpec::new("p"), streams("c", "p", zero)]),
        "task \"c\" streams from \"p\": a bounded edge's capacity must be at least 1"
    );
    let after_end = streams("c", "p", fifo).after(GroupKind::AllOf, &["mid"]);
    let mid = TaskSpec::new("mid").after(GroupKind::AllOf, &["p"]);
    assert_eq!(
        refusal(vec![TaskSpec::new("p"), mid.clone(), after_end]),
        "task \"c\" streams from \"p\": it waits for that task to end through its deps, so it could never read the stream while it runs; name it in deps instead"
    );
    // The same through another producer's start: `q` starts only once `p` has ended.
    let mut two = streams("c", "p", fifo);
    two.stream_from.push(StreamEdge {
        from: "mid".into(),
        policy: fifo,
    });
    assert!(refusal(vec![TaskSpec::new("p"), mid, two]).contains("waits for that task to end"));
    let block = EdgePolicy::Bounded {
        capacity: 4,
        on_full: OnFull::Block,
    };
    let mut one_at_a_time =
        JobSpec::new("serial", vec![TaskSpec::new("p"), streams("c", "p", block)]);
    one_at_a_time.max_concurrency = Some(1);
    let e = validate_job(&one_at_a_time, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("runs one task at a time"), "{e}");
    one_at_a_time.max_concurrency = Some(2);
    assert!(validate_job(&one_at_a_time, &Limits::default()).is_ok());
    // A chain of streams is fine: each stage starts once the one before it has.
    let chain = vec![
        TaskSpec::new("a"),
        streams("b", "a", fifo),
        streams("c", "b", block),
    ];
    assert!(validate_job(&JobSpec::new("chain", chain), &Limits::default()).is_ok());
    let mut newest = TaskSpec::new("p");
    newest.stream = StreamMode::Newest;
    assert_eq!(
        refusal(vec![newest.clone(), streams("c", "p", fifo)]),
        "task \"c\" streams from \"p\": a fifo edge delivers every frame, so the producer's stream must be durable, not newest"
    );
    let ok = JobSpec::new("ok", vec![newest, streams("c", "p", EdgePolicy::Broadcast)]);
    let valid = validate_job(&ok, &Limits::default()).unwrap();
    assert_eq!(valid.result, [1], "a producer streamed from is not a sink");
    assert_eq!(valid.producers, [vec![], vec![0]]);
}

#[test]
fn a_queued_consumer_ended_with_its_producer_makes_room_for_a_parked_task() {
    let mut h = Harness::new(config());
    h.register("pw", 1, &["p"], 1).unwrap();
    let error = EdgePolicy::Bounded {
        capacity: 1,
        on_full: OnFull::Error,
    };
    let mut spec = JobSpec::new(
        "serial",
        vec![
            TaskSpec::new("p"),
            streams("c", "p", error),
            TaskSpec::new("x"),
        ],
    );
    spec.max_concurrency = Some(1);
    let (job, p) = h.submit(spec).unwrap();
    let pf = h.take("pw", 1);
    assert_eq!(pf.task, p);
    let out = emit(&mut h, "pw", pf, 0, &["a", "b"]);
    assert_eq!(rejection(&out).code(), "stream_full");
    // The consumer, queued once the producer's slot was freed, is skipped; the parked
    // task takes the room it leaves.
    let xf = h.take("pw", 1);
    assert_eq!(xf.task, TaskId::nth_after(p, 2));
    h.complete("pw", 1, xf);
    assert_eq!(h.job_outcome(job), Some(JobOutcome::Failed));
    h.check_replay();
}
