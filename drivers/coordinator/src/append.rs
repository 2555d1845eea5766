//! A group commit's append, running in its own task so the engine task can apply the
//! next batch meanwhile (on the blocking pool for a log that blocks, see `io`).

use crate::batch::Applied;
use crate::io::spawn_io;
use keel_log::{Epoch, Log, LogError, Offset, Partition};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

type Appended = (Result<Offset, LogError>, Duration);

/// A batch applied to the engine whose entries are on their way to the log.
pub(crate) struct InFlight {
    pub applied: Applied,
    /// Entries in the append.
    pub size: usize,
    partition: Partition,
    /// None when the batch held only reads: nothing to make durable.
    task: Option<JoinHandle<Appended>>,
}

/// The append finished: the new log end (None if nothing was appended) and how long
/// the log took.
pub(crate) type Durable = Result<Option<(Offset, Duration)>, LogError>;

impl InFlight {
    /// Starts appending `applied`'s entries at `start` under `epoch`.
    pub(crate) fn start<L: Log + 'static>(
        log: &Arc<L>,
        partition: Partition,
        epoch: Epoch,
        start: Offset,
        mut applied: Applied,
    ) -> InFlight {
        let payloads = applied.batch.take_entries();
        let size = payloads.len();
        let task = (size > 0).then(|| {
            let blocks = log.blocks();
            let log = log.clone();
            let append = async move {
                let started = Instant::now();
                let result = log.append(partition, epoch, start, &payloads).await;
                (result, started.elapsed())
            };
            spawn_io(blocks, append)
        });
        InFlight {
            applied,
            size,
            partition,
            task,
        }
    }

    /// Resolves once the append is done. Cancel-safe: the append goes on in its task,
    /// so a `select!` may drop this future and call it again.
    pub(crate) async fn durable(&mut self) -> Durable {
        let Some(task) = &mut self.task else {
            return Ok(None);
        };
        match task.await {
            Ok((Ok(end), took)) => Ok(Some((end, took))),
            Ok((Err(e), _)) => Err(e),
            Err(join) => Err(LogError::storage(
                self.partition,
                format!("the append task ended without an answer: {join}"),
            )),
        }
    }
}
