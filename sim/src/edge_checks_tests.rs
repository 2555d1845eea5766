//! The edge checks against hand-made pages: each test breaks one rule the check must
//! catch, beside pages kept within it, which must pass.

use super::*;
use crate::work::frame_of;
use keel_engine::{
    Accepted, Config, EdgePolicy, Input, InstanceId, Payload, StreamEdge, StreamFrame, StreamMode,
    TaskSpec, WorkerCommand, WorkerId,
};

const P: TaskId = TaskId::new(1);
const C: TaskId = TaskId::new(2);

/// An engine whose producer t1 holds its first lease (epoch 1), and checks that know
/// consumer t2 reads it under `policy`.
fn setup(policy: EdgePolicy) -> (Engine, EdgeChecks) {
    setup_from(policy, StreamMode::Durable)
}

/// [`setup`] with the producer's stream kept as `mode` says.
fn setup_from(policy: EdgePolicy, mode: StreamMode) -> (Engine, EdgeChecks) {
    let mut consumer = TaskSpec::new("c");
    consumer.stream_from = vec![StreamEdge {
        from: "p".into(),
        policy,
    }];
    let mut producer = TaskSpec::new("p");
    producer.stream = mode;
    let spec = JobSpec::new("j", vec![producer, consumer]);
    let mut engine = Engine::new(Config::default());
    let w = WorkerId::new("w");
    let i = InstanceId::new(1);
    let register = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 2,
    };
    engine.apply(1, Input::worker(&w, i, register));
    engine.apply(
        2,
        Input::Client(keel_engine::ClientCommand::SubmitJob(spec.clone())),
    );
    let out = engine.apply(
        3,
        Input::worker(&w, i, WorkerCommand::RequestWork { credits: 1 }),
    );
    let grant = out
        .effects
        .iter()
        .find_map(|e| match e {
            keel_engine::Effect::GrantOffered { grant, .. } => Some(*grant),
            _ => None,
        })
        .expect("a grant");
    let accepted = engine.apply(
        4,
        Input::worker(&w, i, WorkerCommand::AcceptGrant { grant }),
    );
    assert!(matches!(
        accepted.reply,
        Some(Ok(Accepted::LeaseStarted { .. }))
    ));
    let mut checks = EdgeChecks::default();
    checks.admitted(P, &spec);
    (engine, checks)
}

fn fence(task: TaskId, attempt: u32, epoch: u64) -> Fence {
    Fence {
        task,
        attempt,
        epoch,
    }
}

/// A page of frames (seq, producer epoch, k), of attempt 1.
fn page(frames: &[(u64, u64, u8)], next: u64) -> EdgePage {
    EdgePage {
        producer: P,
        frames: frames
            .iter()
            .map(|&(seq, epoch, k)| StreamFrame {
                seq,
                attempt: 1,
                data: Payload::from(frame_of(fence(P, 1, epoch), k)),
            })
            .collect(),
        next,
        skipped: 0,
        acked: 0,
        dropped: 0,
        end: None,
    }
}

/// The producer's first lease emits frames 1 to `n` (sequence numbers 0 to n - 1).
fn emit(engine: &mut Engine, n: u8) {
    let p1 = fence(P, 1, 1);
    let frames = (1..=n).map(|k| Payload::from(frame_of(p1, k))).collect();
    let w = WorkerId::new("w");
    let emit = WorkerCommand::Emit {
        fence: p1,
        from: 0,
        frames,
    };
    let out = engine.apply(5, Input::worker(&w, InstanceId::new(1), emit));
    assert!(matches!(out.reply, Some(Ok(_))), "{:?}", out.reply);
}

/// The first read by consumer attempt 1 of `page`, after the producer emitted
/// `emitted` frames into a stream kept as `mode`.
fn first_read_from(
    policy: EdgePolicy,
    mode: StreamMode,
    emitted: u8,
    page: &EdgePage,
) -> Result<(), (Check, String)> {
    let (mut engine, mut checks) = setup_from(policy, mode);
    if emitted > 0 {
        emit(&mut engine, emitted);
    }
    checks.read(&engine, fence(C, 1, 1), "p", page)
}

/// [`first_read_from`] a durable stream.
fn first_read(policy: EdgePolicy, emitted: u8, page: &EdgePage) -> Result<(), (Check, String)> {
    first_read_from(policy, StreamMode::Durable, emitted, page)
}

fn failed(r: Result<(), (Check, String)>) -> Check {
    r.expect_err("the check must fail").0
}

#[test]
fn frames_in_order_of_the_latest_lease_pass_and_a_repeat_fails_edge_order() {
    let (engine, mut checks) = setup(EdgePolicy::Fifo);
    let c1 = fence(C, 1, 1);
    checks
        .read(&engine, c1, "p", &page(&[(0, 1, 1), (1, 1, 2)], 2))
        .unwrap();
    checks
        .read(&engine, c1, "p", &page(&[(2, 1, 3)], 3))
        .unwrap();
    let again = page(&[(2, 1, 3)], 3);
    assert_eq!(
        failed(checks.read(&engine, c1, "p", &again)),
        Check::EdgeOrder
    );
}

