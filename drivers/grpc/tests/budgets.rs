//! Budgets over real loopback gRPC: an SDK handler reports usage (counted once per
//! dedup key), a hard limit ends the job failed, `ListBudgets` shows the use, refusals
//! carry their codes, and a report made while the coordinator is unreachable is
//! delivered once the worker reconnects.

mod support;

use keel_coordinator::CoordinatorConfig;
use keel_engine::{BudgetOwner, BudgetSpec, DimensionLimit, GroupKind, JobSpec, TaskSpec};
use keel_grpc::client::ClientOptions;
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, UsageError, UsageRecorded, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::proxy::Proxy;
use support::{finished, run_worker, submit, within, Cluster};
use tokio::sync::{mpsc, Mutex};

fn budgeted(name: &str, hard: u64) -> JobSpec {
    let mut spec = JobSpec::new(
        name,
        vec![
            TaskSpec::new("call"),
            TaskSpec::new("after").after(GroupKind::AllOf, &["call"]),
        ],
    );
    let limits = [(
        "tokens".to_string(),
        DimensionLimit {
            soft: None,
            hard: Some(hard),
        },
    )];
    spec.budgets.insert(
        "llm".into(),
        BudgetSpec {
            limits: limits.into(),
            ..BudgetSpec::default()
        },
    );
    spec
}

type Reports = Vec<Result<UsageRecorded, UsageError>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_once_per_key_and_a_hard_limit_ends_the_job() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (reports_tx, mut reports) = mpsc::unbounded_channel::<Reports>();
    let handler = move |task: Task| {
        let reports_tx = reports_tx.clone();
        async move {
            let mut got = Vec::new();
            for (amount, key) in [(40, "k1"), (40, "k1"), (70, "k2")] {
                got.push(task.report_usage("llm", "tokens", amount, key).await);
            }
            got.push(task.report_usage("nope", "tokens", 1, "k3").await);
            got.push(task.report_usage("llm", "attempts", 1, "k4").await);
            let _ = reports_tx.send(got);
            Outcome::Complete(Vec::new())
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &budgeted("summarize", 100)).await.job;
    let got = within("the reports", reports.recv()).await.unwrap();
    let used: Vec<(u64, bool)> = got[..3]
        .iter()
        .map(|r| r.as_ref().map(|u| (u.used, u.duplicate)).unwrap())
        .collect();
    assert_eq!(used, [(40, false), (40, true), (110, false)]);
    assert_eq!(
        got[0].as_ref().unwrap().owner,
        BudgetOwner::Job(keel_engine::JobId::new(job))
    );
    let reason = |r: &Result<UsageRecorded, UsageError>| match r {
        Err(UsageError::Refused { reason, .. }) => reason.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(reason(&got[3]), "unknown_budget");
    assert_eq!(reason(&got[4]), "invalid_usage");

    assert_eq!(within("the job", finished(&mut jobs, job)).await, "failed");
    let view = jobs
        .describe_job(DescribeJobRequest { job })
        .await
        .unwrap()
        .into_inner();
    let after = &view.tasks[1];
    assert_eq!(after.state, "cancelled");
    assert_eq!(after.detail, "budget_exhausted");
    let notes = view.status.unwrap().budget_notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("tokens 110 reached its hard limit 100")),
        "{notes:?}"
    );
    let budgets = jobs
        .list_budgets(ListBudgetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .budgets;
    assert_eq!(budgets.len(), 1);
    let b = &budgets[0];
    assert_eq!((b.name.as_str(), b.job_name.as_str()), ("llm", "summarize"));
    assert_eq!(b.dimensions[0].used, 110);
    assert_eq!(b.exhausted.as_deref(), Some("tokens"));
    assert_eq!(b.reports, 2);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_made_while_the_coordinator_is_unreachable_is_sent_after_reconnecting() {
    let mut config = CoordinatorConfig::default();
    config.engine.lease_ttl_ms = 60_000;
    let cluster = Cluster::start_with(config, ServerOptions::default()).await;
    let upstream: SocketAddr = cluster.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;

    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (go_tx, go) = mpsc::unbounded_channel::<()>();
    let go = Arc::new(Mutex::new(go));
    let (reports_tx, mut reports) = mpsc::unbounded_channel::<Reports>();
    let handler = move |task: Task| {
        let (started_tx, go, reports_tx) = (started_tx.clone(), go.clone(), reports_tx.clone());
        async move {
            if task.key != "call" {
                return Outcome::Complete(Vec::new());
            }
            let _ = started_tx.send(());
            go.lock().await.recv().await;
            let got = task.report_usage("llm", "tokens", 40, "k1").await;
            let _ = reports_tx.send(vec![got]);
            Outcome::Complete(Vec::new())
        }
    };
    let mut client = ClientOptions::new(proxy.url.clone());
    client.connect_timeout = Duration::from_millis(500);
    let mut worker_config = WorkerConfig::new(client, "w1", 1);
    worker_config.answer_timeout = Duration::from_millis(500);
    worker_config.backoff_max = Duration::from_millis(200);
    let worker = run_worker(worker_config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &budgeted("outage", 1_000)).await.job;
    within("the handler starting", started.recv())
        .await
        .unwrap();

    proxy.hang();
    go_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        reports.try_recv().is_err(),
        "answered while the coordinator was unreachable"
    );
    proxy.heal();
    let got = within("the report's answer", reports.recv()).await.unwrap();
    let recorded = got[0].as_ref().expect("counted");
    assert_eq!((recorded.used, recorded.duplicate), (40, false));
    assert_eq!(
        within("the job", finished(&mut jobs, job)).await,
        "succeeded"
    );
    let budgets = jobs
        .list_budgets(ListBudgetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .budgets;
    assert_eq!((budgets[0].dimensions[0].used, budgets[0].reports), (40, 1));
    worker.abort();
}
