//! Recurring jobs. A schedule's next due time is a timer; when it fires the engine
//! submits the run as any job, so a run is logged, replayed and recovered like one and
//! fires once per due time across coordinator crashes. A due time the engine sees
//! more than the grace period late (the coordinator was down, or the clock jumped)
//! is a misfire: the timer is re-armed at the current time and the missed due times
//! are handled there by the schedule's misfire policy.

use crate::ids::Time;
use crate::job;
use crate::output::{Accepted, Effect};
use crate::reject::Rejection;
use crate::schedule_spec::{
    next_due, run_name, validate, Misfire, Overlap, ScheduleCommand, ScheduleSpec, MAX_SCHEDULES,
};
use crate::state::{Schedule, State};
use crate::timers::Timer;
use std::collections::{BTreeSet, VecDeque};

type Reply = Result<Accepted, Rejection>;

/// Due times one catch-up walks through at most; beyond it the missed count stops
/// growing, so a clock that jumps by years costs bounded work.
const SCAN_LIMIT: u64 = 100_000;

/// Applies a client's schedule command.
pub(crate) fn command(state: &mut State, cmd: ScheduleCommand) -> Reply {
    match cmd {
        ScheduleCommand::Add(spec) => add(state, *spec),
        ScheduleCommand::Pause { name } => pause(state, &name),
        ScheduleCommand::Resume { name } => resume(state, &name),
        ScheduleCommand::Delete { name } => delete(state, &name),
    }
}

fn updated(name: &str, next_due: Option<Time>, duplicate: bool) -> Reply {
    Ok(Accepted::ScheduleUpdated {
        name: name.to_string(),
        next_due,
        duplicate,
    })
}

fn unknown(name: &str) -> Rejection {
    Rejection::UnknownSchedule {
        name: name.to_string(),
    }
}

fn add(state: &mut State, spec: ScheduleSpec) -> Reply {
    validate(&spec, &state.config.limits)?;
    let spec_hash = crate::digest::fingerprint(&spec);
    if let Some(existing) = state.schedules.get(&spec.name) {
        if existing.spec_hash == spec_hash {
            return updated(&spec.name, existing.next_due, true);
        }
        return Err(Rejection::ScheduleNameConflict { name: spec.name });
    }
    if state.schedules.len() >= MAX_SCHEDULES {
        return Err(Rejection::LimitReached {
            limit: "max_schedules".into(),
            value: MAX_SCHEDULES as u64,
        });
    }
    let now = state.now;
    let name = spec.name.clone();
    let due = next_due(&spec.trigger, now, now);
    state.schedules.insert(
        name.clone(),
        Schedule {
            spec,
            spec_hash,
            created_at: now,
            next_due: None,
            late_from: None,
            paused: false,
            active: BTreeSet::new(),
            queued: None,
            release_at: None,
            last_due: None,
            fired: 0,
            skipped: 0,
            missed: 0,
            failed: 0,
            last_error: None,
        },
    );
    set_next(state, &name, due);
    updated(&name, due, false)
}

/// Moves the schedule's due timer to `due`, keeping the record and the armed timer in
/// step.
fn set_next(state: &mut State, name: &str, due: Option<Time>) {
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    let timer = Timer::ScheduleDue(name.to_string());
    if let Some(old) = std::mem::replace(&mut s.next_due, due) {
        state.timers.disarm(old, timer.clone());
    }
    if let Some(at) = due {
        state.timers.arm(at, timer);
    }
}

fn pause(state: &mut State, name: &str) -> Reply {
    let s = state.schedules.get_mut(name).ok_or_else(|| unknown(name))?;
    if s.paused {
        return updated(name, None, true);
    }
    s.paused = true;
    s.late_from = None;
    if s.queued.take().is_some() {
        s.skipped += 1;
    }
    // A release timer is armed only for the time it is armed at, and due timers fire
    // before any input: none is pending here.
    set_next(state, name, None);
    updated(name, None, false)
}

fn resume(state: &mut State, name: &str) -> Reply {
    let s = state.schedules.get_mut(name).ok_or_else(|| unknown(name))?;
    if !s.paused {
        return updated(name, s.next_due, true);
    }
    s.paused = false;
    let due = next_due(&s.spec.trigger, s.created_at, state.now);
    set_next(state, name, due);
    updated(name, due, false)
}

