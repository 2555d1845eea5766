//! Each part of the stream check catches the corruption it exists for: a restored
//! snapshot with a miscounted, reordered or overfull stream, or frames of an attempt
//! the task never ran, is refused instead of served to readers.

use crate::hostile_snapshots::busy;
use crate::ids::{Fence, TaskId, WorkerId};
use crate::input::{Input, WorkerCommand};
use crate::invariant_checks_tests::caught;
use crate::invariants::{check, InvariantKind};
use crate::spec::Payload;
use crate::spec::StreamMode;
use crate::state::State;
use crate::stream_state::Stream;
use crate::{Engine, InstanceId};

/// Task "a" of `busy`, running under worker w1's first lease.
const A: TaskId = TaskId(1);

/// `busy` with three frames emitted on task "a".
fn streaming() -> State {
    let mut e = Engine { state: busy() };
    let fence = Fence {
        task: A,
        attempt: 1,
        epoch: 1,
    };
    let frames = ["one", "two", "three"].map(Payload::from).to_vec();
    let emit = WorkerCommand::Emit {
        fence,
        from: 0,
        frames,
    };
    let out = e.apply(2, Input::worker(&WorkerId::new("w1"), InstanceId(1), emit));
    assert!(matches!(out.reply, Some(Ok(_))), "{out:?}");
    e.state
}

fn stream(state: &mut State) -> &mut Stream {
    let t = state.tasks.get_mut(&A).expect("task a");
    t.stream.as_deref_mut().expect("a stream")
}

#[test]
fn the_consistent_stream_passes() {
    assert_eq!(check(&streaming()), Ok(()));
}

#[test]
fn a_frame_count_that_does_not_add_up_is_caught() {
    let mut state = streaming();
    stream(&mut state).next_seq += 1;
    caught(
        &state,
        InvariantKind::Stream,
        "keeps 3 frames and dropped 0, but numbered 4",
    );
}

#[test]
fn frames_out_of_order_are_caught() {
    let mut state = streaming();
    stream(&mut state).frames.swap(0, 1);
    caught(&state, InvariantKind::Stream, "frame 0 is out of order");
}

#[test]
fn a_stream_over_its_mode_is_caught() {
    let mut state = streaming();
    state.tasks.get_mut(&A).expect("task a").stream_mode = StreamMode::Bounded { frames: 2 };
    caught(
        &state,
        InvariantKind::Stream,
        "keeps 3 frames, its mode at most 2",
    );
}

#[test]
fn a_frame_of_an_attempt_the_task_never_ran_is_caught() {
    let mut state = streaming();
    let s = stream(&mut state);
    s.frames[2].attempt = 2;
    caught(
        &state,
        InvariantKind::Stream,
        "frame 2 is of attempt 2 epoch 1",
    );
}

#[test]
fn a_segment_past_the_task_is_caught() {
    let mut state = streaming();
    stream(&mut state).segment_epoch = 2;
    caught(
        &state,
        InvariantKind::Stream,
        "last segment (epoch 2, 3 frames)",
    );
}

#[test]
fn miscounted_stream_bytes_are_caught() {
    let mut state = streaming();
    stream(&mut state).bytes -= 1;
    caught(&state, InvariantKind::Stream, "its frames take");
}

#[test]
fn stream_bytes_the_job_does_not_count_are_caught() {
    let mut state = streaming();
    let job = state.tasks.get(&A).expect("task a").job;
    state.jobs.get_mut(&job).expect("its job").stream_bytes -= 1;
    caught(&state, InvariantKind::Count, "stream bytes, its tasks keep");
}

#[test]
fn stream_bytes_over_the_job_limit_are_caught() {
    let mut state = streaming();
    let job = state.tasks.get(&A).expect("task a").job;
    let kept = state.jobs.get(&job).expect("its job").stream_bytes;
    state.config.limits.max_stream_bytes_per_job = kept - 1;
    caught(
        &state,
        InvariantKind::Limit,
        "over max_stream_bytes_per_job",
    );
}
