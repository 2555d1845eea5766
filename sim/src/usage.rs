//! What a simulated task reports against a budget while it runs: each attempt sends
//! `reports` usage reports of `amount` in `dimension` of `budget`, spread evenly over
//! its run, each under its own dedup key (`t7.a2.r1`: task, attempt, report number);
//! with `resend`, it sends every report once more under the same key just before it
//! completes, as a worker that did not see the answer does. Reports travel the
//! simulated network like any command, so they are also lost, delayed and duplicated.

use keel_engine::{Fence, WorkerCommand};
use serde::{Deserialize, Serialize};

/// A task's usage reports (`[job.task.usage]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    /// The budget reported against: the job's own of this name, else its tenant's.
    pub budget: String,
    /// A dimension the budget limits (not `attempts` or `attempt_ms`).
    pub dimension: String,
    /// How much each report says was used.
    pub amount: u64,
    /// Reports per attempt.
    #[serde(default = "one")]
    pub reports: u32,
    /// Send every report a second time, same key, just before completing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resend: bool,
}

fn one() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The most reports one attempt sends (a bound that keeps payloads and runs small).
pub(crate) const MAX_REPORTS: u32 = 100;

impl UsagePlan {
    /// The plan in a payload's tail: its fields separated by spaces (names hold none).
    pub(crate) fn encode(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.budget,
            self.dimension,
            self.amount,
            self.reports,
            u8::from(self.resend)
        )
    }

    /// Reads [`UsagePlan::encode`]'s text; `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<UsagePlan> {
        let mut parts = text.split(' ');
        let plan = UsagePlan {
            budget: parts.next()?.to_string(),
            dimension: parts.next()?.to_string(),
            amount: parts.next()?.parse().ok()?,
            reports: parts.next()?.parse().ok()?,
            resend: parts.next()? == "1",
        };
        parts.next().is_none().then_some(plan)
    }

    /// Local milliseconds into a run of `run_ms` at which report `k` (from 1) leaves.
    pub(crate) fn due_ms(&self, k: u32, run_ms: u64) -> u64 {
        let n = u64::from(self.reports) + 1;
        run_ms.saturating_mul(u64::from(k)) / n
    }

    /// Report `k` of the attempt `fence`.
    pub(crate) fn report(&self, fence: Fence, k: u32) -> WorkerCommand {
        WorkerCommand::ReportUsage {
            fence,
            budget: self.budget.clone(),
            dimension: self.dimension.clone(),
            amount: self.amount,
            dedup_key: dedup_key(fence, k),
        }
    }
}

/// The key of report `k` of an attempt: the same for a resend, distinct across
/// reports, attempts and tasks.
pub(crate) fn dedup_key(fence: Fence, k: u32) -> String {
    format!("{}.a{}.r{k}", fence.task, fence.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::TaskId;

    fn plan() -> UsagePlan {
        UsagePlan {
            budget: "llm".into(),
            dimension: "tokens".into(),
            amount: 40,
            reports: 3,
            resend: true,
        }
    }

    #[test]
    fn a_plan_round_trips_through_its_text_and_nothing_else_reads() {
        assert_eq!(UsagePlan::decode(&plan().encode()), Some(plan()));
        for bad in [
            "",
            "llm tokens",
            "llm tokens x 3 1",
            "llm tokens 4 3 1 extra",
        ] {
            assert_eq!(UsagePlan::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reports_spread_over_the_run_under_keys_naming_task_attempt_and_number() {
        let p = plan();
        let due: Vec<u64> = (1..=3).map(|k| p.due_ms(k, 1_000)).collect();
        assert_eq!(due, [250, 500, 750]);
        let fence = Fence {
            task: TaskId::new(7),
            attempt: 2,
            epoch: 5,
        };
        assert_eq!(dedup_key(fence, 1), "t7.a2.r1");
        assert_ne!(dedup_key(fence, 1), dedup_key(fence, 2));
        let WorkerCommand::ReportUsage { dedup_key, .. } = p.report(fence, 3) else {
            panic!("a usage report");
        };
        assert_eq!(dedup_key, "t7.a2.r3");
    }
}
