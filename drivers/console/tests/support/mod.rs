//! What the console tests share: a coordinator on an in-memory log, a worker that runs
//! tasks through the handle, and requests sent to the console's router in process.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use keel_console::{router, Authorize, ConsoleOptions};
use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, SystemClock};
use keel_engine::{
    Accepted, ClientCommand, Effect, Fence, Input, InstanceId, JobId, JobSpec, WorkerCommand,
    WorkerId,
};
use keel_log::MemoryLog;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tower::ServiceExt;

pub(crate) const TOKEN: &str = "console-test-token-0123456789";

pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub(crate) async fn coordinator() -> Handle {
    let config = CoordinatorConfig {
        holder: "console-test".into(),
        ..CoordinatorConfig::default()
    };
    within(
        "start",
        Coordinator::start(config, Arc::new(MemoryLog::new()), Arc::new(SystemClock)),
    )
    .await
    .expect("the coordinator starts")
}

pub(crate) fn options(writable: bool) -> ConsoleOptions {
    let mut options = ConsoleOptions::new(Arc::new(SystemClock));
    if writable {
        let authorize: Authorize = Arc::new(|t: &[u8]| t == TOKEN.as_bytes());
        options.authorize = Some(authorize);
    }
    options
}

pub(crate) fn console(handle: &Handle, writable: bool) -> Router {
    router(handle.clone(), options(writable)).0
}

pub(crate) async fn submit(handle: &Handle, spec: JobSpec) -> JobId {
    match handle
        .apply(Input::Client(ClientCommand::SubmitJob(spec)))
        .await
    {
        Ok(Some(Ok(Accepted::JobSubmitted { job, .. }))) => job,
        other => panic!("submit gave {other:?}"),
    }
}

pub(crate) struct Worker {
    pub id: WorkerId,
    effects: mpsc::Receiver<Effect>,
}

impl Worker {
    pub(crate) async fn register(handle: &Handle, name: &str) -> Worker {
        let id = WorkerId::new(name);
        let effects = handle.route_worker(id.clone());
        let register = WorkerCommand::Register {
            capabilities: vec!["cpu".into()],
            lanes: vec![],
            max_concurrency: 2,
        };
        let worker = Worker { id, effects };
        worker.send(handle, register).await;
        worker
    }

    pub(crate) async fn send(&self, handle: &Handle, command: WorkerCommand) -> Accepted {
        let input = Input::worker(&self.id, InstanceId::new(1), command);
        match handle.apply(input).await {
            Ok(Some(Ok(accepted))) => accepted,
            other => panic!("worker command gave {other:?}"),
        }
    }

    /// Claims one task; returns its fence.
    pub(crate) async fn claim(&mut self, handle: &Handle) -> Fence {
        self.send(handle, WorkerCommand::RequestWork { credits: 1 })
            .await;
        let grant = loop {
            match within("a grant", self.effects.recv()).await {
                Some(Effect::GrantOffered { grant, .. }) => break grant,
                Some(_) => continue,
                None => panic!("the route closed"),
            }
        };
        match self
            .send(handle, WorkerCommand::AcceptGrant { grant })
            .await
        {
            Accepted::LeaseStarted { fence, .. } => fence,
            other => panic!("accept gave {other:?}"),
        }
    }

    pub(crate) async fn finish(&self, handle: &Handle, fence: Fence, error: Option<&str>) {
        let command = match error {
            None => WorkerCommand::Complete {
                fence,
                output: "ok".into(),
            },
            Some(e) => WorkerCommand::Fail {
                fence,
                error: e.into(),
                permanent: true,
            },
        };
        self.send(handle, command).await;
    }
}

pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub(crate) async fn request(
    router: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let response = within(
        uri,
        router.clone().oneshot(builder.body(Body::empty()).unwrap()),
    )
    .await
    .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = within("the body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub(crate) async fn get(router: &Router, uri: &str) -> Answer {
    request(router, Method::GET, uri, None).await
}
