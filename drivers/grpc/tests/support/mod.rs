//! A coordinator on an in-memory log serving gRPC on a free loopback port.

#![allow(dead_code)]

pub(crate) mod proxy;
pub(crate) mod raw;

use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, SystemClock};
use keel_grpc::client::ClientOptions;
use keel_grpc::server::{serve, ServerOptions};
use keel_grpc::worker::{Handler, Summary, Worker, WorkerConfig, WorkerError};
use keel_log::MemoryLog;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub(crate) struct Cluster {
    pub url: String,
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Cluster {
    pub(crate) async fn start(options: ServerOptions) -> Cluster {
        Cluster::start_with(CoordinatorConfig::default(), options).await
    }

    pub(crate) async fn start_with(config: CoordinatorConfig, options: ServerOptions) -> Cluster {
        Cluster::start_on(Arc::new(MemoryLog::new()), config, options).await
    }

    /// A coordinator on `log` (the embedded redb log, say) serving gRPC.
    pub(crate) async fn start_on<L: keel_log::Log + 'static>(
        log: Arc<L>,
        config: CoordinatorConfig,
        options: ServerOptions,
    ) -> Cluster {
        let handle = Coordinator::start(config, log, Arc::new(SystemClock))
            .await
            .expect("coordinator starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = serve(handle.clone(), listener, options, Arc::default(), async {
            let _ = stopped.await;
        });
        tokio::spawn(async move {
            if let Err(e) = server.await {
                panic!("server failed: {e}");
            }
        });
        Cluster {
            url,
            handle,
            stop: Some(stop),
        }
    }

    pub(crate) fn client(&self) -> ClientOptions {
        ClientOptions::new(self.url.clone())
    }
}

/// Bounds a test step so a hang fails the test instead of stalling the suite.
pub(crate) async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 60s"))
}

/// Submits `spec` through `jobs`, failing the test if it is refused.
pub(crate) async fn submit(
    jobs: &mut keel_grpc::client::Jobs,
    spec: &keel_engine::JobSpec,
) -> keel_grpc::proto::SubmitJobResponse {
    let request = keel_grpc::proto::SubmitJobRequest {
        spec: Some(keel_grpc::job_spec_to_proto(spec)),
    };
    jobs.submit_job(request).await.unwrap().into_inner()
}

/// Follows a job's events until it finishes; its outcome.
pub(crate) async fn finished(jobs: &mut keel_grpc::client::Jobs, job: u64) -> String {
    let mut events = jobs
        .watch_job(keel_grpc::proto::WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let e = events
            .message()
            .await
            .unwrap()
            .expect("the watch ended early");
        if e.kind == "job_finished" {
            return e.detail;
        }
    }
}

/// A worker running `handler` in the background until it is stopped.
pub(crate) struct RunningWorker {
    stop: oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<Summary, WorkerError>>,
}

pub(crate) fn run_worker(config: WorkerConfig, handler: impl Handler) -> RunningWorker {
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(Worker::new(config).run(handler, async {
        let _ = stopped.await;
    }));
    RunningWorker { stop, run }
}

impl RunningWorker {
    /// Asks the worker to drain, and waits (bounded) for its summary.
    pub(crate) async fn stop(self) -> Summary {
        let _ = self.stop.send(());
        within("the worker stopping", self.run)
            .await
            .expect("the worker task panicked")
            .expect("the worker failed")
    }

    /// Ends the worker without waiting for it to drain.
    pub(crate) fn abort(self) {
        let _ = self.stop.send(());
        self.run.abort();
    }
}
