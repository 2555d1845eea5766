//! Worker membership: registration, liveness, draining, leaving, and what happens to
//! the grants and leases of a worker that is gone.

use crate::config::{Limits, ALL_LANES};
use crate::ids::{GrantId, InstanceId, Time, WorkerId};
use crate::input::WorkerCommand;
use crate::lease;
use crate::output::{Accepted, Effect, EndReason};
use crate::queue;
use crate::reject::Rejection;
use crate::state::{State, Worker, WorkerStatus};
use crate::suspend;
use crate::timers::Timer;
use crate::validate::{check_name, check_tokens};
use std::collections::{BTreeSet, VecDeque};

type Reply = Result<Accepted, Rejection>;

pub(crate) fn handle(
    state: &mut State,
    w: WorkerId,
    inst: InstanceId,
    cmd: WorkerCommand,
) -> Reply {
    if let WorkerCommand::Register {
        capabilities,
        lanes,
        max_concurrency,
    } = cmd
    {
        return register(state, w, inst, capabilities, lanes, max_concurrency);
    }
    touch(state, &w, inst)?;
    match cmd {
        WorkerCommand::Register { .. } | WorkerCommand::Heartbeat => Ok(Accepted::Ok),
        WorkerCommand::RequestWork { credits } => request_work(state, &w, credits),
        WorkerCommand::Drain => drain(state, &w),
        WorkerCommand::Deregister => deregister(state, &w),
        WorkerCommand::AcceptGrant { grant } => lease::accept(state, &w, inst, grant),
        WorkerCommand::ReleaseGrant { grant } => lease::release(state, &w, grant),
        WorkerCommand::Renew { fence } => lease::renew(state, &w, inst, fence),
        WorkerCommand::Complete { fence, output } => {
            lease::complete(state, &w, inst, fence, output)
        }
        WorkerCommand::Fail {
            fence,
            error,
            permanent,
        } => lease::fail(state, &w, inst, fence, error, permanent),
        WorkerCommand::Suspend {
            fence,
            waitpoint,
            timeout_ms,
            on_timeout,
        } => suspend::suspend(state, &w, inst, fence, waitpoint, timeout_ms, on_timeout),
        WorkerCommand::ReportUsage {
            fence,
            budget,
            dimension,
            amount,
            dedup_key,
        } => {
            let r = crate::usage::Report {
                budget,
                dimension,
                amount,
                dedup_key,
            };
            crate::usage::report(state, &w, inst, fence, r)
        }
        WorkerCommand::Emit {
            fence,
            from,
            frames,
        } => crate::stream::emit(state, &w, inst, fence, from, frames),
        WorkerCommand::Ack {
            fence,
            from,
            cursor,
        } => crate::edge::ack(state, &w, inst, fence, &from, cursor),
    }
}

/// The worker leaves: its grants and leases are let go and its record dropped.
fn deregister(state: &mut State, w: &WorkerId) -> Reply {
    remove(state, w, EndReason::WorkerLeft);
    drop_record(state, w);
    Ok(Accepted::Ok)
}

/// Checks that the sender is the worker's current, live instance and notes it was seen.
fn touch(state: &mut State, w: &WorkerId, inst: InstanceId) -> Result<(), Rejection> {
    let now = state.now;
    let worker = state
        .workers
        .get_mut(w)
        .ok_or_else(|| Rejection::UnknownWorker { worker: w.clone() })?;
    if worker.instance != inst {
        return Err(Rejection::StaleInstance {
            worker: w.clone(),
            presented: inst,
            current: worker.instance,
        });
    }
    if worker.status == WorkerStatus::Lost {
        return Err(Rejection::WorkerLost {
            worker: w.clone(),
            instance: inst,
        });
    }
    worker.last_seen = now;
    Ok(())
}

fn register(
    state: &mut State,
    w: WorkerId,
    inst: InstanceId,
    capabilities: Vec<String>,
    lanes: Vec<String>,
    max_concurrency: u32,
) -> Reply {
    check_registration(
        &state.config.limits,
        &w,
        &capabilities,
        &lanes,
        max_concurrency,
    )?;
    let offer = Registration::normalized(capabilities, lanes, max_concurrency);
    if let Some(reply) = reregister(state, &w, inst, &offer)? {
        return Ok(reply);
    }
    insert_worker(state, &w, inst, offer);
    Ok(Accepted::Registered {
        worker: w,
        instance: inst,
        duplicate: false,
    })
}

