//! `keel.v1` schedules to and from the engine's: the request a client adds, and the
//! view `ListSchedules` answers with. Policy words are the ones `keel schedule` takes.

use crate::job_spec::{job_spec_from_proto, job_spec_to_proto};
use crate::proto;
use crate::validate::invalid;
use keel_engine::{Misfire, Overlap, ScheduleSpec, ScheduleView, Trigger};
use tonic::Status;

/// The grace period a request that names none gets.
const DEFAULT_GRACE_MS: u64 = 60_000;

/// The word for an overlap policy.
pub fn overlap_label(o: Overlap) -> &'static str {
    match o {
        Overlap::Skip => "skip",
        Overlap::QueueOne => "queue_one",
        Overlap::Allow => "allow",
    }
}

/// The word for a misfire policy (`run_all` carries its maximum separately).
pub fn misfire_label(m: Misfire) -> &'static str {
    match m {
        Misfire::RunOnce => "run_once",
        Misfire::RunAll { .. } => "run_all",
        Misfire::Skip => "skip",
    }
}

/// Reads an overlap word; empty is the default.
pub fn parse_overlap(word: &str) -> Result<Overlap, String> {
    match word {
        "" | "skip" => Ok(Overlap::Skip),
        "queue_one" => Ok(Overlap::QueueOne),
        "allow" => Ok(Overlap::Allow),
        other => Err(format!(
            "{other:?} is not an overlap policy (skip, queue_one, allow)"
        )),
    }
}

/// Reads a misfire word and, for `run_all`, its maximum; empty is the default.
pub fn parse_misfire(word: &str, max: u32) -> Result<Misfire, String> {
    match word {
        "" | "run_once" => Ok(Misfire::RunOnce),
        "run_all" => Ok(Misfire::RunAll { max }),
        "skip" => Ok(Misfire::Skip),
        other => Err(format!(
            "{other:?} is not a misfire policy (run_once, run_all, skip)"
        )),
    }
}

/// The engine's schedule from an `AddSchedule` request; the engine checks the rest.
pub fn schedule_from_proto(r: proto::AddScheduleRequest) -> Result<ScheduleSpec, Status> {
    let job = r.job.ok_or_else(|| invalid("job", "is required"))?;
    let job = job_spec_from_proto(job)?;
    let trigger = match r.trigger {
        Some(proto::add_schedule_request::Trigger::Cron(c)) => Trigger::Cron {
            expr: c.expr,
            zone: if c.zone.is_empty() {
                "UTC".into()
            } else {
                c.zone
            },
        },
        Some(proto::add_schedule_request::Trigger::EveryMs(ms)) => {
            Trigger::Every { interval_ms: ms }
        }
        None => return Err(invalid("trigger", "is required (cron or every_ms)")),
    };
    Ok(ScheduleSpec {
        name: r.name,
        job,
        trigger,
        overlap: parse_overlap(&r.overlap).map_err(|e| invalid("overlap", &e))?,
        misfire: parse_misfire(&r.misfire, r.catch_up_max).map_err(|e| invalid("misfire", &e))?,
        grace_ms: r.grace_ms.unwrap_or(DEFAULT_GRACE_MS),
    })
}

/// The request that adds `spec`.
pub fn schedule_to_proto(spec: &ScheduleSpec) -> proto::AddScheduleRequest {
    let (trigger, catch_up_max) = wire_trigger(spec);
    proto::AddScheduleRequest {
        name: spec.name.clone(),
        job: Some(job_spec_to_proto(&spec.job)),
        trigger: Some(match trigger {
            proto::schedule_view::Trigger::Cron(c) => proto::add_schedule_request::Trigger::Cron(c),
            proto::schedule_view::Trigger::EveryMs(ms) => {
                proto::add_schedule_request::Trigger::EveryMs(ms)
            }
        }),
        overlap: overlap_label(spec.overlap).into(),
        misfire: misfire_label(spec.misfire).into(),
        catch_up_max,
        grace_ms: Some(spec.grace_ms),
    }
}

fn wire_trigger(spec: &ScheduleSpec) -> (proto::schedule_view::Trigger, u32) {
    let trigger = match &spec.trigger {
        Trigger::Cron { expr, zone } => proto::schedule_view::Trigger::Cron(proto::CronTrigger {
            expr: expr.clone(),
            zone: zone.clone(),
        }),
        Trigger::Every { interval_ms } => proto::schedule_view::Trigger::EveryMs(*interval_ms),
    };
    let max = match spec.misfire {
        Misfire::RunAll { max } => max,
        _ => 0,
    };
    (trigger, max)
}

/// One schedule as `ListSchedules` shows it.
pub fn schedule_view_to_proto(v: &ScheduleView) -> proto::ScheduleView {
    let (trigger, catch_up_max) = wire_trigger(&v.spec);
    proto::ScheduleView {
        name: v.spec.name.clone(),
        job: Some(job_spec_to_proto(&v.spec.job)),
        trigger: Some(trigger),
        overlap: overlap_label(v.spec.overlap).into(),
        misfire: misfire_label(v.spec.misfire).into(),
        catch_up_max,
        grace_ms: v.spec.grace_ms,
        created_ms: v.created_at,
        paused: v.paused,
        next_due_ms: v.next_due,
        last_due_ms: v.last_due,
        running: v.running.iter().map(|j| j.get()).collect(),
        queued_ms: v.queued,
        fired: v.fired,
        skipped: v.skipped,
        missed: v.missed,
        failed: v.failed,
        last_error: v.last_error.clone().unwrap_or_default(),
    }
}
