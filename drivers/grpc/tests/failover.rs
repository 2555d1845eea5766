//! Two coordinators share one log: a leader on one port and a standby that serves on
//! another once it has taken the partition over. SDK workers and a client given both
//! addresses follow the takeover when the leader dies, without being restarted, and
//! the job finishes.

mod support;

use keel_coordinator::{Coordinator, CoordinatorConfig, Handle, SystemClock};
use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::{Client, ClientOptions};
use keel_grpc::job_spec_to_proto;
use keel_grpc::server::{serve, ServerOptions};
use keel_grpc::worker::{Outcome, Summary, Task, Worker, WorkerConfig};
use keel_log::MemoryLog;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TASKS: usize = 30;

struct Node {
    url: String,
    handle: Handle,
}

/// A coordinator on `log` (waiting as a standby while another holds it) serving on
/// `port` once it leads, until it stops leading.
async fn node(log: Arc<MemoryLog>, holder: &str, port: u16) -> Node {
    let config = CoordinatorConfig {
        holder: holder.into(),
        lease_ttl: Duration::from_millis(600),
        ..CoordinatorConfig::default()
    };
    let handle = Coordinator::start(config, log, Arc::new(SystemClock))
        .await
        .expect("the coordinator starts");
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stopped = handle.clone();
    tokio::spawn(serve(
        handle.clone(),
        listener,
        ServerOptions::default(),
        Arc::default(),
        async move {
            stopped.stopped().await;
        },
    ));
    Node { url, handle }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn options(urls: &str) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(500),
        failover_timeout: Duration::from_secs(30),
        ..ClientOptions::new(urls)
    }
}

/// An SDK worker on `urls` whose handler takes 150 ms and notes each task it ran.
fn worker(
    urls: &str,
    name: &str,
    ran: Arc<Mutex<Vec<u64>>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<Summary> {
    let mut config = WorkerConfig::new(options(urls), name, 2);
    config.backoff_max = Duration::from_millis(500);
    let handler = move |task: Task| {
        let ran = ran.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            ran.lock().unwrap().push(task.task.get());
            Outcome::Complete(Vec::new())
        }
    };
    let mut stop = stop;
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        Worker::new(config).run(handler, shutdown).await.unwrap()
    })
}

/// Finished tasks of `job`, through whichever coordinator leads.
async fn done(client: &mut Client, job: u64) -> (usize, String) {
    let view = client
        .describe_job(job)
        .await
        .expect("the job is described");
    let succeeded = view.tasks.iter().filter(|t| t.state == "succeeded").count();
    let outcome = view.status.map(|s| s.outcome).unwrap_or_default();
    (succeeded, outcome)
}

#[test]
fn workers_and_clients_follow_a_standby_that_takes_over() {
    let log = Arc::new(MemoryLog::new());
    // The leader runs in a runtime of its own, so shutting that runtime down drops its
    // server, connections, engine task and lease renewal at once, like a crash.
    let leader_runtime = runtime(1);
    let leader = leader_runtime.block_on(node(log.clone(), "a", 0));
    runtime(2).block_on(async move {
        let standby_port = free_port();
        let standby_url = format!("http://127.0.0.1:{standby_port}");
        let standby = tokio::spawn(node(log.clone(), "b", standby_port));
        let urls = format!("{},{standby_url}", leader.url);

        let ran = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers: Vec<_> = ["w1", "w2"]
            .iter()
            .map(|name| worker(&urls, name, ran.clone(), stopped.clone()))
            .collect();
        let mut client = Client::connect(options(&urls)).await.unwrap();
        assert_eq!(client.address(), Some(leader.url.as_str()));
        let tasks = (0..TASKS).map(|i| TaskSpec::new(format!("t{i}"))).collect();
        let spec = job_spec_to_proto(&JobSpec::new("follow", tasks));
        let job = client.submit_job(spec.clone()).await.unwrap().response.job;
        support::within("some tasks finishing on the leader", async {
            while done(&mut client, job).await.0 < 4 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;

        let leader_epoch = leader.handle.epoch();
        leader_runtime.shutdown_background();
        drop(leader.handle);

        let outcome = support::within("the job finishing on the standby", async {
            loop {
                let (_, outcome) = done(&mut client, job).await;
                if !outcome.is_empty() {
                    return outcome;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert_eq!(outcome, "succeeded");
        assert_eq!(client.address(), Some(standby_url.as_str()));
        let standby = standby.await.unwrap();
        assert!(standby.handle.epoch() > leader_epoch);

        // Submitting the same job again through the new leader is answered as the one
        // already recorded, so a submission retried across the takeover runs once.
        let again = client.submit_job(spec).await.unwrap().response;
        assert!(again.duplicate && again.job == job);

        let _ = stop.send(true);
        let mut reconnects = 0;
        for w in workers {
            let summary = support::within("a worker draining", w).await.unwrap();
            assert!(summary.reconnects >= 1, "{summary:?}");
            reconnects += summary.reconnects;
        }
        let ran = ran.lock().unwrap().clone();
        let mut distinct = ran.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), TASKS, "every task ran");
        // Only attempts cut short by the crash may run twice: at most one per slot.
        assert!(
            ran.len() <= TASKS + 4,
            "{} runs for {TASKS} tasks",
            ran.len()
        );
        assert!(reconnects >= 2);
        let _ = standby.handle.shutdown().await;
    });
}
