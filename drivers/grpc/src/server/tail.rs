//! `TailStream`: a task's output stream pushed to a reader as it grows. The tail reads
//! a page from its cursor, sends it, and when it has caught up waits for the task to
//! move: a bell rung when an emit of the task is stored, the job's events (an attempt
//! ended, the task finished), or a slow poll as a floor (`tail_poll`). It ends once the task has
//! ended and every frame is sent, with a last page that says `finished`.

use super::results::named_task;
use super::slots::Slot;
use super::streams::{attempts, page, PageQuery};
use super::{unavailable, Shared};
use crate::proto::read_stream_request::Attempts as Which;
use crate::proto::tail_stream_request::Attempts as TailWhich;
use crate::proto::{ReadStreamResponse, TailStreamRequest};
use keel_engine::{Effect, Engine, JobId, TaskId};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

/// Pages a tail may have queued for a slow reader before it waits for the reader.
const QUEUED_PAGES: usize = 2;

/// Frame bytes a tail's page carries at most (a larger frame goes alone), so a slow
/// reader holds about a MiB of the server's memory, within the 4 MiB a watch slot is
/// budgeted (`budget`).
const PAGE_BYTES: u64 = 512 << 10;

/// One bell per task some tail waits on, rung when an emit of that task is stored.
#[derive(Default)]
pub(crate) struct Bells(Mutex<BTreeMap<TaskId, watch::Sender<()>>>);

