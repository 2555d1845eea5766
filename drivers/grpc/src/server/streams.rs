//! Reading a task's output stream in pages: the engine's page from the cursor, cut to
//! what fits one message, with the cursor to go on from.

use super::results::named_task;
use crate::proto::StreamFrame;
use crate::proto::{read_stream_request::Attempts as Which, ReadStreamRequest, ReadStreamResponse};
use crate::status::rejection_status;
use keel_engine::{Attempts, Engine, StreamRead, TaskId};
use tonic::Status;

/// What a frame costs in a response beyond its data: its numbers and field tags.
pub(crate) const FRAME_WIRE_BYTES: u64 = 24;

/// Frames taken from the engine at a time while a page fills, so a page of a long
/// stream copies about what it sends rather than everything after the cursor.
pub(crate) const CHUNK_FRAMES: u32 = 256;

/// One page's question, from a `ReadStream` request or a tail's cursor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageQuery {
    pub task: TaskId,
    pub from: u64,
    /// Frames before this sequence number only.
    pub to: Option<u64>,
    /// At most this many frames.
    pub limit: u32,
    pub attempts: Attempts,
}

/// The engine's choice of attempts for a request's `attempts` field.
pub(crate) fn attempts(which: Option<Which>) -> Attempts {
    match which {
        None | Some(Which::Winning(false)) => Attempts::All,
        Some(Which::Winning(true)) => Attempts::Winning,
        Some(Which::Attempt(n)) => Attempts::Only(n),
    }
}

/// The page a request asks for; `room` is what fits a message.
pub(crate) fn read_stream(
    e: &Engine,
    r: &ReadStreamRequest,
    room: u64,
) -> Result<ReadStreamResponse, Status> {
    let query = PageQuery {
        task: named_task(e, r.job, &r.key, r.task)?,
        from: r.from,
        to: r.to,
        limit: match r.limit {
            0 => u32::MAX,
            n => n,
        },
        attempts: attempts(r.attempts),
    };
    page(e, &query, room)
}

/// Frames from the cursor until the page holds `limit` of them, reaches `to`, is full,
/// or reaches the stream's end. A frame larger than `room` alone is still sent, so a
/// reader never stalls on it.
pub(crate) fn page(e: &Engine, q: &PageQuery, room: u64) -> Result<ReadStreamResponse, Status> {
    let mut left = room;
    let mut out = ReadStreamResponse {
        next: q.from,
        ..Default::default()
    };
    let end = |mut page: ReadStreamResponse| {
        // The cursor never passes `to`, nor goes back before the request's own cursor.
        if let Some(to) = q.to {
            page.next = page.next.min(to).max(q.from);
        }
        Ok(page)
    };
    loop {
        let read = StreamRead {
            from: out.next,
            limit: (q.limit - out.frames.len() as u32).min(CHUNK_FRAMES),
            attempts: q.attempts,
        };
        let chunk = e
            .read_stream(q.task, read)
            .map_err(|x| rejection_status(&x))?;
        (out.first_kept, out.dropped, out.finished) =
            (chunk.first_kept, chunk.dropped, chunk.finished);
        let whole = chunk.frames.len() == read.limit as usize;
        for f in chunk.frames {
            let size = (f.data.len() as u64).saturating_add(FRAME_WIRE_BYTES);
            if q.to.is_some_and(|to| f.seq >= to) || (size > left && !out.frames.is_empty()) {
                out.next = f.seq;
                return end(out);
            }
            left = left.saturating_sub(size);
            out.frames.push(StreamFrame {
                seq: f.seq,
                attempt: f.attempt,
                data: f.data.as_bytes().to_vec(),
            });
        }
        let moved = chunk.next > out.next;
        out.next = chunk.next;
        let limited = out.frames.len() as u32 >= q.limit;
        if !whole || !moved || limited || q.to.is_some_and(|to| out.next >= to) {
            return end(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{
        Accepted, ClientCommand, Effect, Input, InstanceId, JobSpec, Payload, RetryPolicy,
        TaskSpec, WorkerCommand, WorkerId,
    };

    /// One attempt of task "t": granted, accepted, its frames emitted, then `end`.
    fn attempt(
        e: &mut Engine,
        now: u64,
        frames: &[String],
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
        let frames = frames.iter().map(|f| Payload::from(f.as_str())).collect();
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

    /// An engine with job 1 of one task "t" that may run twice, each attempt emitting
    /// its frames: the first fails, the second completes.
    fn two_attempts(first: &[String], second: &[String]) -> Engine {
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
        attempt(&mut e, 1, first, fail);
        let complete = |fence| WorkerCommand::Complete {
            fence,
            output: Payload::default(),
        };
        attempt(&mut e, 10, second, complete);
        e
    }

    #[test]
    fn the_request_chooses_whose_frames_and_a_page_stops_where_the_message_is_full() {
        let e = two_attempts(&["first".into()], &["second".into()]);
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

    #[test]
    fn a_page_runs_across_engine_chunks_and_stops_at_its_limit_or_bound() {
        let named = |from: u64| {
            (from..from + 300)
                .map(|n| format!("f{n}"))
                .collect::<Vec<_>>()
        };
        let e = two_attempts(&named(0), &named(300));
        let ask = |from, to, limit, attempts| {
            let r = ReadStreamRequest {
                job: 1,
                key: "t".into(),
                from,
                to,
                limit,
                attempts,
                ..Default::default()
            };
            let page = read_stream(&e, &r, 1 << 20).unwrap();
            let seqs: Vec<u64> = page.frames.iter().map(|f| f.seq).collect();
            (seqs.first().copied(), seqs.len(), page.next)
        };
        let whole = read_stream(
            &e,
            &ReadStreamRequest {
                job: 1,
                key: "t".into(),
                ..Default::default()
            },
            1 << 20,
        )
        .unwrap();
        let seqs: Vec<u64> = whole.frames.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, (0..600).collect::<Vec<_>>());
        assert_eq!(whole.frames[599].data, b"f599");
        assert_eq!(
            ask(0, None, 0, Some(Which::Attempt(2))),
            (Some(300), 300, 600)
        );
        assert_eq!(
            ask(0, Some(450), 0, Some(Which::Winning(true))),
            (Some(300), 150, 450)
        );
        assert_eq!(
            ask(0, Some(250), 0, Some(Which::Attempt(1))),
            (Some(0), 250, 250)
        );
        // Nothing of attempt 2 before 100: the cursor still moves to the bound.
        assert_eq!(
            ask(0, Some(100), 0, Some(Which::Attempt(2))),
            (None, 0, 100)
        );
        assert_eq!(ask(500, Some(400), 0, None), (None, 0, 500));
        assert_eq!(ask(10, None, 300, None), (Some(10), 300, 310));
        assert_eq!(ask(590, Some(1000), 0, None), (Some(590), 10, 600));
    }
}
