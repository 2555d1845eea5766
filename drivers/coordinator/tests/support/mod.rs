//! What the coordinator tests share: a log wrapper that can hold or fail writes, a
//! worker and a client that speak to a handle, and bounded waits.
#![allow(dead_code)]

use keel_coordinator::{
    Clock, Coordinator, CoordinatorConfig, CoordinatorError, Deposed, Handle, ManualClock,
};
use keel_engine::{
    Accepted, ClientCommand, Effect, Fence, GrantId, Input, InstanceId, JobId, JobSpec, TaskSpec,
    WorkerCommand, WorkerId,
};
use keel_log::{Bounds, Epoch, Leadership, Log, LogError, Offset, Partition, Record, Snapshot};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Fails a test that would otherwise hang.
pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls a future once, so a request is queued before the test goes on.
pub(crate) async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match std::pin::Pin::new(&mut *fut).poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Why an error says its coordinator does not lead.
pub(crate) fn deposed_why(error: &CoordinatorError) -> Option<Deposed> {
    match error {
        CoordinatorError::NotLeader { why, .. } => Some(*why),
        _ => None,
    }
}

pub(crate) fn config(holder: &str) -> CoordinatorConfig {
    CoordinatorConfig {
        holder: holder.to_owned(),
        lease_ttl: Duration::from_secs(30),
        ..CoordinatorConfig::default()
    }
}

pub(crate) const START_MS: u64 = 1_000_000;

pub(crate) fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START_MS))
}

pub(crate) async fn start<L: Log + 'static, C: Clock>(
    config: CoordinatorConfig,
    log: &Arc<L>,
    clock: &Arc<C>,
) -> Handle {
    let clock: Arc<dyn Clock> = clock.clone();
    within(
        "start",
        Coordinator::start(config, log.clone(), clock.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("start: {e}"))
}

/// Applies an input that must be accepted.
pub(crate) async fn accepted(handle: &Handle, input: Input) -> Accepted {
    match within("apply", handle.apply(input.clone())).await {
        Ok(Some(Ok(accepted))) => accepted,
        other => panic!("{input:?} gave {other:?}"),
    }
}

pub(crate) fn job(name: &str, tasks: &[&str]) -> Input {
    let tasks = tasks.iter().map(|t| TaskSpec::new(*t)).collect();
    Input::Client(ClientCommand::SubmitJob(JobSpec::new(name, tasks)))
}

pub(crate) async fn submit(handle: &Handle, name: &str, tasks: &[&str]) -> JobId {
    match accepted(handle, job(name, tasks)).await {
        Accepted::JobSubmitted { job, .. } => job,
        other => panic!("submit gave {other:?}"),
    }
}

/// A worker session: its id, instance and the effects routed to it.
pub(crate) struct Worker {
    pub id: WorkerId,
    pub instance: InstanceId,
    pub effects: mpsc::Receiver<Effect>,
}

impl Worker {
    pub(crate) async fn register(handle: &Handle, name: &str) -> Worker {
        let id = WorkerId::new(name);
        let effects = handle.route_worker(id.clone());
        let worker = Worker {
            id,
            instance: InstanceId::new(1),
            effects,
        };
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 4,
        };
        accepted(handle, worker.input(reg)).await;
        worker
    }

    pub(crate) fn input(&self, command: WorkerCommand) -> Input {
        Input::worker(&self.id, self.instance, command)
    }

    pub(crate) async fn next_effect(&mut self) -> Effect {
        within("a worker effect", self.effects.recv())
            .await
            .unwrap_or_else(|| panic!("{}'s route closed", self.id))
    }

    /// Asks for one task and accepts the grant it is offered.
    pub(crate) async fn claim(&mut self, handle: &Handle) -> Fence {
        accepted(
            handle,
            self.input(WorkerCommand::RequestWork { credits: 1 }),
        )
        .await;
        let grant = match self.next_effect().await {
            Effect::GrantOffered { grant, .. } => grant,
            other => panic!("expected a grant, got {other:?}"),
        };
        self.accept(handle, grant).await
    }

    pub(crate) async fn accept(&self, handle: &Handle, grant: GrantId) -> Fence {
        match accepted(handle, self.input(WorkerCommand::AcceptGrant { grant })).await {
            Accepted::LeaseStarted { fence, .. } => fence,
            other => panic!("accept gave {other:?}"),
        }
    }

    pub(crate) async fn complete(&self, handle: &Handle, fence: Fence) {
        let complete = WorkerCommand::Complete {
            fence,
            output: "done".into(),
        };
        accepted(handle, self.input(complete)).await;
    }
}

/// A log that forwards to a shared inner log, and that a test can make hold appends
/// until released, fail the next append, or fail every lease renewal.
pub(crate) struct FaultyLog<L> {
    pub inner: Arc<L>,
    open: watch::Sender<bool>,
    started: watch::Sender<u64>,
    fail_next_append: AtomicBool,
    /// The number (counting from 1) of an append to fail; 0 for none.
    fail_append_number: AtomicU64,
    fail_renewals: AtomicBool,
    /// Milliseconds every append takes once past the gate.
    delay_ms: AtomicU64,
    /// Writes fail as on a full disk.
    no_space: AtomicBool,
    /// Every call fails as if the store were out of reach.
    outage: AtomicBool,
}

const NO_SPACE: &str = "No space left on device (os error 28)";
const REFUSED: &str = "Connection refused (os error 111)";

