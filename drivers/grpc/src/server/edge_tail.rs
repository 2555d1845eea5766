//! `TailEdge`: what a consumer reads through one of its streaming edges, pushed as the
//! producer emits. The engine chooses the frames (`Engine::read_edge`); this pages them
//! within a message and wakes on the producer's bell, the job's events and the poll
//! floor, like `TailStream`.

use super::streams::{CHUNK_FRAMES, FRAME_WIRE_BYTES};
use super::tail::{start, take_slot, Cursor, Pages};
use super::{unavailable, Shared};
use crate::proto::{EdgePage, StreamFrame, TailEdgeRequest};
use crate::status::rejection_status;
use keel_engine::{EdgeRead, Engine, TaskId};
use std::sync::Arc;
use tonic::Status;

/// A consumer's cursor on one edge.
#[derive(Clone)]
struct EdgeCursor {
    consumer: TaskId,
    producer: TaskId,
    from: String,
    /// `None` until the first page: the consumer's acknowledged cursor.
    at: Option<u64>,
}

impl Cursor for EdgeCursor {
    type Page = EdgePage;

    fn bell(&self) -> TaskId {
        self.producer
    }

    fn read(&self, e: &Engine, room: u64) -> Result<EdgePage, Status> {
        edge_page(e, self, room)
    }

    fn advance(&mut self, page: &EdgePage) -> (bool, bool) {
        self.at = Some(page.next);
        let ended = page.end.is_some();
        (page.frames.is_empty() && !ended, ended)
    }
}

/// The frames owed from the cursor, as many as fit `room` (a larger first frame goes
/// alone); the producer's end only once every frame owed is on the page.
fn edge_page(e: &Engine, c: &EdgeCursor, room: u64) -> Result<EdgePage, Status> {
    let read = EdgeRead {
        from: c.at,
        limit: CHUNK_FRAMES,
    };
    let page = e
        .read_edge(c.consumer, &c.from, read)
        .map_err(|x| rejection_status(&x))?;
    let mut out = EdgePage {
        producer: page.producer.get(),
        next: page.next,
        skipped: page.skipped,
        acked: page.acked,
        dropped: page.dropped,
        end: page.end.as_ref().map(|o| o.label().to_string()),
        ..Default::default()
    };
    let mut left = room;
    for f in page.frames {
        let size = (f.data.len() as u64).saturating_add(FRAME_WIRE_BYTES);
        if size > left && !out.frames.is_empty() {
            out.next = f.seq;
            out.end = None;
            break;
        }
        left = left.saturating_sub(size);
        out.frames.push(StreamFrame {
            seq: f.seq,
            attempt: f.attempt,
            data: f.data.as_bytes().to_vec(),
        });
    }
    Ok(out)
}

/// Opens a tail of the consumer's edge named in `r`: takes a watch slot, resolves the
/// producer, and starts sending pages.
pub(crate) async fn open(
    shared: Arc<Shared>,
    r: TailEdgeRequest,
    room: u64,
) -> Result<Pages<EdgePage>, Status> {
    let slot = take_slot(&shared)?;
    let consumer = TaskId::new(r.task);
    let from = r.from.clone();
    let (job, producer) = shared
        .handle
        .read(move |e| {
            let job = e.describe_task(consumer)?.job;
            let probe = EdgeRead {
                from: None,
                limit: 0,
            };
            Ok((job, e.read_edge(consumer, &from, probe)?.producer))
        })
        .await
        .map_err(|e| unavailable(&e))?
        .map_err(|x| rejection_status(&x))?;
    let cursor = EdgeCursor {
        consumer,
        producer,
        from: r.from,
        at: r.after,
    };
    Ok(start(shared, slot, cursor, job, room))
}
