//! The HTTP/1.1 server: bounded request heads (size and time to arrive), a bounded
//! number of open connections, and everything stopped together.

use crate::{live, router, ConsoleOptions};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use keel_coordinator::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// Bytes buffered for a request head at most (hyper's minimum); a longer head is
/// refused with 431.
const MAX_HEAD: usize = 8 * 1024;
/// A request head must arrive within this long.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A running console; dropping it (or [`Console::stop`]) stops the server, its open
/// connections and its sampling task.
pub struct Console {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Console {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(self) {}
}

impl Drop for Console {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the console for `handle` on `listener` until the returned [`Console`] drops.
pub fn serve(
    handle: Handle,
    listener: TcpListener,
    options: ConsoleOptions,
) -> std::io::Result<Console> {
    let addr = listener.local_addr()?;
    let writable = options.authorize.is_some();
    let clock = options.clock.clone();
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let (router, hub) = router::router(handle.clone(), options);
    let task = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        tasks.spawn(live::run(hub, handle, clock, writable));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "console: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                // Reap finished connections so the set does not grow.
                Some(_) = tasks.join_next(), if tasks.len() > 1 => continue,
            };
            let service = TowerToHyperService::new(router.clone());
            tasks.spawn(async move {
                let _slot = slot;
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD);
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(Console { addr, task })
}
