//! How many of a job's tasks are in each state, counted in place: job tables and live
//! views need the numbers, not a copy of every task and its attempt history.

use crate::ids::JobId;
use crate::output::TaskOutcome;
use crate::reject::Rejection;
use crate::state::{ReadyPlace, State, Task, TaskState};
use serde::{Deserialize, Serialize};

/// Tasks of one job per state; the states are those of [`crate::query::TaskStatus`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Waiting on dependencies.
    pub waiting: u32,
    /// Backing off before a retry or a start delay.
    pub delayed: u32,
    /// Ready, waiting for a worker.
    pub queued: u32,
    /// Ready, waiting for a token of a rate limit.
    pub rate_limited: u32,
    /// Ready, held back by the job's concurrency cap.
    pub parked: u32,
    /// Ready, held back by a reached hard limit of a budget of the job or its tenant.
    pub budget_stopped: u32,
    /// Ready, but no live worker has its capabilities.
    pub blocked: u32,
    /// Offered to a worker, not accepted yet.
    pub offered: u32,
    /// Held under a lease.
    pub running: u32,
    /// Parked on a waitpoint.
    pub suspended: u32,
    /// Ended in success.
    pub succeeded: u32,
    /// Ended in failure.
    pub failed: u32,
    /// Skipped: their dependencies could not be met.
    pub skipped: u32,
    /// Stopped before finishing.
    pub cancelled: u32,
}

impl TaskCounts {
    /// Each count under the word [`crate::query::TaskStatus::label`] uses for its state.
    pub fn labelled(&self) -> [(&'static str, u32); 14] {
        [
            ("waiting", self.waiting),
            ("delayed", self.delayed),
            ("queued", self.queued),
            ("rate_limited", self.rate_limited),
            ("parked", self.parked),
            ("budget_stopped", self.budget_stopped),
            ("blocked", self.blocked),
            ("offered", self.offered),
            ("running", self.running),
            ("suspended", self.suspended),
            ("succeeded", self.succeeded),
            ("failed", self.failed),
            ("skipped", self.skipped),
            ("cancelled", self.cancelled),
        ]
    }

    /// Counts `task`; `stopped` says whether a budget holds its job's ready tasks.
    fn count(&mut self, state: &State, task: &Task, stopped: bool) {
        let slot = match &task.state {
            TaskState::Waiting => &mut self.waiting,
            TaskState::Delayed { .. } => &mut self.delayed,
            TaskState::Ready {
                place: ReadyPlace::Queued | ReadyPlace::Parked,
            } if stopped => &mut self.budget_stopped,
            TaskState::Ready { place } => match place {
                ReadyPlace::Queued if crate::rate::throttled(state, task.queue_key()).is_some() => {
                    &mut self.rate_limited
                }
                ReadyPlace::Queued => &mut self.queued,
                ReadyPlace::Parked => &mut self.parked,
                ReadyPlace::Blocked => &mut self.blocked,
            },
            TaskState::Offered { .. } => &mut self.offered,
            TaskState::Running(_) => &mut self.running,
            TaskState::Suspended { .. } => &mut self.suspended,
            TaskState::Done(outcome) => match outcome {
                TaskOutcome::Succeeded => &mut self.succeeded,
                TaskOutcome::Failed { .. } => &mut self.failed,
                TaskOutcome::Skipped => &mut self.skipped,
                TaskOutcome::Cancelled { .. } => &mut self.cancelled,
            },
        };
        *slot += 1;
    }
}

pub(crate) fn task_counts(state: &State, id: JobId) -> Result<TaskCounts, Rejection> {
    let job = state
        .jobs
        .get(&id)
        .ok_or(Rejection::UnknownJob { job: id })?;
    let mut counts = TaskCounts::default();
    let stopped = crate::budget_use::stopping(state, id).is_some();
    for task in job.task_ids().filter_map(|t| state.tasks.get(&t)) {
        counts.count(state, task, stopped);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use crate::*;
    use std::collections::BTreeMap;

    #[test]
    fn budget_stopped_tasks_are_counted_as_status_shows_them() {
        let mut engine = Engine::new(Config::default());
        let w = WorkerId::new("w");
        let register = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 4,
        };
        engine.apply(0, Input::worker(&w, InstanceId(1), register));
        let mut spec = JobSpec::new("j", vec![TaskSpec::new("a"), TaskSpec::new("b")]);
        let limit = DimensionLimit {
            soft: None,
            hard: Some(1),
        };
        spec.budgets.insert(
            "b".into(),
            BudgetSpec {
                limits: BTreeMap::from([(ATTEMPTS.to_string(), limit)]),
                ..BudgetSpec::default()
            },
        );
        engine.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
        let ask = WorkerCommand::RequestWork { credits: 2 };
        engine.apply(1, Input::worker(&w, InstanceId(1), ask));
        let counts = engine.task_counts(JobId(1)).unwrap();
        assert_eq!((counts.offered, counts.budget_stopped), (1, 1));
        let labels: Vec<&str> = engine
            .describe_job(JobId(1))
            .unwrap()
            .tasks
            .iter()
            .map(|t| t.status.label())
            .collect();
        assert_eq!(labels, ["offered", "budget_stopped"]);
    }

    #[test]
    fn counts_agree_with_the_labels_of_described_tasks() {
        let mut engine = Engine::new(Config::default());
        let w = WorkerId::new("w");
        let register = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 1,
        };
        engine.apply(0, Input::worker(&w, InstanceId(1), register));
        let tasks = vec![
            TaskSpec::new("a"),
            TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
            TaskSpec::new("gpu").requires(&["gpu"]),
            TaskSpec::new("c"),
        ];
        engine.apply(
            0,
            Input::Client(ClientCommand::SubmitJob(JobSpec::new("j", tasks))),
        );
        let ask = WorkerCommand::RequestWork { credits: 1 };
        engine.apply(1, Input::worker(&w, InstanceId(1), ask));

        let counts = engine.task_counts(JobId(1)).unwrap();
        let mut expected: BTreeMap<&str, u32> = BTreeMap::new();
        for t in engine.describe_job(JobId(1)).unwrap().tasks {
            *expected.entry(t.status.label()).or_default() += 1;
        }
        let got: BTreeMap<&str, u32> = counts
            .labelled()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, expected);
        assert_eq!((counts.offered, counts.waiting, counts.blocked), (1, 1, 1));
        assert_eq!(
            engine.task_counts(JobId(9)),
            Err(Rejection::UnknownJob { job: JobId(9) })
        );
    }
}
