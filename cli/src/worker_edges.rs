//! A shell consumer's stdin: the frames of the task's streaming edges, written as the
//! producers emit them (one frame per line: a newline is added to a frame that does
//! not end in one), interleaved as they arrive when there are several edges, and
//! closed once every producer has ended. A command cannot say what it has processed,
//! so by default nothing is acknowledged and every attempt reads the producers' latest
//! leases from their start; with `--ack-stdin` the frames are acknowledged once
//! written, which a bounded edge needs to make room, and a retry resumes after them.

use futures_util::future::join_all;
use keel_grpc::worker::{EdgeFrame, Task};
use std::collections::BTreeMap;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames read ahead of the pipe, across edges.
const AHEAD: usize = 256;

/// Frames written between acknowledgements while more keep coming.
const ACK_EVERY: u64 = 256;

/// Writes the frames of `task`'s edges to `stdin` until every producer has ended or
/// the command stops reading; acknowledges them when `ack`.
pub async fn feed(task: &Task, mut stdin: impl AsyncWrite + Unpin, ack: bool) {
    let (tx, mut rx) = mpsc::channel::<(String, EdgeFrame)>(AHEAD);
    let readers = join_all(task.streams().iter().map(|from| {
        let tx = tx.clone();
        async move {
            let mut edge = task.stream(from);
            loop {
                match edge.next().await {
                    Ok(Some(frame)) => {
                        if tx.send((from.clone(), frame)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(task = %task.task, from = %from, error = %e, "edge closed");
                        return;
                    }
                }
            }
        }
    }));
    drop(tx);
    let writer = async move {
        let mut cursors = BTreeMap::<String, u64>::new();
        let mut unacked = 0u64;
        while let Some((from, frame)) = rx.recv().await {
            let mut line = frame.data;
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            // A command that stops reading closes its stdin (EPIPE): the rest is dropped.
            if stdin.write_all(&line).await.is_err() {
                return;
            }
            cursors.insert(from, frame.seq + 1);
            unacked += 1;
            if ack && (rx.is_empty() || unacked >= ACK_EVERY) {
                let _ = stdin.flush().await;
                acknowledge(task, &cursors).await;
                unacked = 0;
            }
        }
        if ack && unacked > 0 {
            acknowledge(task, &cursors).await;
        }
    };
    tokio::join!(readers, writer);
}

async fn acknowledge(task: &Task, cursors: &BTreeMap<String, u64>) {
    for (from, cursor) in cursors {
        if let Err(e) = task.ack(from, *cursor).await {
            tracing::warn!(task = %task.task, from = %from, error = %e, "acknowledgement refused");
        }
    }
}
