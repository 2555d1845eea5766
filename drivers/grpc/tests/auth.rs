//! Bearer-token auth over the wire: no token, a wrong token, and a worker token trying
//! to submit a job are refused; the right tokens work.

mod support;

use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::auth::{Role, Tokens};
use keel_grpc::client::ClientOptions;
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use support::{run_worker, within, Cluster};
use tonic::Code;

const CLIENT: &str = "client-token-0123456789";
const WORKER: &str = "worker-token-0123456789";

fn with_token(cluster: &Cluster, token: Option<&str>) -> ClientOptions {
    ClientOptions {
        token: token.map(str::to_owned),
        ..cluster.client()
    }
}

fn submit() -> SubmitJobRequest {
    SubmitJobRequest {
        spec: Some(job_spec_to_proto(&JobSpec::new(
            "j",
            vec![TaskSpec::new("t")],
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_roles_enforced() {
    let tokens = Tokens::new(vec![
        (Role::Client, CLIENT.into()),
        (Role::Worker, WORKER.into()),
    ]);
    let cluster = Cluster::start(ServerOptions {
        tokens: Some(tokens),
        ..ServerOptions::default()
    })
    .await;

    let mut anonymous = with_token(&cluster, None).jobs().await.unwrap();
    let err = anonymous
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut wrong = with_token(&cluster, Some("client-token-0123456780"))
        .jobs()
        .await
        .unwrap();
    let err = wrong.submit_job(submit()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut worker_jobs = with_token(&cluster, Some(WORKER)).jobs().await.unwrap();
    let err = worker_jobs.submit_job(submit()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = worker_jobs
        .cancel_job(CancelJobRequest { job: 0 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    worker_jobs
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap();

    let config = WorkerConfig::new(with_token(&cluster, None), "anon", 1);
    let refused = Worker::new(config)
        .run(
            |_t: Task| async { Outcome::Complete(vec![]) },
            std::future::pending(),
        )
        .await;
    assert!(refused.is_err(), "a worker without a token was served");

    let mut client = with_token(&cluster, Some(CLIENT)).jobs().await.unwrap();
    let job = client.submit_job(submit()).await.unwrap().into_inner().job;
    let config = WorkerConfig::new(with_token(&cluster, Some(WORKER)), "w1", 1);
    let worker = run_worker(config, |_t: Task| async { Outcome::Complete(vec![]) });
    let finished = within("the job finishing", support::finished(&mut client, job)).await;
    assert_eq!(finished, "succeeded");
    assert_eq!(worker.stop().await.completed, 1);
}