/// Adds a worker that holds no entry yet (or whose old entry `reregister` let go),
/// carrying over the failure record of a previous instance under the same name.
fn insert_worker(state: &mut State, w: &WorkerId, inst: InstanceId, offer: Registration) {
    let now = state.now;
    let (recent_failures, blacklisted_until, blacklisted_from_grant) = take_previous(state, w);
    let Registration {
        capabilities,
        lane_names,
        max_concurrency,
    } = offer;
    // A worker serving every lane keeps no lane ids: dispatch walks the lanes that have
    // ready tasks instead.
    let lane_ids = if lane_names == [ALL_LANES] {
        Vec::new()
    } else {
        lane_names
            .iter()
            .map(|l| state.names.lanes.acquire(l))
            .collect()
    };
    let liveness_at = now.saturating_add(state.config.liveness_timeout_ms);
    state
        .timers
        .arm(liveness_at, Timer::WorkerLiveness(w.clone()));
    queue::coverage_changed(state, &capabilities, true);
    state.workers.insert(
        w.clone(),
        Worker {
            id: w.clone(),
            instance: inst,
            capabilities,
            lane_names,
            lanes: lane_ids,
            max_concurrency,
            status: WorkerStatus::Active,
            last_seen: now,
            liveness_timer_at: liveness_at,
            credits: 0,
            grants: BTreeSet::new(),
            leases: BTreeSet::new(),
            recent_failures,
            blacklisted_until,
            blacklisted_from_grant,
            lane_cursor: 0,
            cover_memo: Default::default(),
        },
    );
}

/// What a registration asks for, normalized (capabilities sorted, lanes defaulted).
struct Registration {
    capabilities: Vec<String>,
    lane_names: Vec<String>,
    max_concurrency: u32,
}

impl Registration {
    /// The offer with its capabilities sorted and no lanes meaning the default lane.
    fn normalized(mut capabilities: Vec<String>, lanes: Vec<String>, max_concurrency: u32) -> Self {
        let lane_names = if lanes.is_empty() {
            vec!["default".to_string()]
        } else {
            lanes
        };
        capabilities.sort();
        Registration {
            capabilities,
            lane_names,
            max_concurrency,
        }
    }
}

/// Refuses a registration whose worker id, capabilities, lanes or concurrency break
/// the limits, before anything changes.
fn check_registration(
    limits: &Limits,
    w: &WorkerId,
    capabilities: &[String],
    lanes: &[String],
    max_concurrency: u32,
) -> Result<(), Rejection> {
    let invalid = |why: String| Rejection::InvalidWorker {
        worker: w.clone(),
        why,
    };
    check_name("worker id", &w.0, limits.max_name_len).map_err(|e| invalid(e.to_string()))?;
    if capabilities.len() as u64 > limits.max_caps_per_worker as u64 {
        return Err(invalid(format!(
            "{} capabilities, limit {}",
            capabilities.len(),
            limits.max_caps_per_worker
        )));
    }
    check_tokens(capabilities, limits.max_cap_token_len)
        .map_err(|(token, why)| Rejection::CapabilityToken { token, why })?;
    if lanes.len() as u64 > limits.max_lanes_per_worker as u64 {
        return Err(invalid(format!(
            "{} lanes, limit {}",
            lanes.len(),
            limits.max_lanes_per_worker
        )));
    }
    for lane in lanes {
        check_name("lane", lane, limits.max_name_len).map_err(|e| invalid(e.to_string()))?;
    }
    if lanes.len() > 1 && lanes.iter().any(|l| l == ALL_LANES) {
        return Err(invalid(format!(
            "lane \"{ALL_LANES}\" stands for every lane and must be the only one"
        )));
    }
    if max_concurrency == 0 || max_concurrency > limits.max_concurrency_per_worker {
        return Err(invalid(format!(
            "max_concurrency {max_concurrency} outside 1..={}",
            limits.max_concurrency_per_worker
        )));
    }
    Ok(())
}

