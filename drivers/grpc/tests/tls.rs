//! TLS from PEM files: a client that trusts the test CA submits and a worker serves
//! over TLS; a client speaking plaintext to the TLS port gets nowhere.
//! The fixtures in `tests/tls/` are a test-only CA and a localhost certificate.

mod support;

use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::ClientOptions;
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::*;
use keel_grpc::server::{ServerOptions, TlsFiles};
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use std::path::PathBuf;
use support::{within, Cluster};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_and_plaintext_is_refused() {
    let tls = TlsFiles {
        cert: fixture("server.pem"),
        key: fixture("server.key"),
    };
    let cluster = Cluster::start(ServerOptions {
        tls: Some(tls),
        ..ServerOptions::default()
    })
    .await;
    let secure = ClientOptions {
        ca: Some(fixture("ca.pem")),
        domain: Some("localhost".into()),
        ..cluster.client()
    };
    let mut jobs = secure.jobs().await.unwrap();
    let spec = JobSpec::new("tls", vec![TaskSpec::new("t")]);
    let job = jobs
        .submit_job(SubmitJobRequest {
            spec: Some(job_spec_to_proto(&spec)),
        })
        .await
        .unwrap()
        .into_inner()
        .job;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = WorkerConfig::new(secure.clone(), "w1", 1);
    let worker = tokio::spawn(Worker::new(config).run(
        |_t: Task| async { Outcome::Complete(b"done".to_vec()) },
        async {
            let _ = stopped.await;
        },
    ));
    let mut events = jobs
        .watch_job(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let outcome = within("the job finishing", async {
        loop {
            let e = events.message().await.unwrap().unwrap();
            if e.kind == "job_finished" {
                return e.detail;
            }
        }
    })
    .await;
    assert_eq!(outcome, "succeeded");
    let _ = stop.send(());
    assert_eq!(within("drain", worker).await.unwrap().unwrap().completed, 1);

    let plain = ClientOptions::new(cluster.url.replace("https://", "http://"));
    let refused = match plain.jobs().await {
        Ok(mut jobs) => jobs.list_jobs(ListJobsRequest::default()).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a plaintext client was served by the TLS port");
}
