//! Live updates. One task samples the engine, at most every [`FAST`] while a page
//! listens and every [`SLOW`] otherwise, and only when an input was applied since the
//! last sample. It diffs jobs (task counts per state, outcome) and workers against the
//! previous sample and publishes what changed; `/api/events` streams each publication
//! to a page as a server-sent event, so pages fetch a view only when it changed.

use crate::error::ApiError;
use crate::headline::{quantile, Headline, Throughput};
use crate::router::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use keel_coordinator::Handle;
use keel_engine::{Engine, JobOutcome, TaskCounts, Time, WorkerView};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};

pub(crate) const FAST: Duration = Duration::from_millis(500);
pub(crate) const SLOW: Duration = Duration::from_secs(2);
/// More changed jobs than this in one sample are sent as "refetch everything".
const MAX_IDS: usize = 200;
/// Publications a slow page may fall behind by before it is told to refetch all.
const BACKLOG: usize = 16;

/// One publication: what changed since the previous one.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    pub seq: u64,
    pub now: Time,
    /// Ids of jobs that changed, appeared or were forgotten; None: refetch any job.
    pub jobs: Option<Vec<u64>>,
    pub workers: bool,
    pub headline: Headline,
}

pub struct Hub {
    updates: broadcast::Sender<Arc<Update>>,
    latest: Mutex<Arc<Update>>,
    views: Arc<Semaphore>,
    max_views: usize,
}

impl Hub {
    pub fn new(max_views: usize) -> Hub {
        Hub {
            updates: broadcast::channel(BACKLOG).0,
            latest: Mutex::new(Arc::new(Update {
                seq: 0,
                now: 0,
                jobs: None,
                workers: true,
                headline: Headline::default(),
            })),
            views: Arc::new(Semaphore::new(max_views)),
            max_views,
        }
    }

    /// The latest publication, as a page that just connected (or fell behind) needs
    /// it: everything may have changed.
    pub fn everything(&self) -> Update {
        let latest = self.latest.lock().map(|l| (**l).clone());
        let latest = latest.unwrap_or_else(|p| (**p.into_inner()).clone());
        Update {
            jobs: None,
            workers: true,
            ..latest
        }
    }

    pub fn headline(&self) -> Headline {
        self.everything().headline
    }

    fn watched(&self) -> bool {
        self.views.available_permits() < self.max_views
    }

    fn publish(&self, update: Update) {
        let update = Arc::new(update);
        if let Ok(mut latest) = self.latest.lock() {
            *latest = update.clone();
        }
        let _ = self.updates.send(update);
    }
}

/// What one sample keeps of a job: enough to see that it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct JobPrint {
    done: u32,
    outcome: Option<JobOutcome>,
    /// Counted only while the job runs; a finished job's counts never change.
    counts: Option<TaskCounts>,
}

struct Sample {
    jobs: BTreeMap<u64, JobPrint>,
    workers: Vec<WorkerView>,
    lanes: Vec<(String, u64)>,
}

fn sample(engine: &Engine) -> Sample {
    let jobs = engine
        .jobs()
        .iter()
        .map(|j| {
            let counts = match j.outcome {
                Some(_) => None,
                None => engine.task_counts(j.id).ok(),
            };
            let done = j.tasks - j.remaining.min(j.tasks);
            (
                j.id.get(),
                JobPrint {
                    done,
                    outcome: j.outcome,
                    counts,
                },
            )
        })
        .collect();
    Sample {
        jobs,
        workers: engine.workers(),
        lanes: engine.queued_by_lane(),
    }
}

/// Job ids whose print differs between `before` and `after`, and how many tasks
/// finished in between (jobs that appeared count from zero).
fn diff(before: &BTreeMap<u64, JobPrint>, after: &BTreeMap<u64, JobPrint>) -> (Vec<u64>, u64) {
    let mut changed = Vec::new();
    let mut finished = 0u64;
    for (id, print) in after {
        let old = before.get(id);
        if old != Some(print) {
            changed.push(*id);
        }
        let old_done = old.map_or(0, |o| o.done);
        finished += u64::from(print.done.saturating_sub(old_done));
    }
    changed.extend(before.keys().filter(|id| !after.contains_key(id)));
    (changed, finished)
}