fn delete(state: &mut State, name: &str) -> Reply {
    if !state.schedules.contains_key(name) {
        return Err(unknown(name));
    }
    // No release timer is pending either (see `pause`).
    set_next(state, name, None);
    if let Some(s) = state.schedules.remove(name) {
        for job in s.active {
            state.schedule_runs.remove(&job);
        }
    }
    updated(name, None, false)
}

/// The due timer fired at `at` while the clock moves to `target`.
pub(crate) fn due(state: &mut State, name: &str, at: Time, target: Time) {
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    if s.next_due != Some(at) {
        return;
    }
    s.next_due = None;
    if let Some(from) = s.late_from.take() {
        catch_up(state, name, from);
        return;
    }
    if target.saturating_sub(at) > s.spec.grace_ms {
        // Missed: handle every missed due time at the time the engine has reached.
        s.late_from = Some(at);
        set_next(state, name, Some(target));
        return;
    }
    s.last_due = Some(at);
    let next = next_due(&s.spec.trigger, s.created_at, at);
    start_or_hold(state, name, at);
    set_next(state, name, next);
}

/// Runs the due times from `from` to now by the misfire policy: those within the grace
/// period as on time, the latest of the older ones as the policy allows.
fn catch_up(state: &mut State, name: &str, from: Time) {
    let now = state.now;
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    let keep = match s.spec.misfire {
        Misfire::RunOnce => 1,
        Misfire::RunAll { max } => max as usize,
        Misfire::Skip => 0,
    };
    let (mut late, mut kept, mut on_time) = (0u64, VecDeque::new(), Vec::new());
    #[cfg(feature = "fault-injection")]
    let from = match s.last_due {
        Some(ran) if state.faults.schedule_refire => ran,
        _ => from,
    };
    let mut d = Some(from);
    let mut steps = 0;
    while let Some(t) = d.filter(|&t| t <= now && steps < SCAN_LIMIT) {
        if now - t > s.spec.grace_ms {
            late += 1;
            kept.push_back(t);
            if kept.len() > keep {
                kept.pop_front();
            }
        } else {
            on_time.push(t);
        }
        s.last_due = Some(t);
        d = next_due(&s.spec.trigger, s.created_at, t);
        steps += 1;
    }
    s.missed = s.missed.saturating_add(late - kept.len() as u64);
    let next = next_due(&s.spec.trigger, s.created_at, now);
    for t in kept.into_iter().chain(on_time) {
        start_or_hold(state, name, t);
    }
    set_next(state, name, next);
}

/// Starts the run due at `due`, or holds or skips it by the overlap policy.
fn start_or_hold(state: &mut State, name: &str, due: Time) {
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    let idle = s.active.is_empty();
    match s.spec.overlap {
        Overlap::Allow => {}
        Overlap::Skip if idle => {}
        Overlap::QueueOne if idle && s.queued.is_none() => {}
        Overlap::QueueOne if s.queued.is_none() => {
            s.queued = Some(due);
            return;
        }
        Overlap::Skip | Overlap::QueueOne => {
            s.skipped += 1;
            return;
        }
    }
    submit_run(state, name, due);
}

fn submit_run(state: &mut State, name: &str, due: Time) {
    let Some(s) = state.schedules.get(name) else {
        return;
    };
    let mut spec = s.spec.job.clone();
    spec.name = run_name(name, due);
    let reply = job::submit(state, spec);
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    match reply {
        Ok(Accepted::JobSubmitted {
            job, first_task, ..
        }) => {
            s.fired += 1;
            if state.jobs.get(&job).is_some_and(|j| j.end.is_none()) {
                s.active.insert(job);
                state.schedule_runs.insert(job, name.to_string());
            }
            state.effects.push(Effect::ScheduleFired {
                schedule: name.to_string(),
                due,
                job,
                first_task,
            });
        }
        Ok(_) => {}
        Err(rejection) => {
            s.failed += 1;
            s.last_error = Some(format!("run {}: {rejection}", run_name(name, due)));
        }
    }
}

/// The release timer fired: start the queued run if nothing runs.
pub(crate) fn release(state: &mut State, name: &str, at: Time) {
    let Some(s) = state.schedules.get_mut(name) else {
        return;
    };
    if s.release_at != Some(at) {
        return;
    }
    s.release_at = None;
    if !s.active.is_empty() {
        return;
    }
    if let Some(due) = s.queued.take() {
        submit_run(state, name, due);
    }
}
