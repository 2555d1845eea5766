//! Output streams: frames numbered per task and read by cursor, fenced like every
//! command on an attempt, appended once however often an emit is resent, one segment
//! per attempt, kept as the task's mode says and counted against the same limits as
//! outputs.

use keel_engine::*;
use keel_engine_harness::{accepted, config, rejection, Harness};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn emit(h: &mut Harness, w: &str, i: u64, fence: Fence, from: u64, texts: &[&str]) -> Outputs {
    h.emit(w, i, fence, from, texts)
}

/// The reply of an accepted emit: (next, dropped, duplicate).
fn emitted(out: &Outputs) -> (u64, u64, bool) {
    match accepted(out) {
        Accepted::Emitted {
            next,
            dropped,
            duplicate,
            ..
        } => (*next, *dropped, *duplicate),
        other => panic!("expected an emit to be accepted, got {other:?}"),
    }
}

fn read(h: &Harness, task: TaskId, from: u64, limit: u32, attempts: Attempts) -> StreamPage {
    let read = StreamRead {
        from,
        limit,
        attempts,
    };
    h.engine.read_stream(task, read).expect("the task exists")
}

/// The frames of a page as (seq, attempt, text).
fn seen(page: &StreamPage) -> Vec<(u64, u32, String)> {
    let text = |f: &StreamFrame| String::from_utf8_lossy(&f.data.0).into_owned();
    page.frames
        .iter()
        .map(|f| (f.seq, f.attempt, text(f)))
        .collect()
}

fn one_task(h: &mut Harness, stream: StreamMode) -> TaskId {
    let mut task = TaskSpec::new("t");
    task.stream = stream;
    h.submit(JobSpec::new("streaming", vec![task])).unwrap().1
}

#[test]
fn frames_are_numbered_per_task_and_paged_by_cursor() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Durable);
    let empty = read(&h, t, 0, 10, Attempts::All);
    assert_eq!(
        (empty.frames.len(), empty.next, empty.finished),
        (0, 0, false)
    );
    let fence = h.take("w", 1);
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 0, &["a", "b"])),
        (2, 0, false)
    );
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 2, &["c"])),
        (3, 0, false)
    );

    let first = read(&h, t, 0, 2, Attempts::All);
    assert_eq!(seen(&first), [(0, 1, "a".into()), (1, 1, "b".into())]);
    assert_eq!(first.next, 2);
    let second = read(&h, t, first.next, 2, Attempts::All);
    assert_eq!(seen(&second), [(2, 1, "c".into())]);
    assert_eq!((second.next, second.finished), (3, false));
    // Past the end a reader waits where it is; a page of 0 frames moves nothing.
    assert_eq!(read(&h, t, 3, 5, Attempts::All).next, 3);
    assert_eq!(read(&h, t, 1, 0, Attempts::All).next, 1);

    h.complete("w", 1, fence);
    let done = read(&h, t, 3, 5, Attempts::All);
    assert!(done.finished && done.frames.is_empty());
    // A finished task's frames stay readable with the job.
    assert_eq!(read(&h, t, 0, 9, Attempts::Winning).frames.len(), 3);
    h.check_replay();
}

#[test]
fn a_resent_emit_appends_nothing_twice_and_a_gap_is_refused() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Durable);
    let fence = h.take("w", 1);
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 0, &["a", "b"])),
        (2, 0, false)
    );
    // The reply was lost: the same emit again is a duplicate.
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 0, &["a", "b"])),
        (2, 0, true)
    );
    // An emit overlapping what was appended adds only its new frames.
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 1, &["b", "c"])),
        (3, 0, false)
    );
    // An emit after a lost one leaves a gap: refused, nothing appended.
    let gap = emit(&mut h, "w", 1, fence, 5, &["f"]);
    assert_eq!(
        rejection(&gap),
        &Rejection::StreamGap {
            task: t,
            expected: 3,
            got: 5
        }
    );
    let texts: Vec<_> = seen(&read(&h, t, 0, 9, Attempts::All))
        .into_iter()
        .map(|f| f.2)
        .collect();
    assert_eq!(texts, ["a", "b", "c"]);
    h.check_replay();
}

