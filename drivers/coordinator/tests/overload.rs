//! Load never costs the lease. On the embedded redb log (one writer at a time, as in
//! `keel serve`), with the default 5 s lease: a worker flooding 300,000 heartbeats
//! (300 frames of 1,000, four frames in flight like a session) plus 1,000 sessions
//! registering at once, while a job runs; and a log long enough to be snapshotted,
//! whose trim once held redb's writer for seconds while the lease renewal waited.

mod support;

use keel_coordinator::{CoordinatorConfig, Handle, SystemClock};
use keel_engine::{
    Accepted, ClientCommand, Effect, Input, InstanceId, JobOutcome, JobSpec, TaskSpec,
    WorkerCommand, WorkerId,
};
use keel_log::RedbLog;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::config;
use tokio::sync::Semaphore;

/// Bounds the whole of a test: far above what the load takes.
const BOUND: Duration = Duration::from_secs(120);

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

async fn start_on_redb(dir: &std::path::Path) -> Handle {
    let log = Arc::new(RedbLog::open(dir).unwrap_or_else(|e| panic!("open: {e}")));
    let config = CoordinatorConfig {
        lease_ttl: Duration::from_secs(5),
        max_batch: 4096,
        ..config("overload")
    };
    keel_coordinator::Coordinator::start(config, log, Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("start: {e}"))
}

fn worker_input(name: &str, command: WorkerCommand) -> Input {
    Input::worker(&WorkerId::new(name), InstanceId::new(1), command)
}

async fn register(handle: &Handle, name: &str) {
    let register = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 8,
    };
    match handle.apply(worker_input(name, register)).await {
        Ok(Some(Ok(_))) => {}
        other => panic!("registering {name}: {other:?}"),
    }
}

/// Watches leadership every few milliseconds until told to stop; true if it was ever
/// lost.
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

/// 300 frames of 1,000 heartbeats, four in flight at a time. Returns frames answered.
async fn heartbeat_flood(handle: Handle) -> usize {
    register(&handle, "flood").await;
    let in_flight = Arc::new(Semaphore::new(4));
    let mut frames = Vec::new();
    for _ in 0..300 {
        let permit = in_flight.clone().acquire_owned().await;
        let handle = handle.clone();
        let beats = (0..1000)
            .map(|_| worker_input("flood", WorkerCommand::Heartbeat))
            .collect();
        frames.push(tokio::spawn(async move {
            let answered = handle.apply_all(beats).await;
            drop(permit);
            answered.is_ok_and(|a| a.iter().all(|r| matches!(r, Some(Ok(_)))))
        }));
    }
    let mut answered = 0;
    for frame in frames {
        answered += usize::from(frame.await.unwrap_or(false));
    }
    answered
}