/// Samples and publishes until the task is aborted.
pub(crate) async fn run(
    hub: Arc<Hub>,
    handle: Handle,
    clock: Arc<dyn keel_coordinator::Clock>,
    writable: bool,
) {
    let mut inputs_seen = None;
    let mut jobs: BTreeMap<u64, JobPrint> = BTreeMap::new();
    let mut workers: Vec<WorkerView> = Vec::new();
    let mut lanes = Vec::new();
    let mut throughput = Throughput::new(Instant::now());
    let mut previous = Headline::default();
    let mut seq = 0u64;
    loop {
        let metrics = handle.metrics();
        let mut changed = Vec::new();
        let mut workers_changed = false;
        let mut finished = 0;
        if inputs_seen != Some(metrics.inputs) {
            if let Ok(now) = handle.read(sample).await {
                let (ids, done) = diff(&jobs, &now.jobs);
                // The first sample finds jobs, not progress.
                finished = if inputs_seen.is_some() { done } else { 0 };
                changed = ids;
                workers_changed = now.workers != workers;
                (jobs, workers, lanes) = (now.jobs, now.workers, now.lanes);
                inputs_seen = Some(metrics.inputs);
            }
        }
        throughput.add(Instant::now(), finished);
        let (finished_per_s, window_s) = throughput.rate(Instant::now());
        let headline = Headline {
            leader: handle.is_leader(),
            queued: metrics.queued,
            lanes: lanes.clone(),
            finished_per_s,
            window_s,
            claims: metrics.claim_to_start_seconds.count,
            claim_p50: quantile(&metrics.claim_to_start_seconds, 0.5),
            claim_p99: quantile(&metrics.claim_to_start_seconds, 0.99),
            jobs_active: jobs.values().filter(|j| j.outcome.is_none()).count(),
            workers_live: workers.iter().filter(|w| w.status != "lost").count(),
            writable,
        };
        if !changed.is_empty() || workers_changed || headline != previous || seq == 0 {
            seq += 1;
            hub.publish(Update {
                seq,
                now: clock.now_ms(),
                jobs: (changed.len() <= MAX_IDS).then_some(changed),
                workers: workers_changed,
                headline: headline.clone(),
            });
            previous = headline;
        }
        tokio::time::sleep(if hub.watched() { FAST } else { SLOW }).await;
    }
}

fn event(update: &Update) -> Event {
    let data = serde_json::to_string(update).unwrap_or_else(|_| "{}".into());
    Event::default().event("update").data(data)
}

/// `GET /api/events`: the latest state at once, then every publication. At most
/// `max_live_views` streams are open at a time; one more is refused with 503.
pub(crate) async fn events(
    State(app): State<App>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = app.hub.views.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_live_views",
            format!(
                "{} pages already receive live updates; close one and reload",
                app.hub.max_views
            ),
        )
    })?;
    let updates = app.hub.updates.subscribe();
    let first = app.hub.everything();
    let state = LiveStream {
        first: Some(first),
        updates,
        hub: app.hub.clone(),
        _permit: permit,
    };
    let stream = stream::unfold(state, |mut s| async move {
        if let Some(first) = s.first.take() {
            return Some((Ok(event(&first).retry(Duration::from_secs(3))), s));
        }
        let update = match s.updates.recv().await {
            Ok(update) => (*update).clone(),
            Err(broadcast::error::RecvError::Lagged(_)) => s.hub.everything(),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event(&update)), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One page's stream; its permit frees the slot when the page goes away.
struct LiveStream {
    first: Option<Update>,
    updates: broadcast::Receiver<Arc<Update>>,
    hub: Arc<Hub>,
    _permit: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(done: u32, outcome: Option<JobOutcome>) -> JobPrint {
        JobPrint {
            done,
            outcome,
            counts: None,
        }
    }

    #[test]
    fn the_diff_names_changed_new_and_forgotten_jobs_and_counts_finished_tasks() {
        let before = BTreeMap::from([
            (1, print(1, None)),
            (2, print(3, None)),
            (3, print(2, None)),
        ]);
        let after = BTreeMap::from([
            (1, print(1, None)),
            (2, print(5, Some(JobOutcome::Succeeded))),
            (4, print(1, None)),
        ]);
        let (changed, finished) = diff(&before, &after);
        assert_eq!(changed, [2, 4, 3]);
        assert_eq!(finished, 3);
    }
}
