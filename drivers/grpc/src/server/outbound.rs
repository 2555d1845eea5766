//! What goes from the coordinator to one worker: a bounded queue of events, framed up to
//! the message size limit, and how the session ends.
//!
//! Nothing here grows with a worker that does not read. Events wait in a queue of
//! `session_queue` entries; frames wait in a channel of [`OUT_FRAMES`], each at most
//! `max_message_bytes`. When the queue is full the session ends with RESOURCE_EXHAUSTED
//! naming `session_queue`, and its grants and leases are the engine's to recover.

use crate::proto::{CoordinatorEvent, CoordinatorFrame};
use crate::status::limit_reached;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Most events in one frame.
const MAX_FRAME_EVENTS: usize = 1024;
/// Frames handed to the transport ahead of the worker reading them.
pub(crate) const OUT_FRAMES: usize = 4;
/// How long an ended session may take to hand its last frames and status over.
const END_GRACE: Duration = Duration::from_secs(1);

pub(crate) type Frames = ReceiverStream<Result<CoordinatorFrame, Status>>;

/// The end of a session, shared by its tasks: the first to end it gives the reason the
/// worker is told (`None`: the session ends without an error).
#[derive(Default)]
pub(crate) struct End {
    token: CancellationToken,
    status: Mutex<Option<Reason>>,
}

/// Why a session ended, and whether the events already queued go out before it.
struct Reason {
    status: Status,
    flush: bool,
}

impl End {
    /// Ends the session after the events already queued (the replies to the commands
    /// read before the end).
    pub(super) fn end(&self, status: Option<Status>) {
        self.set(status.map(|status| Reason {
            status,
            flush: true,
        }));
    }

    /// Ends the session at once with `status`: the worker does not read what is queued.
    fn abandon(&self, status: Status) {
        self.set(Some(Reason {
            status,
            flush: false,
        }));
    }

    fn set(&self, reason: Option<Reason>) {
        if let Some(reason) = reason {
            let mut slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() && !self.token.is_cancelled() {
                *slot = Some(reason);
            }
        }
        self.token.cancel();
    }

    pub(super) async fn ended(&self) {
        self.token.cancelled().await
    }

    fn reason(&self) -> Option<Reason> {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Where a session's events are queued for the worker.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: mpsc::Sender<CoordinatorEvent>,
    end: Arc<End>,
    capacity: usize,
}

impl Queue {
    /// Queues `event`; a full queue ends the session. False once the session ended.
    pub(super) fn push(&self, event: CoordinatorEvent) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.end.abandon(limit_reached(
                    "session_queue",
                    self.capacity as u64,
                    "the worker did not read its session while that many events waited for it",
                ));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Opens a session's outbound side: the queue its tasks push to and the frames the
/// response streams. `hold` lives as long as the framing task.
pub(crate) fn open<H: Send + 'static>(
    capacity: usize,
    max_bytes: usize,
    end: Arc<End>,
    hold: H,
) -> (Queue, Frames) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (out, frames) = mpsc::channel(OUT_FRAMES);
    tokio::spawn(frame_events(rx, out, end.clone(), max_bytes, hold));
    let queue = Queue { tx, end, capacity };
    (queue, ReceiverStream::new(frames))
}

type Out = mpsc::Sender<Result<CoordinatorFrame, Status>>;

/// Batches whatever events wait into frames no larger than `max_bytes` until the session
/// ends; then hands over what is left (unless the worker stopped reading) and the
/// reason, if any, within a short grace period.
async fn frame_events<H>(
    mut events: mpsc::Receiver<CoordinatorEvent>,
    out: Out,
    end: Arc<End>,
    max_bytes: usize,
    _hold: H,
) {
    let mut carry = None;
    loop {
        let first = match carry.take() {
            Some(event) => event,
            None => tokio::select! {
                biased;
                _ = end.ended() => break,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
            },
        };
        let (frame, rest) = fill(first, &mut events, max_bytes);
        carry = rest;
        tokio::select! {
            biased;
            _ = end.ended() => break,
            sent = out.send(Ok(frame)) => if sent.is_err() {
                // The worker went away: the transport dropped the response.
                end.end(None);
                return;
            },
        }
    }
    end.end(None);
    let reason = end.reason();
    let _ = tokio::time::timeout(END_GRACE, async {
        if reason.as_ref().is_none_or(|r| r.flush) {
            let mut rest = carry;
            while let Some(first) = rest.take().or_else(|| events.try_recv().ok()) {
                let (frame, more) = fill(first, &mut events, max_bytes);
                rest = more;
                if out.send(Ok(frame)).await.is_err() {
                    return;
                }
            }
        }
        if let Some(reason) = reason {
            let _ = out.send(Err(reason.status)).await;
        }
    })
    .await;
}

