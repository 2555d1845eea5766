//! Reading a task's output stream in pages: the engine's page from the cursor, cut to
//! what fits one message, with the cursor to go on from.

use super::results::named_task;
use crate::proto::StreamFrame;
use crate::proto::{read_stream_request::Attempts as Which, ReadStreamRequest, ReadStreamResponse};
use crate::status::rejection_status;
use keel_engine::{Attempts, Engine, StreamRead};
use tonic::Status;

/// What a frame costs in a response beyond its data: its numbers and field tags.
const FRAME_WIRE_BYTES: u64 = 24;

/// The page a request asks for; `room` is what fits a message. A frame larger than
/// `room` alone is still sent, so a reader never stalls on it.
pub(crate) fn read_stream(
    e: &Engine,
    r: &ReadStreamRequest,
    room: u64,
) -> Result<ReadStreamResponse, Status> {
    let task = named_task(e, r.job, &r.key, r.task)?;
    let attempts = match r.attempts {
        None => Attempts::All,
        Some(Which::Winning(false)) => Attempts::All,
        Some(Which::Winning(true)) => Attempts::Winning,
        Some(Which::Attempt(n)) => Attempts::Only(n),
    };
    let limit = match r.limit {
        0 => u32::MAX,
        n => n,
    };
    let read = StreamRead {
        from: r.from,
        limit,
        attempts,
    };
    let page = e
        .read_stream(task, read)
        .map_err(|x| rejection_status(&x))?;
    let mut left = room;
    let mut frames = Vec::new();
    let mut next = page.next;
    for f in page.frames {
        let size = (f.data.len() as u64).saturating_add(FRAME_WIRE_BYTES);
        if size > left && !frames.is_empty() {
            next = f.seq;
            break;
        }
        left = left.saturating_sub(size);
        frames.push(StreamFrame {
            seq: f.seq,
            attempt: f.attempt,
            data: f.data.as_bytes().to_vec(),
        });
    }
    Ok(ReadStreamResponse {
        frames,
        next,
        first_kept: page.first_kept,
        dropped: page.dropped,
        finished: page.finished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{
        Accepted, ClientCommand, Effect, Input, InstanceId, JobSpec, Payload, RetryPolicy,
        TaskSpec, WorkerCommand, WorkerId,
    };

    /// One attempt of task "t": granted, accepted, one frame emitted, then `end`.
    fn attempt(
        e: &mut Engine,
        now: u64,
        frame: &str,
        end: impl FnOnce(keel_engine::Fence) -> WorkerCommand,
    ) {
        let (w, i) = (WorkerId::new("w"), InstanceId::new(1));
        let ask = WorkerCommand::RequestWork { credits: 1 };
        let out = e.apply(now, Input::worker(&w, i, ask));
        let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
            panic!("no grant: {out:?}");
        };
        let out = e.apply(
            now,
            Input::worker(&w, i, WorkerCommand::AcceptGrant { grant }),
        );
        let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
            panic!("not accepted: {out:?}");
        };
        let frames = vec![Payload::from(frame)];
        let emit = WorkerCommand::Emit {
            fence,
            from: 0,
            frames,
        };
        e.apply(now, Input::worker(&w, i, emit));
        e.apply(now, Input::worker(&w, i, end(fence)));
    }

    fn texts(r: &ReadStreamResponse) -> Vec<(u32, String)> {
        let text = |f: &StreamFrame| (f.attempt, String::from_utf8_lossy(&f.data).into_owned());
        r.frames.iter().map(text).collect()
    }

    #[test]
    fn the_request_chooses_whose_frames_and_a_page_stops_where_the_message_is_full() {
        let mut e = Engine::new(keel_engine::Config::default());
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 1,
        };
        e.apply(
            0,
            Input::worker(&WorkerId::new("w"), InstanceId::new(1), reg),
        );
        let mut t = TaskSpec::new("t");
        t.retry = RetryPolicy {
            max_attempts: 2,
            backoff_base_ms: 1,
            backoff_max_ms: 1,
            jitter_pct: 0,
            ..RetryPolicy::default()
        };
        e.apply(
            0,
            Input::Client(ClientCommand::SubmitJob(JobSpec::new("j", vec![t]))),
        );
        let fail = |fence| WorkerCommand::Fail {
            fence,
            error: "again".into(),
            permanent: false,
        };
        attempt(&mut e, 1, "first", fail);
        let complete = |fence| WorkerCommand::Complete {
            fence,
            output: Payload::default(),
        };
        attempt(&mut e, 10, "second", complete);
        let ask = |attempts, room| {
            let r = ReadStreamRequest {
                job: 1,
                key: "t".into(),
                attempts,
                ..Default::default()
            };
            read_stream(&e, &r, room).unwrap()
        };
        let all = ask(None, 1 << 20);
        assert_eq!(texts(&all), [(1, "first".into()), (2, "second".into())]);
        assert_eq!((all.next, all.finished), (2, true));
        assert_eq!(
            texts(&ask(Some(Which::Winning(true)), 1 << 20)),
            [(2, "second".into())]
        );
        assert_eq!(
            texts(&ask(Some(Which::Attempt(1)), 1 << 20)),
            [(1, "first".into())]
        );
        // Room for one frame: the page stops before the second, which comes next.
        let cut = ask(None, 5 + FRAME_WIRE_BYTES);
        assert_eq!((texts(&cut), cut.next), (vec![(1, "first".into())], 1));
    }
}
