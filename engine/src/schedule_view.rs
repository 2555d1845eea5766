//! What `keel schedule list` shows: each schedule's spec, state and counters.

use crate::ids::{JobId, Time};
use crate::schedule_spec::ScheduleSpec;
use serde::{Deserialize, Serialize};

/// One schedule as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    /// What was added.
    pub spec: ScheduleSpec,
    /// When it was added (interval schedules count from here).
    pub created_at: Time,
    /// Its next due time; `None` while paused or when it is never due again.
    pub next_due: Option<Time>,
    /// Paused by a client.
    pub paused: bool,
    /// The latest due time handled (run, skipped or missed).
    pub last_due: Option<Time>,
    /// Runs submitted and not yet finished.
    pub running: Vec<JobId>,
    /// A due time waiting for the running run to end.
    pub queued: Option<Time>,
    /// Runs submitted.
    pub fired: u64,
    /// Due times skipped because a run was still going.
    pub skipped: u64,
    /// Due times missed beyond the grace period and not run (misfire policy).
    pub missed: u64,
    /// Runs the engine refused to submit (a limit, a name taken by another job).
    pub failed: u64,
    /// Why the latest refused run was refused.
    pub last_error: Option<String>,
}

impl crate::Engine {
    /// Every schedule, in name order.
    pub fn schedules(&self) -> Vec<ScheduleView> {
        self.state.schedules.values().map(view).collect()
    }

    /// One schedule, if there is one of that name.
    pub fn schedule(&self, name: &str) -> Option<ScheduleView> {
        self.state.schedules.get(name).map(view)
    }
}

fn view(s: &crate::state::Schedule) -> ScheduleView {
    ScheduleView {
        spec: s.spec.clone(),
        created_at: s.created_at,
        next_due: s.next_due,
        paused: s.paused,
        last_due: s.last_due,
        running: s.active.iter().copied().collect(),
        queued: s.queued,
        fired: s.fired,
        skipped: s.skipped,
        missed: s.missed,
        failed: s.failed,
        last_error: s.last_error.clone(),
    }
}