#[test]
fn a_zombie_cannot_emit_and_each_attempt_is_a_segment() {
    let mut h = Harness::new(config());
    h.register("zombie", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Durable);
    let stale = h.take("zombie", 1);
    emit(&mut h, "zombie", 1, stale, 0, &["z0"]);
    // The zombie falls silent past its liveness timeout and loses the task.
    h.tick(h.now + 20_000);
    h.register("w", 1, &[], 1).unwrap();
    let fence = h.take("w", 1);
    assert_eq!(fence.task, t);
    let late = emit(&mut h, "zombie", 1, stale, 1, &["z1"]);
    assert!(rejection(&late).is_fencing() || rejection(&late).code() == "unknown_worker");
    // The new attempt counts its own frames from 0.
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 0, &["w0", "w1"])),
        (2, 0, false)
    );
    let all = read(&h, t, 0, 9, Attempts::All);
    assert_eq!(
        seen(&all),
        [
            (0, 1, "z0".into()),
            (1, 2, "w0".into()),
            (2, 2, "w1".into())
        ]
    );
    assert_eq!(
        seen(&read(&h, t, 0, 9, Attempts::Only(1))),
        [(0, 1, "z0".into())]
    );
    // No attempt has won yet, so the cursor stays for a follower to read from again;
    // then only the winner's frames are its.
    let early = read(&h, t, 0, 9, Attempts::Winning);
    assert!(early.frames.is_empty());
    assert_eq!((early.next, early.finished), (0, false));
    h.complete("w", 1, fence);
    let winning = read(&h, t, 0, 9, Attempts::Winning);
    assert_eq!(seen(&winning), [(1, 2, "w0".into()), (2, 2, "w1".into())]);
    assert_eq!(winning.next, 3);
    h.check_replay();
}

#[test]
fn bounded_and_newest_streams_keep_their_last_frames() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 2).unwrap();
    let bounded = one_task(&mut h, StreamMode::Bounded { frames: 2 });
    let mut newest = TaskSpec::new("t");
    newest.stream = StreamMode::Newest;
    let newest = h.submit(JobSpec::new("summary", vec![newest])).unwrap().1;
    let (a, b) = (h.take("w", 1), h.take("w", 1));
    let (fb, fn_) = if a.task == bounded { (a, b) } else { (b, a) };
    assert_eq!(fn_.task, newest);

    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fb, 0, &["0", "1", "2"])),
        (3, 1, false)
    );
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fb, 3, &["3", "4", "5", "6"])),
        (7, 4, false)
    );
    let page = read(&h, bounded, 0, 9, Attempts::All);
    assert_eq!(seen(&page), [(5, 1, "5".into()), (6, 1, "6".into())]);
    assert_eq!((page.first_kept, page.dropped, page.next), (5, 5, 7));

    emit(&mut h, "w", 1, fn_, 0, &["10%"]);
    emit(&mut h, "w", 1, fn_, 1, &["50%", "90%"]);
    let page = read(&h, newest, 0, 9, Attempts::All);
    assert_eq!(seen(&page), [(2, 1, "90%".into())]);
    assert_eq!((page.first_kept, page.dropped), (2, 2));
    h.check_replay();
}

