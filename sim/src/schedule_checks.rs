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

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{TaskSpec, Trigger};

    fn checks() -> ScheduleChecks {
        let job = JobSpec::new("template", vec![TaskSpec::new("a")]);
        let mut c = ScheduleChecks::default();
        c.added(&ScheduleSpec::new(
            "s",
            job,
            Trigger::Every { interval_ms: 10 },
        ));
        c
    }

    #[test]
    fn runs_stay_open_until_their_job_finishes() {
        let mut c = checks();
        let spec = c.fired("s", 10, JobId::new(1)).unwrap();
        assert_eq!(spec.name, run_name("s", 10));
        assert_eq!(spec.tasks, vec![TaskSpec::new("a")]);
        c.fired("s", 20, JobId::new(2)).unwrap();
        assert_eq!((c.open_runs(), c.fired_total()), (2, 2));
        c.finished(JobId::new(1));
        c.finished(JobId::new(7));
        assert_eq!((c.open_runs(), c.fired_total()), (1, 2));
    }

    #[test]
    fn a_due_time_fired_again_or_out_of_order_is_refused() {
        let mut c = checks();
        c.fired("s", 20, JobId::new(1)).unwrap();
        for due in [20, 10] {
            let e = c.fired("s", due, JobId::new(2)).unwrap_err();
            assert!(e.contains("after it had fired 20"), "{e}");
        }
        c.fired("s", 30, JobId::new(3)).unwrap();
        let e = c.fired("other", 40, JobId::new(4)).unwrap_err();
        assert!(e.contains("no client added it"), "{e}");
        assert_eq!(c.fired_total(), 2);
    }
}
