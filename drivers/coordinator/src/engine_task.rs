//! The one task that owns the engine, for the coordinator's whole life. It serves terms
//! (`term`): each begins when the partition is acquired and its engine recovered, and
//! ends when the lease is lost. Between terms it stands by (`standby`), refusing
//! requests, until it takes the partition back. It stops for good when shut down, when
//! every handle is dropped, or when serving needs an operator (an engine panic, a log
//! recovery cannot read).

use crate::batch::{ReadFn, RepliesTx, ReplyTx};
use crate::clock::Clock;
use crate::error::{CoordinatorError, Deposed};
use crate::leadership::{Leadership, Status, Stop};
use crate::metrics::Metrics;
use crate::routing::Routes;
use crate::term::Term;
use keel_engine::{Config, Input};
use keel_log::{Log, Partition};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What handles send the engine task.
pub(crate) enum Command {
    Apply {
        input: Input,
        reply: ReplyTx,
    },
    ApplyAll {
        inputs: Vec<Input>,
        reply: RepliesTx,
    },
    Read(ReadFn),
    Shutdown(oneshot::Sender<Result<(), CoordinatorError>>),
}

impl Command {
    /// Answers the command with `error` (a read is dropped, which its caller reports).
    pub(crate) fn refuse(self, error: CoordinatorError) {
        match self {
            Command::Apply { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::ApplyAll { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Read(_) => {}
            Command::Shutdown(done) => {
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// State shared by the engine task and every handle.
pub(crate) struct Shared {
    pub leadership: Arc<Leadership>,
    pub routes: Routes,
    pub metrics: Mutex<Metrics>,
}

impl Shared {
    pub(crate) fn metrics(&self) -> MutexGuard<'_, Metrics> {
        // Metrics are plain counters; a panic mid-update leaves them usable.
        self.metrics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the engine task keeps from the coordinator's configuration.
#[derive(Clone)]
pub(crate) struct Settings {
    pub partition: Partition,
    pub holder: String,
    pub engine: Config,
    pub lease_ttl: Duration,
    pub max_batch: usize,
    pub snapshot_every: u64,
    pub rejoin: bool,
    pub prepare_engine: Option<fn(&mut keel_engine::Engine)>,
}

pub(crate) struct EngineTask<L> {
    pub log: Arc<L>,
    pub clock: Arc<dyn Clock>,
    pub shared: Arc<Shared>,
    pub commands: mpsc::Receiver<Command>,
    pub settings: Settings,
}

/// How a term (or standing by) ended.
pub(crate) enum Ended {
    /// The lease was lost; the coordinator may take the partition back.
    Lost(Deposed),
    /// Stopped for good; every request has been answered.
    Done,
}

/// What happened while the engine task waited for something with its engine away.
pub(crate) enum Waited<T> {
    Finished(T),
    /// The coordinator's status changed (the lease was lost).
    StatusChanged,
    /// Asked to shut down (with whom to answer), or every handle was dropped (None).
    Shutdown(Option<oneshot::Sender<Result<(), CoordinatorError>>>),
}

impl<L: Log + 'static> EngineTask<L> {
    pub(crate) async fn run(mut self, first: Term) {
        // Whoever fenced a term may hold the partition under this very name (another
        // process given the same identity): taking it back under that name would fence
        // it in turn at once. After a fencing the coordinator asks under a name of its
        // own, so it waits for that holder's lease like any standby.
        let base_holder = self.settings.holder.clone();
        let mut next = Some(first);
        loop {
            let term = match next.take() {
                Some(term) => term,
                None => match self.stand_by().await {
                    Ok(term) => term,
                    Err(Ended::Lost(why)) => {
                        self.shared.leadership.stop(Stop::Lost(why));
                        break;
                    }
                    Err(Ended::Done) => break,
                },
            };
            match self.serve(term).await {
                Ended::Lost(why) if self.settings.rejoin => {
                    tracing::warn!(
                        partition = self.settings.partition,
                        %why,
                        "lost the partition; standing by to take it back"
                    );
                    if let Deposed::Fenced { current } = why {
                        self.settings.holder = format!("{base_holder}/after-epoch-{current}");
                    }
                }
                Ended::Lost(why) => {
                    self.shared.leadership.stop(Stop::Lost(why));
                    break;
                }
                Ended::Done => break,
            }
        }
        self.shared.metrics().leader = false;
        self.shared.routes.close();
        // Whatever is still queued is answered: nothing of it was applied.
        self.commands.close();
        let leadership = self.shared.leadership.clone();
        while let Ok(command) = self.commands.try_recv() {
            command.refuse(leadership.refusal(Status::Stopped));
        }
    }

    /// Waits for `fut` while answering every request with `refusal()`: the engine is
    /// away (being recovered) or there is none (standing by).
    pub(crate) async fn wait_refusing<T>(
        &mut self,
        fut: impl Future<Output = T>,
        refusal: impl Fn() -> CoordinatorError,
        watch_status: bool,
    ) -> Waited<T> {
        let mut status = self.shared.leadership.subscribe();
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                _ = status.wait_for(|s| *s != Status::Leading), if watch_status => {
                    return Waited::StatusChanged;
                }
                value = &mut fut => return Waited::Finished(value),
                command = self.commands.recv() => match command {
                    None => return Waited::Shutdown(None),
                    Some(Command::Shutdown(done)) => return Waited::Shutdown(Some(done)),
                    Some(command) => command.refuse(refusal()),
                },
            }
        }
    }
}