impl Bells {
    /// A receiver that sees a change whenever `task`'s stream may have grown. Bells no
    /// tail listens to any more are let go here, so the table holds at most one bell per
    /// open tail.
    fn subscribe(&self, task: TaskId) -> watch::Receiver<()> {
        let mut bells = self.lock();
        bells.retain(|_, bell| bell.receiver_count() > 0);
        bells
            .entry(task)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// Wakes every tail of `task`.
    pub(crate) fn ring(&self, task: TaskId) {
        let mut bells = self.lock();
        if let Some(bell) = bells.get(&task) {
            if bell.receiver_count() == 0 {
                bells.remove(&task);
            } else {
                bell.send_replace(());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TaskId, watch::Sender<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a tail reads from and how its cursor moves: a task's stream (`TailStream`) or
/// a consumer's edge (`TailEdge`).
pub(crate) trait Cursor: Clone + Send + 'static {
    /// One page as the reader gets it.
    type Page: Send + 'static;
    /// The task whose emits may add to what the tail reads: its bell.
    fn bell(&self) -> TaskId;
    /// The page from the cursor, within `room` bytes of frames.
    fn read(&self, e: &Engine, room: u64) -> Result<Self::Page, Status>;
    /// Moves the cursor past `page`; returns whether the page holds nothing to send
    /// (the tail has caught up) and whether it is the last one.
    fn advance(&mut self, page: &Self::Page) -> (bool, bool);
}

pub(crate) type Pages<P> = ReceiverStream<Result<P, Status>>;

/// The cursor of `TailStream`.
#[derive(Clone)]
struct StreamCursor(PageQuery);

impl Cursor for StreamCursor {
    type Page = ReadStreamResponse;

    fn bell(&self) -> TaskId {
        self.0.task
    }

    fn read(&self, e: &Engine, room: u64) -> Result<ReadStreamResponse, Status> {
        page(e, &self.0, room)
    }

    fn advance(&mut self, page: &ReadStreamResponse) -> (bool, bool) {
        self.0.from = page.next;
        let caught_up = page.frames.is_empty();
        (caught_up, caught_up && page.finished)
    }
}

/// Opens a tail of a task's stream: takes a watch slot, resolves the task, and starts
/// sending pages.
pub(crate) async fn open(
    shared: Arc<Shared>,
    r: TailStreamRequest,
    room: u64,
) -> Result<Pages<ReadStreamResponse>, Status> {
    let slot = take_slot(&shared)?;
    let (job, key, id) = (r.job, r.key.clone(), r.task);
    let task = shared
        .handle
        .read(move |e| named_task(e, job, &key, id))
        .await
        .map_err(|e| unavailable(&e))??;
    let query = PageQuery {
        task,
        from: r.after.map_or(0, |a| a.saturating_add(1)),
        to: None,
        limit: u32::MAX,
        attempts: attempts(r.attempts.map(|a| match a {
            TailWhich::Winning(w) => Which::Winning(w),
            TailWhich::Attempt(n) => Which::Attempt(n),
        })),
    };
    Ok(start(
        shared,
        slot,
        StreamCursor(query),
        JobId::new(job),
        room,
    ))
}

/// A watch slot for a tail, counted as a refusal when none is left.
pub(crate) fn take_slot(shared: &Shared) -> Result<Slot, Status> {
    shared.slots.watch().inspect_err(|_| {
        shared
            .metrics
            .limit_refusals
            .fetch_add(1, Ordering::Relaxed);
    })
}

/// Starts a tail of `cursor`, woken by its bell and `job`'s events.
pub(crate) fn start<C: Cursor>(
    shared: Arc<Shared>,
    slot: Slot,
    cursor: C,
    job: JobId,
    room: u64,
) -> Pages<C::Page> {
    // Listen before the first read, so nothing stored after it goes unheard.
    let task = cursor.bell();
    let bell = shared.bells.subscribe(task);
    let events = shared.handle.watch_job(job);
    let (tx, rx) = mpsc::channel(QUEUED_PAGES);
    let tail = Tail {
        shared,
        cursor,
        room: room.min(PAGE_BYTES),
        bell,
        events: Some(events),
        _slot: slot,
    };
    tokio::spawn(tail.run(tx).instrument(tracing::debug_span!("tail", %task)));
    ReceiverStream::new(rx)
}

struct Tail<C> {
    shared: Arc<Shared>,
    cursor: C,
    room: u64,
    bell: watch::Receiver<()>,
    /// The job's events; `None` once their stream has closed (the job finished).
    events: Option<broadcast::Receiver<Effect>>,
    _slot: Slot,
}

type Sender<P> = mpsc::Sender<Result<P, Status>>;

impl<C: Cursor> Tail<C> {
    async fn run(mut self, tx: Sender<C::Page>) {
        loop {
            let (cursor, room) = (self.cursor.clone(), self.room);
            let read = self.shared.handle.read(move |e| cursor.read(e, room)).await;
            let page = match read.map_err(|e| unavailable(&e)).and_then(|page| page) {
                Ok(page) => page,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            let (caught_up, ended) = self.cursor.advance(&page);
            if !caught_up || ended {
                let sent = tokio::select! {
                    sent = tx.send(Ok(page)) => sent.is_ok(),
                    _ = self.shared.stopping.cancelled() => false,
                };
                if !sent || ended {
                    return;
                }
                continue;
            }
            if !self.wait(&tx).await {
                return;
            }
        }
    }

    /// Waits until what the tail reads may have grown; false when it must end.
    async fn wait(&mut self, tx: &Sender<C::Page>) -> bool {
        let Tail {
            shared,
            cursor,
            bell,
            events,
            ..
        } = self;
        let event = async {
            match events {
                Some(rx) => {
                    if let Err(broadcast::error::RecvError::Closed) = rx.recv().await {
                        *events = None;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tx.closed() => false,
            _ = shared.stopping.cancelled() => {
                let _ = tx.try_send(Err(Status::unavailable("stopping: the coordinator is shutting down")));
                false
            }
            rung = bell.changed() => {
                if rung.is_err() {
                    *bell = shared.bells.subscribe(cursor.bell());
                }
                true
            }
            _ = event => true,
            _ = tokio::time::sleep(shared.options.tail_poll) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_wakes_only_that_task_s_tails_and_bells_nobody_hears_are_let_go() {
        let bells = Bells::default();
        let (t1, t2, t3) = (TaskId::new(1), TaskId::new(2), TaskId::new(3));
        let mut one = bells.subscribe(t1);
        let two = bells.subscribe(t2);
        bells.ring(t1);
        assert!(one.has_changed().unwrap());
        assert!(!two.has_changed().unwrap());
        one.mark_unchanged();
        drop(two);
        bells.ring(t2);
        assert_eq!(bells.lock().keys().collect::<Vec<_>>(), [&t1]);
        drop(one);
        let _three = bells.subscribe(t3);
        assert_eq!(bells.lock().keys().collect::<Vec<_>>(), [&t3]);
    }
}
