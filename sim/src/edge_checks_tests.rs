//! The edge checks against hand-made pages: each test breaks one rule the check must
//! catch, beside pages kept within it, which must pass.

use super::*;
use crate::work::frame_of;
use keel_engine::{
    Accepted, Config, EdgePolicy, Input, InstanceId, Payload, StreamEdge, StreamFrame, TaskSpec,
    WorkerCommand, WorkerId,
};

const P: TaskId = TaskId::new(1);
const C: TaskId = TaskId::new(2);

/// An engine whose producer t1 holds its first lease (epoch 1), and checks that know
/// consumer t2 reads it under `policy`.
fn setup(policy: EdgePolicy) -> (Engine, EdgeChecks) {
    let mut consumer = TaskSpec::new("c");
    consumer.stream_from = vec![StreamEdge {
        from: "p".into(),
        policy,
    }];
    let spec = JobSpec::new("j", vec![TaskSpec::new("p"), consumer]);
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
    let (engine, mut checks) = setup(EdgePolicy::Fifo);
    let skip = page(&[(0, 1, 1), (2, 1, 3)], 3);
    assert_eq!(
        failed(checks.read(&engine, fence(C, 1, 1), "p", &skip)),
        Check::EdgeLost
    );
    let (engine, mut checks) = setup(EdgePolicy::Broadcast);
    checks.read(&engine, fence(C, 1, 1), "p", &skip).unwrap();
}

#[test]
fn a_frame_of_an_older_lease_fails_edge_stale() {
    let (engine, mut checks) = setup(EdgePolicy::Newest);
    let old = page(&[(0, 0, 1)], 1);
    assert_eq!(
        failed(checks.read(&engine, fence(C, 1, 1), "p", &old)),
        Check::EdgeStale
    );
}

#[test]
fn a_newest_edge_giving_two_frames_fails_edge_order() {
    let (engine, mut checks) = setup(EdgePolicy::Newest);
    let two = page(&[(0, 1, 1), (1, 1, 2)], 2);
    assert_eq!(
        failed(checks.read(&engine, fence(C, 1, 1), "p", &two)),
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