#[test]
fn frames_count_against_the_job_and_store_limits() {
    let mut cfg = config();
    cfg.limits.max_payload_bytes = 200;
    cfg.limits.max_stream_bytes_per_job = 2 * (100 + FRAME_OVERHEAD);
    cfg.limits.max_output_bytes_per_job = 200;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Durable);
    let fence = h.take("w", 1);
    let stored = h.engine.usage().stored_bytes;

    // An emit is one message: its frames' data within the payload limit.
    let big = "x".repeat(201);
    let refused = emit(&mut h, "w", 1, fence, 0, &[&big]);
    assert_eq!(
        rejection(&refused),
        &Rejection::StreamOverLimit {
            task: t,
            limit: "max_payload_bytes".into(),
            bytes: 201,
            max: 200
        }
    );
    let hundred = "y".repeat(100);
    assert_eq!(emitted(&emit(&mut h, "w", 1, fence, 0, &[&hundred])).0, 1);
    assert_eq!(emitted(&emit(&mut h, "w", 1, fence, 1, &[&hundred])).0, 2);
    assert_eq!(
        h.engine.usage().stored_bytes,
        stored + 2 * (100 + FRAME_OVERHEAD)
    );
    // A durable stream keeps every frame, so even an empty one no longer fits.
    let full = emit(&mut h, "w", 1, fence, 2, &[""]);
    assert_eq!(
        rejection(&full),
        &Rejection::StreamOverLimit {
            task: t,
            limit: "max_stream_bytes_per_job".into(),
            bytes: 3 * FRAME_OVERHEAD + 200,
            max: 2 * (100 + FRAME_OVERHEAD)
        }
    );
    assert_eq!(read(&h, t, 0, 9, Attempts::All).next, 2);
    // The attempt goes on, and completes with an output as large as the job's outputs
    // may be: frames are counted apart from outputs.
    h.worker(
        "w",
        1,
        WorkerCommand::Complete {
            fence,
            output: Payload::from("o".repeat(200).as_str()),
        },
    );
    assert_eq!(h.task(t).status.label(), "succeeded");
    h.check_replay();
}

#[test]
fn a_bounded_stream_makes_room_instead_of_refusing() {
    let mut cfg = config();
    cfg.limits.max_payload_bytes = 100;
    cfg.limits.max_stream_bytes_per_job = 2 * (10 + FRAME_OVERHEAD);
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Bounded { frames: 2 });
    let fence = h.take("w", 1);
    let ten = "z".repeat(10);
    for from in 0..20 {
        let out = emit(&mut h, "w", 1, fence, from, &[&ten]);
        assert_eq!(emitted(&out).0, from + 1);
    }
    assert_eq!(read(&h, t, 0, 9, Attempts::All).first_kept, 18);
}

#[test]
fn forgetting_the_job_lets_its_frames_go() {
    let mut cfg = config();
    cfg.retention_ms = 1_000;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let before = h.engine.usage().stored_bytes;
    let t = one_task(&mut h, StreamMode::Durable);
    let fence = h.take("w", 1);
    emit(
        &mut h,
        "w",
        1,
        fence,
        0,
        &["kept until the job is forgotten"],
    );
    h.complete("w", 1, fence);
    assert!(h.engine.usage().stored_bytes > before);
    h.tick(h.now + 2_000);
    assert_eq!(h.engine.usage().stored_bytes, before);
    assert_eq!(
        h.engine.read_stream(
            t,
            StreamRead {
                from: 0,
                limit: 1,
                attempts: Attempts::All
            }
        ),
        Err(Rejection::UnknownTask { task: t })
    );
}

#[test]
fn a_bounded_stream_keeping_no_frame_is_refused_at_submission() {
    let mut h = Harness::new(config());
    let mut task = TaskSpec::new("t");
    task.stream = StreamMode::Bounded { frames: 0 };
    let refused = h.submit(JobSpec::new("bad", vec![task])).unwrap_err();
    assert_eq!(refused.code(), "invalid_job");
    assert!(refused.to_string().contains("stream.frames"), "{refused}");
}

#[test]
fn streams_survive_a_snapshot() {
    let mut h = Harness::new(config());
    h.register("w", 1, &[], 1).unwrap();
    let t = one_task(&mut h, StreamMode::Bounded { frames: 3 });
    let fence = h.take("w", 1);
    emit(&mut h, "w", 1, fence, 0, &["a", "b", "c", "d"]);
    let restored = Engine::restore(&h.engine.snapshot()).expect("restores");
    assert_eq!(restored.digest(), h.engine.digest());
    let want = read(&h, t, 0, 9, Attempts::All);
    let got = restored.read_stream(
        t,
        StreamRead {
            from: 0,
            limit: 9,
            attempts: Attempts::All,
        },
    );
    assert_eq!(got, Ok(want));
}