/// A frame of `first` and the waiting events that fit; the first event that does not
/// fit is returned for the next frame.
fn fill(
    first: CoordinatorEvent,
    events: &mut mpsc::Receiver<CoordinatorEvent>,
    max_bytes: usize,
) -> (CoordinatorFrame, Option<CoordinatorEvent>) {
    let mut size = framed_len(&first);
    let mut batch = vec![first];
    while batch.len() < MAX_FRAME_EVENTS {
        let Ok(event) = events.try_recv() else { break };
        let n = framed_len(&event);
        if size + n > max_bytes {
            return (CoordinatorFrame { events: batch }, Some(event));
        }
        size += n;
        batch.push(event);
    }
    (CoordinatorFrame { events: batch }, None)
}

/// An event's size inside a frame: its tag, its length and itself.
pub(crate) fn framed_len<M: Message>(m: &M) -> usize {
    let n = m.encoded_len();
    1 + prost::length_delimiter_len(n) + n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::coordinator_event::Event;
    use crate::proto::GrantOffered;
    use tonic::Code;

    fn offer(grant: u64, payload: usize) -> CoordinatorEvent {
        CoordinatorEvent {
            event: Some(Event::GrantOffered(GrantOffered {
                grant,
                payload: vec![0; payload],
                ..GrantOffered::default()
            })),
        }
    }

    #[tokio::test]
    async fn frames_stay_under_the_size_limit_and_keep_the_order() {
        let end = Arc::new(End::default());
        let (queue, mut frames) = open(64, 10_000, end.clone(), ());
        for grant in 0..10 {
            assert!(queue.push(offer(grant, 3_000)));
        }
        drop(queue);
        let mut seen = Vec::new();
        use tokio_stream::StreamExt;
        while let Some(frame) = frames.next().await {
            let frame = frame.unwrap();
            assert!(frame.encoded_len() <= 10_000, "{}", frame.encoded_len());
            assert!(!frame.events.is_empty());
            for e in frame.events {
                if let Some(Event::GrantOffered(g)) = e.event {
                    seen.push(g.grant);
                }
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_queue_ends_the_session_naming_the_limit() {
        let end = Arc::new(End::default());
        let (tx, _rx) = mpsc::channel(2);
        let queue = Queue {
            tx,
            end: end.clone(),
            capacity: 2,
        };
        assert!(queue.push(offer(1, 1)) && queue.push(offer(2, 1)));
        assert!(!queue.push(offer(3, 1)));
        end.ended().await;
        let reason = end.reason().expect("a reason");
        assert!(
            !reason.flush,
            "a worker that does not read is not sent its queue"
        );
        assert_eq!(reason.status.code(), Code::ResourceExhausted);
        assert!(reason
            .status
            .message()
            .starts_with("limit_reached: session_queue = 2: "));
    }

    #[tokio::test]
    async fn an_ended_session_streams_what_was_queued_then_its_reason() {
        let end = Arc::new(End::default());
        let (queue, mut frames) = open(8, 10_000, end.clone(), ());
        end.end(Some(Status::unavailable("stopping")));
        end.end(Some(Status::internal("a later reason is not kept")));
        queue.push(offer(1, 1));
        drop(queue);
        use tokio_stream::StreamExt;
        let mut queued = 0;
        let last = loop {
            match frames.next().await.unwrap() {
                Ok(frame) => queued += frame.events.len(),
                Err(status) => break status,
            }
        };
        assert!(queued <= 1);
        assert_eq!(last.code(), Code::Unavailable);
        assert!(frames.next().await.is_none());
    }
}
