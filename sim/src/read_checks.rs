//! The read checks. A client's status read goes through the commit pipeline like an
//! input, and runs once every input before it is durable, before anything after it
//! is applied: it sees the state of exactly the durable inputs
//! (`read_before_durable`). So no later read, across crashes and rebuilds from the
//! log, sees a job further back than an earlier one did (`read_went_back`): fewer
//! tasks remain, never more, and an ended job stays ended the same way.

use crate::check::{Check, CheckFailure};
use crate::durable::failure;
use keel_engine::{JobId, JobOutcome, JobStatus, Time};
use std::collections::BTreeMap;

/// A status read of a job by name, waiting in the pipeline.
pub(crate) struct StatusRead {
    pub job: String,
}

/// What a read saw when it ran.
#[derive(Debug)]
pub(crate) struct ReadSeen {
    pub job: String,
    /// The job's status; `None` while it is unknown (not yet submitted, or forgotten).
    pub status: Option<JobStatus>,
    /// Log entries the engine had applied when the read ran.
    pub applied: u64,
    /// Log entries durable when the read ran.
    pub durable: u64,
}

/// What the reads of each job have shown so far.
#[derive(Default)]
pub(crate) struct ReadChecks {
    seen: BTreeMap<JobId, (u32, Option<JobOutcome>)>,
    /// Reads that ran.
    pub reads: u64,
}

impl ReadChecks {
    /// A read ran at `at`.
    pub(crate) fn read(&mut self, at: Time, seen: &ReadSeen) -> Result<(), CheckFailure> {
        self.reads += 1;
        if seen.applied != seen.durable {
            let detail = format!(
                "a read of {} ran against {} applied entries, {} of them durable",
                seen.job, seen.applied, seen.durable
            );
            return Err(failure(at, Check::ReadBeforeDurable, detail));
        }
        let Some(status) = &seen.status else {
            return Ok(());
        };
        let now = (status.remaining, status.outcome);
        if let Some(&(remaining, outcome)) = self.seen.get(&status.id) {
            if now.0 > remaining || (outcome.is_some() && now.1 != outcome) {
                let detail = format!(
                    "job {} read with {} of {} tasks remaining and outcome {:?}, after a read saw {} remaining and outcome {:?}",
                    seen.job, now.0, status.tasks, now.1, remaining, outcome
                );
                return Err(failure(at, Check::ReadWentBack, detail));
            }
        }
        self.seen.insert(status.id, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(remaining: u32, outcome: Option<JobOutcome>, applied: u64) -> ReadSeen {
        ReadSeen {
            job: "j1".into(),
            status: Some(JobStatus {
                id: serde_json::from_str::<JobId>("1").unwrap(),
                name: "j1".into(),
                tenant: "default".into(),
                lane: "default".into(),
                submitted_at: 0,
                tasks: 3,
                remaining,
                outcome,
                finished_at: None,
                budget_notes: Vec::new(),
            }),
            applied,
            durable: 10,
        }
    }

    #[test]
    fn a_read_must_run_on_durable_state_and_never_go_back() {
        let mut checks = ReadChecks::default();
        checks.read(1, &seen(3, None, 10)).unwrap();
        checks.read(2, &seen(1, None, 10)).unwrap();
        let ahead = checks.read(3, &seen(1, None, 11)).unwrap_err();
        assert_eq!(ahead.check, Check::ReadBeforeDurable);
        let back = checks.read(4, &seen(2, None, 10)).unwrap_err();
        assert_eq!(back.check, Check::ReadWentBack);
        checks
            .read(5, &seen(0, Some(JobOutcome::Succeeded), 10))
            .unwrap();
        let undone = checks.read(6, &seen(0, None, 10)).unwrap_err();
        assert_eq!(undone.check, Check::ReadWentBack);
        let unknown = ReadSeen {
            status: None,
            ..seen(0, None, 10)
        };
        checks.read(7, &unknown).unwrap();
        assert_eq!(checks.reads, 7);
    }
}
