//! A busy coordinator never deposes itself, over real gRPC: while two SDK workers run a
//! 50-task job, one worker session floods 300 frames of 1,000 heartbeats and 1,000 more
//! worker sessions open at once, each registering and heartbeating, all on the
//! embedded redb log. Leadership never lapses (polled every 5 ms; one term, one epoch),
//! the flood's heartbeats are not logged one by one, and the job succeeds.
//!
//! The 1,000 sessions are HTTP/2 streams multiplexed over 20 connections (50 each,
//! under the server's limit of concurrent streams per connection), so the test needs
//! about 40 sockets, not 2,000 file descriptors.

mod support;

use keel_coordinator::{CoordinatorConfig, Handle};
use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::Workers;
use keel_grpc::proto::coordinator_event::Event;
use keel_grpc::proto::{reply, DescribeJobRequest};
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, WorkerConfig};
use keel_log::RedbLog;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::raw::{heartbeat, register, Raw};
use support::{run_worker, submit, within, Cluster};
use tokio::sync::oneshot;

const SESSIONS: usize = 1_000;
const CONNECTIONS: usize = 20;
const FLOOD_FRAMES: usize = 300;
const FLOOD_BEATS: usize = 1_000;

/// Polls leadership every 5 ms until `done`; whether it ever lapsed.
fn watch_leadership(handle: &Handle, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<bool> {
    let handle = handle.clone();
    tokio::spawn(async move {
        let mut lost = false;
        while !done.load(Ordering::SeqCst) {
            lost |= !handle.is_leader();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lost
    })
}

/// Whether `reply` answers a command as done (not refused).
fn done(reply: &Option<reply::Result>) -> bool {
    matches!(
        reply,
        Some(reply::Result::Ok(_) | reply::Result::Registered(_))
    )
}

/// One session sends 300 frames of 1,000 heartbeats; the heartbeats answered as done.
async fn heartbeat_flood(mut workers: Workers) -> usize {
    let mut raw = Raw::registered(&mut workers, "flood", 1).await;
    let mut last = 0;
    for _ in 0..FLOOD_FRAMES {
        last = raw.send((0..FLOOD_BEATS).map(|_| heartbeat()).collect());
    }
    let mut answered = 0;
    loop {
        let frame = raw.inbound.message().await;
        let Ok(Some(frame)) = frame else {
            panic!("the flood's session ended after {answered} answers: {frame:?}");
        };
        for event in frame.events {
            if let Some(Event::Reply(r)) = event.event {
                answered += usize::from(done(&r.result));
                if r.seq == last {
                    return answered;
                }
            }
        }
    }
}

/// 1,000 sessions over [`CONNECTIONS`] connections register at once and heartbeat
/// three times each; they stay open until `hold` ends. The sessions that did it all.
async fn session_storm(connections: Vec<Workers>, hold: oneshot::Receiver<()>) -> usize {
    let sessions = (0..SESSIONS).map(|i| {
        let mut workers = connections[i % CONNECTIONS].clone();
        tokio::spawn(async move {
            let first = vec![register(&format!("storm-{i}"), 1)];
            let mut raw = Raw::open(&mut workers, first).await.ok()?;
            let mut ok = matches!(raw.reply(1).await, Ok(reply::Result::Registered(_)));
            for _ in 0..3 {
                let beat = raw.send(vec![heartbeat()]);
                ok &= raw.reply(beat).await.is_ok_and(|r| done(&Some(r)));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ok.then_some(raw)
        })
    });
    let mut open = Vec::new();
    for session in sessions.collect::<Vec<_>>() {
        if let Ok(Some(raw)) = session.await {
            open.push(raw);
        }
    }
    let _ = hold.await;
    open.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_flood_and_a_session_storm_over_grpc_never_cost_the_lease() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = Arc::new(RedbLog::open(dir.path()).expect("the redb log opens"));
    // A leadership lease of 1 s, renewed every third of it: the load outlasts several
    // renewals, so a renewal starved for longer than the lease would show.
    let config = CoordinatorConfig {
        lease_ttl: Duration::from_secs(1),
        ..CoordinatorConfig::default()
    };
    let cluster = Cluster::start_on(log, config, ServerOptions::default()).await;
    let handle = cluster.handle.clone();
    let epoch = handle.epoch();
    let done_flag = Arc::new(AtomicBool::new(false));
    let watcher = watch_leadership(&handle, done_flag.clone());

    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(cluster.client().workers().await.expect("a connection"));
    }
    let flood_connection = cluster.client().workers().await.expect("a connection");
    let (release, hold) = oneshot::channel();
    let flood = tokio::spawn(heartbeat_flood(flood_connection));
    let storm = tokio::spawn(session_storm(connections, hold));

    let mut runners = Vec::new();
    for name in ["runner-1", "runner-2"] {
        let handler = |_task: Task| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Outcome::Complete(b"ok".to_vec())
        };
        let config = WorkerConfig::new(cluster.client(), name, 4);
        runners.push(run_worker(config, handler));
    }
    let mut jobs = cluster.client().jobs().await.expect("a client");
    let tasks = (0..50).map(|i| TaskSpec::new(format!("t{i}"))).collect();
    let job = submit(&mut jobs, &JobSpec::new("steady", tasks)).await.job;
    let outcome = within("the job", async {
        loop {
            let view = jobs.describe_job(DescribeJobRequest { job }).await;
            let status = view.ok().and_then(|v| v.into_inner().status);
            if let Some(s) = status.filter(|s| !s.outcome.is_empty()) {
                return s.outcome;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let answered = within("the flood", flood).await.expect("the flood ran");
    let _ = release.send(());
    let sessions = within("the storm", storm).await.expect("the storm ran");
    done_flag.store(true, Ordering::SeqCst);
    let lost = watcher.await.unwrap_or(true);
    for runner in runners {
        runner.stop().await;
    }

    let metrics = handle.metrics();
    eprintln!(
        "storm over gRPC: {sessions} sessions, {answered} flood heartbeats answered ({} absorbed), job {outcome}, terms {}, log end {}",
        metrics.heartbeats_absorbed, metrics.terms, metrics.log_end
    );
    assert_eq!(outcome, "succeeded");
    assert_eq!(
        answered,
        FLOOD_FRAMES * FLOOD_BEATS,
        "every flood heartbeat is answered"
    );
    assert_eq!(sessions, SESSIONS, "every session registers and heartbeats");
    assert!(!lost, "leadership lapsed under load");
    assert_eq!(handle.epoch(), epoch, "leadership changed hands under load");
    assert_eq!(metrics.terms, 1, "the coordinator led more than one term");
    assert!(
        metrics.log_end < 60_000,
        "{} entries: the flood's heartbeats were logged one by one",
        metrics.log_end
    );
    assert!(handle.is_leader());
}
