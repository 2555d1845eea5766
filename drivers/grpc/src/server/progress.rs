//! Progress reports of running attempts. They are advisory, so they live in memory
//! only: the latest report per task (dropped when the attempt reports its end) and a
//! broadcast that job watchers filter.

use crate::proto::JobEvent;
use keel_engine::{Fence, JobId, TaskId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub fence: Fence,
    pub per_mille: u32,
    pub message: String,
}

pub(crate) struct ProgressBoard {
    latest: Mutex<HashMap<TaskId, Report>>,
    events: broadcast::Sender<JobEvent>,
}

impl Default for ProgressBoard {
    fn default() -> Self {
        ProgressBoard {
            latest: Mutex::default(),
            events: broadcast::channel(1024).0,
        }
    }
}

impl ProgressBoard {
    pub(crate) fn report(&self, job: JobId, report: Report) {
        let event = JobEvent {
            job: job.get(),
            task: report.fence.task.get(),
            kind: "task_progress".into(),
            detail: report.message.clone(),
            attempt: report.fence.attempt,
            progress_per_mille: report.per_mille,
            ..Default::default()
        };
        self.lock().insert(report.fence.task, report);
        // Nobody watching is fine.
        let _ = self.events.send(event);
    }

    /// Forgets a task's progress once its attempt ended.
    pub(crate) fn clear(&self, task: TaskId) {
        self.lock().remove(&task);
    }

    /// The latest report for the attempt `fence` identifies, if it is that attempt's.
    pub(crate) fn latest(&self, task: TaskId, attempt: u32, epoch: u64) -> Option<Report> {
        self.lock()
            .get(&task)
            .filter(|r| r.fence.attempt == attempt && r.fence.epoch == epoch)
            .cloned()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Report>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }
}