impl<L: Log> FaultyLog<L> {
    pub(crate) fn new(inner: Arc<L>) -> Arc<FaultyLog<L>> {
        Arc::new(FaultyLog {
            inner,
            open: watch::Sender::new(true),
            started: watch::Sender::new(0),
            fail_next_append: AtomicBool::new(false),
            fail_append_number: AtomicU64::new(0),
            fail_renewals: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            no_space: AtomicBool::new(false),
            outage: AtomicBool::new(false),
        })
    }

    /// Appends and snapshots fail as on a full disk until `false`.
    pub(crate) fn disk_full(&self, full: bool) {
        self.no_space.store(full, Ordering::SeqCst);
    }

    /// Every call fails with a refused connection until `false`.
    pub(crate) fn outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }

    fn reachable(&self, p: Partition) -> Result<(), LogError> {
        if self.outage.load(Ordering::SeqCst) {
            return Err(LogError::storage(p, REFUSED));
        }
        Ok(())
    }

    fn writable(&self, p: Partition) -> Result<(), LogError> {
        self.reachable(p)?;
        if self.no_space.load(Ordering::SeqCst) {
            return Err(LogError::storage(p, NO_SPACE));
        }
        Ok(())
    }

    /// Appends from now on wait until [`FaultyLog::release`].
    pub(crate) fn hold(&self) {
        self.open.send_replace(false);
    }

    pub(crate) fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `n` appends have been called in total.
    pub(crate) async fn appends_started(&self, n: u64) {
        let mut started = self.started.subscribe();
        within("an append", started.wait_for(|s| *s >= n))
            .await
            .unwrap_or_else(|_| panic!("append counter closed"));
    }

    pub(crate) fn fail_next_append(&self) {
        self.fail_next_append.store(true, Ordering::SeqCst);
    }

    /// Fails the `n`th append counted from the log's creation, whatever runs first.
    pub(crate) fn fail_append_number(&self, n: u64) {
        self.fail_append_number.store(n, Ordering::SeqCst);
    }

    /// Every append from now on takes `delay` longer.
    pub(crate) fn slow_down(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub(crate) fn fail_renewals(&self) {
        self.fail_renewals.store(true, Ordering::SeqCst);
    }

    pub(crate) fn restore_renewals(&self) {
        self.fail_renewals.store(false, Ordering::SeqCst);
    }
}

impl<L: Log> Log for FaultyLog<L> {
    fn blocks(&self) -> bool {
        self.inner.blocks()
    }

    async fn acquire(
        &self,
        p: Partition,
        holder: &str,
        ttl: Duration,
    ) -> Result<Leadership, LogError> {
        self.reachable(p)?;
        self.inner.acquire(p, holder, ttl).await
    }

    async fn renew(&self, lease: &Leadership, ttl: Duration) -> Result<Leadership, LogError> {
        self.reachable(lease.partition)?;
        if self.fail_renewals.load(Ordering::SeqCst) {
            return Err(LogError::storage(
                lease.partition,
                "renewals cut off by the test",
            ));
        }
        self.inner.renew(lease, ttl).await
    }

    async fn step_down(&self, lease: &Leadership) -> Result<(), LogError> {
        self.reachable(lease.partition)?;
        self.inner.step_down(lease).await
    }

    async fn append(
        &self,
        p: Partition,
        epoch: Epoch,
        start: Offset,
        payloads: &[Vec<u8>],
    ) -> Result<Offset, LogError> {
        let mut number = 0;
        self.started.send_modify(|n| {
            *n += 1;
            number = *n;
        });
        let mut open = self.open.subscribe();
        if open.wait_for(|open| *open).await.is_err() {
            return Err(LogError::storage(p, "gate dropped"));
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.writable(p)?;
        let numbered = self.fail_append_number.load(Ordering::SeqCst) == number;
        if self.fail_next_append.swap(false, Ordering::SeqCst) || numbered {
            return Err(LogError::storage(p, "disk on fire"));
        }
        self.inner.append(p, epoch, start, payloads).await
    }

    async fn read(&self, p: Partition, from: Offset, max: usize) -> Result<Vec<Record>, LogError> {
        self.reachable(p)?;
        self.inner.read(p, from, max).await
    }

    async fn bounds(&self, p: Partition) -> Result<Bounds, LogError> {
        self.reachable(p)?;
        self.inner.bounds(p).await
    }

    async fn store_snapshot(
        &self,
        p: Partition,
        epoch: Epoch,
        snapshot: &Snapshot,
    ) -> Result<(), LogError> {
        self.writable(p)?;
        self.inner.store_snapshot(p, epoch, snapshot).await
    }

    async fn load_snapshot(&self, p: Partition) -> Result<Option<Snapshot>, LogError> {
        self.reachable(p)?;
        self.inner.load_snapshot(p).await
    }
}

/// The digest of the engine a fresh recovery of `log` rebuilds.
pub(crate) async fn log_digest<L: Log>(log: &L) -> keel_engine::Digest {
    let config = keel_engine::Config::default();
    match keel_log::recover(log, 0, config).await {
        Ok(recovered) => recovered.engine.digest(),
        Err(e) => panic!("recover: {e}"),
    }
}

/// The inputs stored in a partition's log from `from` on.
pub(crate) async fn logged_inputs<L: Log>(
    log: &L,
    partition: Partition,
    from: Offset,
) -> Vec<Input> {
    let records = log
        .read(partition, from, 10_000)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    records
        .iter()
        .map(
            |r| match keel_log::Entry::decode(partition, r.offset, &r.payload) {
                Ok(entry) => entry.input,
                Err(e) => panic!("decode: {e}"),
            },
        )
        .collect()
}