/// Settles a registration against the worker's existing record: an older instance is
/// refused, the same instance is a duplicate (`Some` reply) if it asks for the same
/// things, and a newer one loses the old process. `None` means register afresh.
fn reregister(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    offer: &Registration,
) -> Result<Option<Accepted>, Rejection> {
    let Some(existing) = state.workers.get(w) else {
        // Lost records count too: they are forgotten after a liveness timeout, and
        // counting them keeps a churn of names from growing the state meanwhile.
        if state.workers.len() as u64 >= state.config.limits.max_workers as u64 {
            return Err(Rejection::TooManyWorkers {
                limit: state.config.limits.max_workers,
            });
        }
        return Ok(None);
    };
    if inst < existing.instance {
        return Err(Rejection::StaleInstance {
            worker: w.clone(),
            presented: inst,
            current: existing.instance,
        });
    }
    if inst == existing.instance {
        if existing.status == WorkerStatus::Lost {
            return Err(Rejection::WorkerLost {
                worker: w.clone(),
                instance: inst,
            });
        }
        if existing.capabilities != offer.capabilities
            || existing.lane_names != offer.lane_names
            || existing.max_concurrency != offer.max_concurrency
        {
            return Err(Rejection::RegistrationConflict {
                worker: w.clone(),
                instance: inst,
            });
        }
        touch(state, w, inst)?;
        return Ok(Some(Accepted::Registered {
            worker: w.clone(),
            instance: inst,
            duplicate: true,
        }));
    }
    // A newer instance: the old process is gone, whatever it still believes.
    if existing.status != WorkerStatus::Lost {
        lose(state, w);
    }
    Ok(None)
}

/// Drops the worker's previous record, if any, keeping what a new process inherits: a
/// blacklisted worker stays blacklisted, the failures were its.
fn take_previous(
    state: &mut State,
    w: &WorkerId,
) -> (VecDeque<Time>, Option<Time>, Option<GrantId>) {
    let Some(old) = state.workers.get_mut(w) else {
        return (VecDeque::new(), None, None);
    };
    let timer = match old.status {
        WorkerStatus::Lost => Timer::WorkerForget(w.clone()),
        _ => Timer::WorkerLiveness(w.clone()),
    };
    state.timers.disarm(old.liveness_timer_at, timer);
    let carried = (
        std::mem::take(&mut old.recent_failures),
        old.blacklisted_until,
        old.blacklisted_from_grant,
    );
    drop_record(state, w);
    carried
}

/// Credits beyond `max_pending_grants_per_worker` are refused; within it they replace
/// the worker's outstanding request.
fn request_work(state: &mut State, w: &WorkerId, credits: u32) -> Reply {
    let limit = state.config.limits.max_pending_grants_per_worker;
    if credits > limit {
        return Err(Rejection::TooLarge {
            field: "credits".into(),
            size: credits as u64,
            limit: limit as u64,
        });
    }
    let Some(worker) = state.workers.get_mut(w) else {
        return Ok(Accepted::Ok);
    };
    if worker.status != WorkerStatus::Active {
        return Ok(Accepted::Ok);
    }
    worker.credits = credits.min(worker.max_concurrency);
    if worker.credits > 0 {
        state.demand.insert(w.clone());
        state.dispatch_workers.push(w.clone());
    } else {
        state.demand.remove(w);
    }
    Ok(Accepted::Ok)
}

fn drain(state: &mut State, w: &WorkerId) -> Reply {
    let Some(worker) = state.workers.get_mut(w) else {
        return Ok(Accepted::Ok);
    };
    if worker.status != WorkerStatus::Active {
        return Ok(Accepted::Ok);
    }
    worker.status = WorkerStatus::Draining;
    worker.credits = 0;
    let caps = worker.capabilities.clone();
    let grants: Vec<_> = worker.grants.iter().copied().collect();
    let idle = worker.leases.is_empty();
    state.demand.remove(w);
    queue::coverage_changed(state, &caps, false);
    for g in grants {
        lease::withdraw(state, g, EndReason::WorkerLeft, true);
    }
    if idle {
        state
            .effects
            .push(Effect::WorkerDrained { worker: w.clone() });
    }
    Ok(Accepted::Ok)
}

