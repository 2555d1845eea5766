//! What goes from the coordinator to one worker: a bounded queue of events, framed up to
//! the message size limit, and how the session ends.
//!
//! Nothing here grows with a worker that does not read. Events wait in a queue of
//! `session_queue` entries; frames wait in a channel of [`OUT_FRAMES`], each at most
//! `max_message_bytes`. When the queue is full the session ends with RESOURCE_EXHAUSTED
//! naming `session_queue`, and its grants and leases are the engine's to recover.
//!
//! Replies to the worker's own commands are paced by its reading: a group of commands
//! runs only once there is room for its replies among the `max_in_flight` replies that
//! may be running or waiting unread, so a worker that sends faster than it reads is
//! slowed down, not cut off. One that reads nothing for `session_stall` while its
//! commands wait has its session ended naming `session_queue`.

use crate::proto::{CoordinatorEvent, CoordinatorFrame};
use crate::status::limit_reached;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// Most events in one frame.
const MAX_FRAME_EVENTS: usize = 1024;
/// Frames handed to the transport ahead of the worker reading them.
pub(crate) const OUT_FRAMES: usize = 4;
/// How long an ended session may take to hand its last frames and status over; one
/// ended because the worker stopped reading waits `session_stall` for it instead, so a
/// worker that reads again in that time learns why.
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

/// An event waiting for the worker; a reply holds its unit of reply room until framed.
pub(crate) struct Queued {
    event: CoordinatorEvent,
    _room: Option<OwnedSemaphorePermit>,
}

/// How much a session's outbound side holds, and how long it waits for a worker that
/// does not read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Events waiting at most (`session_queue`).
    pub(crate) events: usize,
    /// Replies running or waiting unread at most (`max_in_flight`).
    pub(crate) replies: usize,
    /// Longest wait for reply room before the session ends (`session_stall`).
    pub(crate) stall: Duration,
    /// Largest frame (`max_message_bytes`).
    pub(crate) max_bytes: usize,
}

/// Where a session's events are queued for the worker.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: mpsc::Sender<Queued>,
    end: Arc<End>,
    replies: Arc<Semaphore>,
    bounds: Bounds,
}

/// Room for some replies, taken before their commands run.
pub(crate) struct Room(Option<OwnedSemaphorePermit>);

impl Queue {
    /// Queues `event`; a full queue ends the session. False once the session ended.
    pub(super) fn push(&self, event: CoordinatorEvent) -> bool {
        self.send(Queued { event, _room: None })
    }

    fn send(&self, queued: Queued) -> bool {
        match self.tx.try_send(queued) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stop_reading_for_it();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn stop_reading_for_it(&self) {
        self.end.abandon(limit_reached(
            "session_queue",
            self.bounds.events as u64,
            "the worker did not read its session while that many events waited for it",
        ));
    }

    /// Room for `n` replies, once the worker has read enough of the earlier ones. `None`
    /// when it read none for the stall bound: the session is then ended.
    pub(super) async fn reply_room(&self, n: usize) -> Option<Room> {
        let n = u32::try_from(n.min(self.bounds.replies)).unwrap_or(u32::MAX);
        let waited = tokio::time::timeout(
            self.bounds.stall,
            self.replies.clone().acquire_many_owned(n),
        )
        .await;
        match waited {
            Ok(Ok(permit)) => Some(Room(Some(permit))),
            Ok(Err(_closed)) => Some(Room(None)),
            Err(_elapsed) => {
                self.stop_reading_for_it();
                None
            }
        }
    }

    /// Queues `replies`, each holding a unit of `room` until it is framed. False once
    /// the session ended.
    pub(super) fn push_replies(&self, room: Room, replies: Vec<CoordinatorEvent>) -> bool {
        let mut room = room.0;
        replies.into_iter().all(|event| {
            let unit = room.as_mut().and_then(|r| r.split(1));
            self.send(Queued { event, _room: unit })
        })
    }
}

/// Opens a session's outbound side: the queue its tasks push to and the frames the
/// response streams. `hold` lives as long as the framing task.
pub(crate) fn open<H: Send + 'static>(bounds: Bounds, end: Arc<End>, hold: H) -> (Queue, Frames) {
    let (tx, rx) = mpsc::channel(bounds.events.max(1));
    let (out, frames) = mpsc::channel(OUT_FRAMES);
    tokio::spawn(frame_events(rx, out, end.clone(), bounds, hold));
    let queue = Queue {
        tx,
        end,
        replies: Arc::new(Semaphore::new(bounds.replies.max(1))),
        bounds,
    };
    (queue, ReceiverStream::new(frames))
}