#[test]
fn a_frame_without_the_one_before_fails_edge_lost_on_fifo_only() {
    let skip = page(&[(0, 1, 1), (2, 1, 3)], 3);
    assert_eq!(
        failed(first_read(EdgePolicy::Fifo, 0, &skip)),
        Check::EdgeLost
    );
    let (engine, mut checks) = setup_from(EdgePolicy::Broadcast, StreamMode::Newest);
    checks.read(&engine, fence(C, 1, 1), "p", &skip).unwrap();
    let (engine, mut checks) = setup(EdgePolicy::Broadcast);
    assert_eq!(
        failed(checks.read(&engine, fence(C, 1, 1), "p", &skip)),
        Check::EdgeLost,
        "a broadcast edge from a durable stream skips nothing"
    );
}

#[test]
fn a_kept_frame_passed_over_fails_edge_lost_unless_the_policy_lets_it_go() {
    // The producer kept frames 0..3; a read from 0 that gives only 2 passed over 0 and 1.
    let passes_over = page(&[(2, 1, 3)], 3);
    first_read_from(EdgePolicy::Broadcast, StreamMode::Newest, 3, &passes_over)
        .expect("a newest-mode stream kept only frame 2");
    let bounded = StreamMode::Bounded { frames: 3 };
    assert_eq!(
        failed(first_read_from(
            EdgePolicy::Broadcast,
            bounded,
            3,
            &passes_over
        )),
        Check::EdgeLost,
        "frames 0 and 1 are kept, so broadcast owes them"
    );
}

#[test]
fn a_newest_edge_gives_the_newest_kept_frame_or_fails_edge_lost() {
    first_read(EdgePolicy::Newest, 3, &page(&[(2, 1, 3)], 3)).expect("frame 2 is the newest");
    assert_eq!(
        failed(first_read(EdgePolicy::Newest, 3, &page(&[(1, 1, 2)], 2))),
        Check::EdgeLost,
        "frame 1 is not the newest"
    );
    assert_eq!(
        failed(first_read(EdgePolicy::Newest, 3, &page(&[], 3))),
        Check::EdgeLost,
        "a read past frame 2 without it loses it"
    );
}

#[test]
fn a_drop_oldest_edge_drops_only_frames_with_capacity_newer_ones_and_counts_them() {
    let policy = EdgePolicy::Bounded {
        capacity: 2,
        on_full: keel_engine::OnFull::DropOldest,
    };
    // Frames 0..4 kept; the read gives 2 and 3. Frames 0 and 1 have two newer ones.
    let mut kept_two = page(&[(2, 1, 3), (3, 1, 4)], 4);
    kept_two.dropped = 2;
    first_read(policy, 4, &kept_two).expect("two dropped, two counted");
    kept_two.dropped = 1;
    assert_eq!(
        failed(first_read(policy, 4, &kept_two)),
        Check::EdgeLost,
        "a drop not counted"
    );
    let mut kept_one = page(&[(3, 1, 4)], 4);
    kept_one.dropped = 3;
    assert_eq!(
        failed(first_read(policy, 4, &kept_one)),
        Check::EdgeLost,
        "frame 2 has only one newer frame"
    );
}

#[test]
fn a_frame_of_an_older_lease_fails_edge_stale() {
    let old = page(&[(0, 0, 1)], 1);
    assert_eq!(
        failed(first_read(EdgePolicy::Newest, 0, &old)),
        Check::EdgeStale
    );
}

#[test]
fn a_newest_edge_giving_two_frames_fails_edge_order() {
    let two = page(&[(0, 1, 1), (1, 1, 2)], 2);
    assert_eq!(
        failed(first_read(EdgePolicy::Newest, 0, &two)),
        Check::EdgeOrder
    );
}

#[test]
fn a_frame_below_an_acknowledged_cursor_fails_edge_redelivered() {
    let (engine, mut checks) = setup(EdgePolicy::Fifo);
    checks
        .read(
            &engine,
            fence(C, 1, 1),
            "p",
            &page(&[(0, 1, 1), (1, 1, 2)], 2),
        )
        .unwrap();
    checks.acknowledged(C, "p", 2);
    // The retry starts past the acknowledged cursor: fine; from before it: caught.
    checks
        .read(&engine, fence(C, 2, 2), "p", &page(&[(2, 1, 3)], 3))
        .unwrap();
    let again = page(&[(1, 1, 2)], 2);
    assert_eq!(
        failed(checks.read(&engine, fence(C, 3, 3), "p", &again)),
        Check::EdgeRedelivered
    );
}

#[test]
fn a_frame_naming_no_lease_is_refused() {
    let (engine, mut checks) = setup(EdgePolicy::Fifo);
    let mut junk = page(&[(0, 1, 1)], 1);
    junk.frames[0].data = Payload::from("garbage");
    assert_eq!(
        failed(checks.read(&engine, fence(C, 1, 1), "p", &junk)),
        Check::EdgeOrder
    );
    assert_eq!(lease_of("t1.a2.e3.f4"), Some(((2, 3), 4)));
}

#[test]
fn a_frame_repeated_within_one_page_fails_edge_order() {
    let twice = page(&[(0, 1, 1), (0, 1, 1)], 1);
    assert_eq!(
        failed(first_read(EdgePolicy::Broadcast, 0, &twice)),
        Check::EdgeOrder
    );
}

#[test]
fn a_read_that_stops_short_of_the_stream_end_passes_over_nothing() {
    // Frames 0..3 are kept; a page of a limited read gives 0 and 1 and goes on at 2.
    first_read(EdgePolicy::Fifo, 4, &page(&[(0, 1, 1), (1, 1, 2)], 2))
        .expect("frames 2 and 3 are still owed, not lost");
}