/// Liveness check: the timer fires at the last known deadline and re-arms itself if the
/// worker was seen since.
pub(crate) fn liveness_due(state: &mut State, w: &WorkerId, at: Time) {
    let timeout = state.config.liveness_timeout_ms;
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    if worker.status == WorkerStatus::Lost || worker.liveness_timer_at != at {
        return;
    }
    let deadline = worker.last_seen.saturating_add(timeout);
    if deadline > at {
        // Re-armed at or before `at`, the tick would fire it again for ever: a change
        // to the guard above fails here in tests instead of hanging them.
        debug_assert!(
            deadline > at,
            "liveness of {w} re-armed at {deadline}, now {at}"
        );
        worker.liveness_timer_at = deadline;
        state.timers.arm(deadline, Timer::WorkerLiveness(w.clone()));
        return;
    }
    lose(state, w);
}

/// Drops a lost worker's record one liveness timeout after the loss, so churning worker
/// names cannot grow the state; until then its zombie is told it was lost. A record
/// still serving a blacklist is kept until the blacklist ends.
pub(crate) fn forget(state: &mut State, w: &WorkerId, at: Time) {
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    if worker.status != WorkerStatus::Lost || worker.liveness_timer_at != at {
        return;
    }
    if let Some(until) = worker.blacklisted_until {
        // A blacklist is lifted when its end timer fires, so one still recorded ends
        // now or later; else the record would be kept, a millisecond at a time, for ever.
        debug_assert!(until >= at, "blacklist of {w} ended at {until}, now {at}");
        let next = until.max(at.saturating_add(1));
        worker.liveness_timer_at = next;
        state.timers.arm(next, Timer::WorkerForget(w.clone()));
        return;
    }
    drop_record(state, w);
}

/// Removes a worker's record and lets go of the lanes it held.
fn drop_record(state: &mut State, w: &WorkerId) {
    if let Some(old) = state.workers.remove(w) {
        for lane in old.lanes {
            state.names.lanes.release(lane);
        }
    }
}

/// The worker's instance is gone: its grants return, its leases are revoked and their
/// tasks requeued as new attempts. The entry stays, marked lost, so a zombie of this
/// instance is told it was lost.
fn lose(state: &mut State, w: &WorkerId) {
    let Some(worker) = state.workers.get(w) else {
        return;
    };
    let instance = worker.instance;
    // A liveness check still pending (a new instance replaced a live one) has nothing
    // left to check; when the check itself found the loss, it has already fired.
    let liveness = (worker.liveness_timer_at, Timer::WorkerLiveness(w.clone()));
    state.timers.disarm(liveness.0, liveness.1);
    remove(state, w, EndReason::WorkerLost);
    let forget_at = state.now.saturating_add(state.config.liveness_timeout_ms);
    if let Some(worker) = state.workers.get_mut(w) {
        worker.status = WorkerStatus::Lost;
        worker.liveness_timer_at = forget_at;
    }
    state.timers.arm(forget_at, Timer::WorkerForget(w.clone()));
    state.effects.push(Effect::WorkerLost {
        worker: w.clone(),
        instance,
    });
}

/// Takes everything away from a worker that is leaving or lost.
fn remove(state: &mut State, w: &WorkerId, reason: EndReason) {
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    let was_active = worker.status == WorkerStatus::Active;
    worker.credits = 0;
    worker.status = WorkerStatus::Lost;
    let caps = worker.capabilities.clone();
    let grants: Vec<_> = worker.grants.iter().copied().collect();
    let leases: Vec<_> = worker.leases.iter().copied().collect();
    state.demand.remove(w);
    if was_active {
        queue::coverage_changed(state, &caps, false);
    }
    for g in grants {
        lease::withdraw(state, g, reason, true);
    }
    for tid in leases {
        lease::revoke(state, tid, reason);
        lease::requeue_lost(state, tid, reason);
    }
}
