//! The schedule check: every run the coordinator released was fired by a schedule a
//! client had added, and each schedule fires each due time at most once, in order
//! (released outputs are durable, so a crash that lost a fire and fired it again after
//! recovery shows here only if both left). It also keeps what the world needs to know
//! when a run with schedules is over: which runs have not ended.

use keel_engine::{run_name, JobId, JobSpec, ScheduleSpec, Time};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(crate) struct ScheduleChecks {
    /// Templates by schedule name, as added.
    specs: BTreeMap<String, JobSpec>,
    /// The latest due time fired per schedule.
    last_due: BTreeMap<String, Time>,
    /// Runs fired and not yet finished.
    open: BTreeSet<JobId>,
    /// Runs fired in all.
    fired: u64,
}

impl ScheduleChecks {
    /// A client's `Add` was accepted.
    pub(crate) fn added(&mut self, spec: &ScheduleSpec) {
        self.specs.insert(spec.name.clone(), spec.job.clone());
    }

    /// A run was fired: the job it submitted (to admit into the other checks), or what
    /// is wrong with it.
    pub(crate) fn fired(
        &mut self,
        schedule: &str,
        due: Time,
        job: JobId,
    ) -> Result<JobSpec, String> {
        let Some(template) = self.specs.get(schedule) else {
            return Err(format!(
                "schedule {schedule:?} fired {job} but no client added it"
            ));
        };
        if let Some(&last) = self.last_due.get(schedule) {
            if due <= last {
                return Err(format!(
                    "schedule {schedule:?} fired due time {due} after it had fired {last}"
                ));
            }
        }
        self.last_due.insert(schedule.to_string(), due);
        self.open.insert(job);
        self.fired += 1;
        let mut spec = template.clone();
        spec.name = run_name(schedule, due);
        Ok(spec)
    }

    /// A job finished; a run among them is no longer open.
    pub(crate) fn finished(&mut self, job: JobId) {
        self.open.remove(&job);
    }

    /// Runs fired that have not finished.
    pub(crate) fn open_runs(&self) -> usize {
        self.open.len()
    }

    /// Runs fired in all.
    pub(crate) fn fired_total(&self) -> u64 {
        self.fired
    }
}
