//! TLS from PEM files: a client that trusts the test CA submits and a worker serves
//! over TLS; a client speaking plaintext to the TLS port gets nowhere.
//! The fixtures in `tests/tls/` are a test-only CA and a localhost certificate.

mod support;

use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::ClientOptions;
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::*;
use keel_grpc::server::{ServerOptions, TlsFiles};
use keel_grpc::worker::{Outcome, Task, WorkerConfig};
use std::path::PathBuf;
use support::{run_worker, within, Cluster};

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
    let config = WorkerConfig::new(secure.clone(), "w1", 1);
    let worker = run_worker(config, |_t: Task| async {
        Outcome::Complete(b"done".to_vec())
    });
    let outcome = within("the job finishing", support::finished(&mut jobs, job)).await;
    assert_eq!(outcome, "succeeded");
    assert_eq!(worker.stop().await.completed, 1);

    let plain = ClientOptions::new(cluster.url.replace("https://", "http://"));
    let refused = match plain.jobs().await {
        Ok(mut jobs) => jobs.list_jobs(ListJobsRequest::default()).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a plaintext client was served by the TLS port");
}