type Out = mpsc::Sender<Result<CoordinatorFrame, Status>>;

/// Batches whatever events wait into frames no larger than `max_bytes` until the session
/// ends; then hands over what is left (unless the worker stopped reading) and the
/// reason, if any, within a short grace period.
async fn frame_events<H>(
    mut events: mpsc::Receiver<Queued>,
    out: Out,
    end: Arc<End>,
    bounds: Bounds,
    _hold: H,
) {
    let max_bytes = bounds.max_bytes;
    let mut carry = None;
    loop {
        let first = match carry.take() {
            Some(event) => event,
            None => tokio::select! {
                biased;
                _ = end.ended() => break,
                event = events.recv() => match event {
                    Some(queued) => queued.event,
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
    let grace = match &reason {
        Some(Reason { flush: false, .. }) => bounds.stall.max(END_GRACE),
        _ => END_GRACE,
    };
    let _ = tokio::time::timeout(grace, async {
        if reason.as_ref().is_none_or(|r| r.flush) {
            let mut rest = carry;
            while let Some(first) = rest
                .take()
                .or_else(|| events.try_recv().ok().map(|q| q.event))
            {
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
    events: &mut mpsc::Receiver<Queued>,
    max_bytes: usize,
) -> (CoordinatorFrame, Option<CoordinatorEvent>) {
    let mut size = framed_len(&first);
    let mut batch = vec![first];
    while batch.len() < MAX_FRAME_EVENTS {
        let Ok(Queued { event, .. }) = events.try_recv() else {
            break;
        };
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

    fn bounds(events: usize, replies: usize, max_bytes: usize) -> Bounds {
        Bounds {
            events,
            replies,
            stall: Duration::from_millis(200),
            max_bytes,
        }
    }

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
        let (queue, mut frames) = open(bounds(64, 8, 10_000), end.clone(), ());
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
            replies: Arc::new(Semaphore::new(1)),
            bounds: bounds(2, 1, 10_000),
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
        let (queue, mut frames) = open(bounds(8, 8, 10_000), end.clone(), ());
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

    #[tokio::test]
    async fn replies_wait_for_the_worker_to_read_and_a_stalled_worker_is_let_go() {
        let end = Arc::new(End::default());
        let (queue, mut frames) = open(bounds(64, 2, 10_000), end.clone(), ());
        let room = queue.reply_room(2).await.expect("room for two replies");
        assert!(queue.push_replies(room, vec![offer(1, 1), offer(2, 1)]));
        // Until a frame of them is taken (the framer takes it into the transport's
        // channel), there is no room for more.
        use tokio_stream::StreamExt;
        let first = frames.next().await.unwrap().unwrap();
        assert_eq!(first.events.len(), 2);
        let room = queue
            .reply_room(2)
            .await
            .expect("room once they were framed");
        assert!(queue.push_replies(room, vec![offer(3, 1), offer(4, 1)]));
        // Nobody reads from here on: frames fill the transport's channel, the framer
        // stops taking replies, and the wait for room ends the session.
        let mut grant = 5;
        loop {
            let Some(room) = queue.reply_room(2).await else {
                break;
            };
            assert!(queue.push_replies(room, vec![offer(grant, 1), offer(grant + 1, 1)]));
            grant += 2;
            assert!(
                grant < 100,
                "replies kept being queued for a worker that reads none"
            );
        }
        end.ended().await;
        let reason = end.reason().expect("a reason");
        assert!(!reason.flush);
        assert!(reason
            .status
            .message()
            .starts_with("limit_reached: session_queue = 64: "));
    }
}
