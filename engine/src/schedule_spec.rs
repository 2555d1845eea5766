//! What a client asks of recurring jobs: a schedule is a job template plus a trigger
//! (a cron expression in a time zone, or a fixed interval) and the policies for a run
//! that would overlap the previous one and for due times missed while the coordinator
//! was down. Plain data, checked by `validate` before anything is stored.

use crate::config::Limits;
use crate::cron::{parse_zone, Cron};
use crate::ids::Time;
use crate::reject::{JobError, Rejection};
use crate::spec::JobSpec;
use crate::validate::{check_name, validate_job};
use serde::{Deserialize, Serialize};

/// Schedules one engine holds at most; an `AddSchedule` beyond it is refused.
pub const MAX_SCHEDULES: usize = 1024;
/// The shortest interval: runs are named by their due second, so two runs of one
/// schedule never share a name.
pub const MIN_INTERVAL_MS: u64 = 1_000;
/// The longest interval and the longest grace period (ten years and seven days).
const MAX_INTERVAL_MS: u64 = 10 * 366 * 86_400_000;
const MAX_GRACE_MS: u64 = 7 * 86_400_000;
/// The most missed runs `Misfire::RunAll` may start at once.
pub const MAX_CATCH_UP: u32 = 1_000;
/// Bytes a run name adds to the schedule's name: `@` and a UTC second.
const RUN_SUFFIX_LEN: u32 = 21;

/// When a schedule is due.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Trigger {
    /// Five-field cron (`*/5 * * * *`, or a macro such as `@daily`) in an IANA zone.
    Cron {
        /// The expression.
        expr: String,
        /// The zone its wall-clock minutes are read in, e.g. `UTC`, `Europe/Berlin`.
        zone: String,
    },
    /// Every `interval_ms`, counted from when the schedule was added.
    Every {
        /// The period, at least [`MIN_INTERVAL_MS`].
        interval_ms: u64,
    },
}

/// What a due time does while the schedule's previous run has not finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Overlap {
    /// The due time is skipped (counted).
    #[default]
    Skip,
    /// The due time waits for the running run to end; later ones are skipped while
    /// one waits.
    QueueOne,
    /// Runs start regardless.
    Allow,
}

/// What due times missed by more than the grace period (the coordinator was down, or
/// the clock jumped) do when the engine next sees the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Misfire {
    /// One run, for the latest missed due time.
    #[default]
    RunOnce,
    /// A run for each of the latest `max` missed due times, oldest first.
    RunAll {
        /// At most this many (1 to [`MAX_CATCH_UP`]).
        max: u32,
    },
    /// None; the schedule resumes at its next due time.
    Skip,
}

/// A recurring job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Unique among schedules; each run is the job named `NAME@YYYY-MM-DDTHH:MM:SSZ`
    /// after its due time.
    pub name: String,
    /// The job each run submits (its own name is replaced by the run's name).
    pub job: JobSpec,
    /// When it is due.
    pub trigger: Trigger,
    /// A due time while the previous run is unfinished.
    pub overlap: Overlap,
    /// Due times missed by more than `grace_ms`.
    pub misfire: Misfire,
    /// How late a due time may be seen and still run as on time (1 s to 7 days).
    pub grace_ms: u64,
}

impl ScheduleSpec {
    /// A schedule with the default policies (skip overlaps, run missed times once, one
    /// minute of grace).
    pub fn new(name: impl Into<String>, job: JobSpec, trigger: Trigger) -> ScheduleSpec {
        ScheduleSpec {
            name: name.into(),
            job,
            trigger,
            overlap: Overlap::default(),
            misfire: Misfire::default(),
            grace_ms: 60_000,
        }
    }
}

/// What a client may do to schedules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScheduleCommand {
    /// Store a schedule; the same spec again is a duplicate, another under a taken
    /// name is refused.
    Add(Box<ScheduleSpec>),
    /// Stop firing; due times while paused are not run.
    Pause {
        /// The schedule.
        name: String,
    },
    /// Fire again from the next due time after now.
    Resume {
        /// The schedule.
        name: String,
    },
    /// Forget the schedule; its runs already submitted continue.
    Delete {
        /// The schedule.
        name: String,
    },
}

fn invalid(problem: impl Into<String>) -> Rejection {
    Rejection::InvalidSchedule {
        problem: problem.into(),
    }
}

/// Checks every field of `spec`, naming the first one that is wrong.
pub(crate) fn validate(spec: &ScheduleSpec, limits: &Limits) -> Result<(), Rejection> {
    let max = limits.max_name_len.saturating_sub(RUN_SUFFIX_LEN).max(1);
    check_name("schedule name", &spec.name, max).map_err(|e| invalid(e.to_string()))?;
    let mut template = spec.job.clone();
    template.name = run_name(&spec.name, 0);
    validate_job(&template, limits).map_err(|e: JobError| invalid(format!("its job: {e}")))?;
    match &spec.trigger {
        Trigger::Cron { expr, zone } => {
            Cron::parse(expr).map_err(|e| invalid(e.to_string()))?;
            parse_zone(zone).map_err(|e| invalid(e.to_string()))?;
        }
        Trigger::Every { interval_ms } => {
            if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(interval_ms) {
                return Err(invalid(format!(
                    "interval {interval_ms} ms is outside {MIN_INTERVAL_MS} ms to {MAX_INTERVAL_MS} ms"
                )));
            }
        }
    }
    if let Misfire::RunAll { max } = spec.misfire {
        if !(1..=MAX_CATCH_UP).contains(&max) {
            return Err(invalid(format!(
                "misfire run_all max {max} is outside 1 to {MAX_CATCH_UP}"
            )));
        }
    }
    if !(1_000..=MAX_GRACE_MS).contains(&spec.grace_ms) {
        return Err(invalid(format!(
            "grace {} ms is outside 1000 ms to {MAX_GRACE_MS} ms",
            spec.grace_ms
        )));
    }
    Ok(())
}

/// The first due time strictly after `after`; `None` when there is none (a cron
/// expression with no fire time left within eight years, or a time past the calendar).
pub(crate) fn next_due(trigger: &Trigger, created_at: Time, after: Time) -> Option<Time> {
    let due = next_due_of(trigger, created_at, after);
    // A due time at or before `after` would fire again at once, for ever.
    debug_assert!(
        due.is_none_or(|t| t > after),
        "next due time {due:?} is not after {after}"
    );
    due
}

fn next_due_of(trigger: &Trigger, created_at: Time, after: Time) -> Option<Time> {
    match trigger {
        Trigger::Cron { expr, zone } => {
            let cron = Cron::parse(expr).ok()?;
            cron.next_after(after, parse_zone(zone).ok()?)
        }
        Trigger::Every { interval_ms } => {
            let step = (*interval_ms).max(1);
            let done = after.saturating_sub(created_at) / step;
            created_at.checked_add(done.checked_add(1)?.checked_mul(step)?)
        }
    }
}

/// The name of the run due at `due`: the schedule's name, `@`, and the due second in
/// UTC, so names sort by time and never repeat within a schedule.
pub fn run_name(schedule: &str, due: Time) -> String {
    use chrono::{Datelike, Timelike};
    let stamp = i64::try_from(due)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{}s", due / 1000),
            |t| {
                let (d, h) = (t.date_naive(), t.time());
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    d.year(),
                    d.month(),
                    d.day(),
                    h.hour(),
                    h.minute(),
                    h.second()
                )
            },
        );
    format!("{schedule}@{stamp}")
}
