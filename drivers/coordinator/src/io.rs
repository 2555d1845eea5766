//! Where log calls run. A log that blocks (redb fsyncs inside its calls) runs each call
//! on the blocking pool, so a slow disk never holds one of the runtime's worker
//! threads: those carry the gRPC sessions, the engine task and the lease renewal, and
//! a runtime with two of them (two cores) would otherwise stall whole while a snapshot
//! trims the log. Every log call of the coordinator goes through [`spawn_io`].

use std::future::Future;
use tokio::task::JoinHandle;

/// Runs `call` in its own task, on the blocking pool when `blocks`. The task runs to
/// its end even if its handle is dropped, so a caller may stop waiting for it.
#[cfg(not(madsim))]
pub(crate) fn spawn_io<T: Send + 'static>(
    blocks: bool,
    call: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    if blocks {
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(call))
    } else {
        tokio::spawn(call)
    }
}

/// The simulator runs every task on one thread and has no blocking pool to hand a
/// blocking log to; the logs it runs with never block.
#[cfg(madsim)]
pub(crate) fn spawn_io<T: Send + 'static>(
    _blocks: bool,
    call: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    tokio::spawn(call)
}

/// Runs `call` as [`spawn_io`] does and waits for it; a task that ended without an
/// answer (it panicked) is reported by `lost`.
pub(crate) async fn run_io<T: Send + 'static>(
    blocks: bool,
    call: impl Future<Output = T> + Send + 'static,
    lost: impl FnOnce(String) -> T,
) -> T {
    match spawn_io(blocks, call).await {
        Ok(value) => value,
        Err(join) => lost(join.to_string()),
    }
}