#[test]
fn an_emit_of_exactly_the_payload_limit_is_accepted() {
    let mut cfg = config();
    cfg.limits.max_payload_bytes = 200;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    one_task(&mut h, StreamMode::Durable);
    let fence = h.take("w", 1);
    let (half, rest) = ("x".repeat(150), "y".repeat(50));
    assert_eq!(
        emitted(&emit(&mut h, "w", 1, fence, 0, &[&half, &rest])).0,
        2
    );
    let over = emit(&mut h, "w", 1, fence, 2, &[&half, &rest, "z"]);
    assert_eq!(rejection(&over).code(), "stream_over_limit");
}

/// One step of a producer: an emit that starts where its lease's frames end (`back`
/// 0), resends one to three of them, or leaves a gap (`back` 4); or, with `lose`, the
/// attempt fails and the next one takes over with its own segment.
#[derive(Clone, Debug)]
struct Step {
    back: u8,
    count: u8,
    lose: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..5, 0u8..4, proptest::bool::weighted(0.1)).prop_map(|(back, count, lose)| Step {
        back,
        count,
        lose,
    })
}

fn mode() -> impl Strategy<Value = StreamMode> {
    prop_oneof![
        Just(StreamMode::Durable),
        (1u32..5).prop_map(|frames| StreamMode::Bounded { frames }),
        Just(StreamMode::Newest),
    ]
}

/// Replays `steps` against the engine and a model: every frame past those its lease
/// appended is appended once, in order; a gap is refused; the stream reads back as
/// the model's last frames, as many as the mode keeps.
fn producer(mode: StreamMode, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut cfg = config();
    // Failing attempts on purpose must not blacklist the only worker.
    cfg.blacklist.threshold = 1_000;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 1).unwrap();
    let mut task = TaskSpec::new("t");
    task.stream = mode;
    task.retry = RetryPolicy {
        max_attempts: 1_000,
        backoff_base_ms: 0,
        backoff_max_ms: 0,
        jitter_pct: 0,
        ..RetryPolicy::default()
    };
    let t = h.submit(JobSpec::new("producer", vec![task])).unwrap().1;
    let mut fence = h.take("w", 1);
    let (mut have, mut all) = (0u64, Vec::<String>::new());
    for s in steps {
        if s.lose {
            h.fail("w", 1, fence, false);
            fence = h.take("w", 1);
            have = 0;
            continue;
        }
        let from = match s.back {
            4 => have + 1,
            back => have.saturating_sub(u64::from(back)),
        };
        let texts: Vec<String> = (from..from + u64::from(s.count))
            .map(|k| format!("{}.{k}", fence.epoch))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = emit(&mut h, "w", 1, fence, from, &refs);
        if from > have {
            prop_assert_eq!(rejection(&out).code(), "stream_gap");
            continue;
        }
        let end = from + u64::from(s.count);
        let (next, _, duplicate) = emitted(&out);
        prop_assert_eq!(next, have.max(end));
        prop_assert_eq!(duplicate, s.count > 0 && end <= have);
        all.extend(texts.into_iter().skip((have - from) as usize));
        have = next;
        let page = read(&h, t, 0, u32::MAX, Attempts::All);
        let keeps = mode
            .keeps()
            .map_or(all.len(), |k| (k as usize).min(all.len()));
        let want = &all[all.len() - keeps..];
        let got: Vec<String> = seen(&page).into_iter().map(|f| f.2).collect();
        prop_assert_eq!(got.as_slice(), want);
        prop_assert_eq!(page.dropped, (all.len() - keeps) as u64);
        prop_assert_eq!(page.next, all.len() as u64);
    }
    h.check_replay();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_is_appended_once_in_order_and_kept_as_the_mode_says(
        mode in mode(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        producer(mode, &steps)?;
    }
}