/// 1,000 sessions register at once, then each heartbeats three times.
async fn session_storm(handle: Handle) -> usize {
    let sessions = (0..1000).map(|i| {
        let handle = handle.clone();
        tokio::spawn(async move {
            let name = format!("storm-{i}");
            register(&handle, &name).await;
            let _effects = handle.route_worker(WorkerId::new(name.as_str()));
            for _ in 0..3 {
                let beat = handle.apply(worker_input(&name, WorkerCommand::Heartbeat));
                if !matches!(beat.await, Ok(Some(Ok(_)))) {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            true
        })
    });
    let mut registered = 0;
    for session in sessions.collect::<Vec<_>>() {
        registered += usize::from(session.await.unwrap_or(false));
    }
    registered
}

/// Submits a job of 50 tasks and runs it to the end on one worker.
async fn run_job(handle: Handle) -> JobOutcome {
    register(&handle, "runner").await;
    let mut effects = handle.route_worker(WorkerId::new("runner"));
    let tasks = (0..50).map(|i| TaskSpec::new(format!("t{i}"))).collect();
    let submit = Input::Client(ClientCommand::SubmitJob(JobSpec::new("steady", tasks)));
    let job = match handle.apply(submit).await {
        Ok(Some(Ok(Accepted::JobSubmitted { job, .. }))) => job,
        other => panic!("submit: {other:?}"),
    };
    let mut watch = handle.watch_job(job);
    let request = WorkerCommand::RequestWork { credits: 4 };
    assert!(matches!(
        handle.apply(worker_input("runner", request)).await,
        Ok(Some(Ok(_)))
    ));
    let mut done = 0;
    while done < 50 {
        let Some(Effect::GrantOffered { grant, .. }) = effects.recv().await else {
            continue;
        };
        let accept = worker_input("runner", WorkerCommand::AcceptGrant { grant });
        let fence = match handle.apply(accept).await {
            Ok(Some(Ok(Accepted::LeaseStarted { fence, .. }))) => fence,
            // Under load an offer can expire before its acceptance is applied; the
            // task is offered again.
            Ok(Some(Err(_))) => continue,
            other => panic!("accept: {other:?}"),
        };
        let complete = WorkerCommand::Complete {
            fence,
            output: "ok".into(),
        };
        assert!(matches!(
            handle.apply(worker_input("runner", complete)).await,
            Ok(Some(Ok(_)))
        ));
        done += 1;
        let more = WorkerCommand::RequestWork { credits: 4 };
        let _ = handle.apply(worker_input("runner", more)).await;
    }
    loop {
        match watch.recv().await {
            Ok(Effect::JobFinished { outcome, .. }) => return outcome,
            Ok(_) => {}
            Err(e) => panic!("watching the job: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_flood_and_a_session_storm_never_cost_the_lease() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let handle = start_on_redb(dir.path()).await;
    let epoch = handle.epoch();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_leadership(&handle, done.clone());

    let flood = tokio::spawn(heartbeat_flood(handle.clone()));
    let storm = tokio::spawn(session_storm(handle.clone()));
    let job = tokio::spawn(run_job(handle.clone()));
    let outcome = bounded("the job", job).await;
    let frames = bounded("the flood", flood).await;
    let sessions = bounded("the storm", storm).await;
    done.store(true, Ordering::SeqCst);
    let lost = watcher.await.unwrap_or(true);

    assert_eq!(frames.ok(), Some(300), "every flood frame is answered");
    assert_eq!(sessions.ok(), Some(1000), "every session registers");
    assert_eq!(outcome.ok(), Some(JobOutcome::Succeeded));
    assert!(!lost, "leadership was lost under load");
    assert_eq!(handle.epoch(), epoch, "leadership changed hands under load");
    assert!(handle.is_leader());
    let metrics = handle.metrics();
    assert!(
        metrics.log_end < 60_000,
        "{} entries: the flood's heartbeats were logged one by one",
        metrics.log_end
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_a_long_redb_log_does_not_starve_the_lease() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let handle = start_on_redb(dir.path()).await;
    let epoch = handle.epoch();
    register(&handle, "busy").await;
    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch_leadership(&handle, done.clone());

    // 101 frames of 1,000 work requests: each is logged, and the log passes the
    // 100,000 entries at which a snapshot trims it.
    let load = async {
        for _ in 0..101 {
            let requests = (0..1000)
                .map(|_| worker_input("busy", WorkerCommand::RequestWork { credits: 1 }))
                .collect();
            if handle.apply_all(requests).await.is_err() {
                return false;
            }
        }
        true
    };
    assert!(bounded("the load", load).await, "a frame was refused");
    // Keep serving while the snapshot is stored, until it is.
    let stored = async {
        while handle.metrics().snapshots == 0 {
            let beat = handle.apply(worker_input("busy", WorkerCommand::Drain));
            assert!(
                matches!(beat.await, Ok(Some(Ok(_)))),
                "refused while trimming"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    bounded("the snapshot", stored).await;
    done.store(true, Ordering::SeqCst);
    let lost = watcher.await.unwrap_or(true);
    assert!(
        !lost,
        "leadership was lost while a snapshot trimmed the log"
    );
    assert_eq!(handle.epoch(), epoch);
}
