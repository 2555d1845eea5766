//! Schedules in a scenario (`[[schedule]]`): a client adds each at `add_ms` and deletes
//! it at `delete_ms`, so a run with schedules still ends; between the two the
//! coordinator fires its runs, which the checks follow like submitted jobs.

use crate::scenario::{JobPlan, TaskPlan};
use crate::setup::job_spec;
use keel_engine::{Misfire, Overlap, ScheduleSpec, Trigger};
use serde::{Deserialize, Serialize};

/// One recurring job and when the client adds and deletes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePlan {
    /// Its name; runs are named `NAME@<due second>`.
    pub name: String,
    /// Virtual time the client adds it.
    #[serde(default)]
    pub add_ms: u64,
    /// Virtual time the client deletes it.
    pub delete_ms: u64,
    /// A fixed interval; exactly one of `every_ms` and `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// A five-field cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The cron expression's zone; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `skip` (default), `queue_one` or `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// `run_once` (default), `run_all` or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<String>,
    /// With `run_all`: the most missed runs started (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<u32>,
    /// How late a due time may run as on time (default 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u64>,
    /// The run's tasks (`[[schedule.task]]`).
    #[serde(rename = "task")]
    pub tasks: Vec<TaskPlan>,
}

/// The engine's schedule for `plan`; a policy word it does not know is a load error.
pub(crate) fn schedule_spec(plan: &SchedulePlan) -> Result<ScheduleSpec, String> {
    let job = job_spec(&JobPlan {
        name: plan.name.clone(),
        submit_ms: 0,
        tenant: None,
        max_concurrency: None,
        deadline_ms: None,
        result: Vec::new(),
        tasks: plan.tasks.clone(),
    });
    let trigger = match (plan.every_ms, &plan.cron) {
        (Some(interval_ms), None) => Trigger::Every { interval_ms },
        (None, Some(expr)) => Trigger::Cron {
            expr: expr.clone(),
            zone: plan.zone.clone().unwrap_or_else(|| "UTC".into()),
        },
        _ => {
            return Err(format!(
                "schedule {:?} needs exactly one of every_ms and cron",
                plan.name
            ))
        }
    };
    let overlap = match plan.overlap.as_deref() {
        None | Some("skip") => Overlap::Skip,
        Some("queue_one") => Overlap::QueueOne,
        Some("allow") => Overlap::Allow,
        Some(other) => {
            return Err(format!(
                "schedule {:?}: unknown overlap {other:?}",
                plan.name
            ))
        }
    };
    let misfire = match plan.misfire.as_deref() {
        None | Some("run_once") => Misfire::RunOnce,
        Some("run_all") => Misfire::RunAll {
            max: plan.catch_up.unwrap_or(1_000),
        },
        Some("skip") => Misfire::Skip,
        Some(other) => {
            return Err(format!(
                "schedule {:?}: unknown misfire {other:?}",
                plan.name
            ))
        }
    };
    Ok(ScheduleSpec {
        overlap,
        misfire,
        grace_ms: plan.grace_ms.unwrap_or(60_000),
        ..ScheduleSpec::new(plan.name.clone(), job, trigger)
    })
}
