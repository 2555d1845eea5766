//! The engine-wide limits: jobs and tasks held, tenants in use, and bytes stored for
//! clients and workers. Each is checked before anything changes, so a refusal leaves
//! the state as it was, and the counters are kept exactly (the invariant checker
//! recomputes them).

use crate::reject::Rejection;
use crate::spec::{JobSpec, Payload};
use crate::state::{State, Task};

fn reached(limit: &str, value: u64) -> Rejection {
    Rejection::LimitReached {
        limit: limit.to_string(),
        value,
    }
}

/// Bytes a task holds: its payload, its signals' payloads, its output and its stream.
pub(crate) fn held_bytes(t: &Task) -> u64 {
    (t.payload.len() as u64)
        .saturating_add(t.output.as_ref().map_or(0, |o| o.len() as u64))
        .saturating_add(released_at_end(t))
        .saturating_add(t.stream_bytes())
}

/// Bytes a task lets go when it ends: its signals' payloads. Its own payload stays
/// while the job is retained: the job's spec is read back from it (`GetJobSpec`,
/// `keel retry` resubmits what did not succeed).
fn released_at_end(t: &Task) -> u64 {
    t.signals
        .values()
        .fold(0u64, |sum, p| sum.saturating_add(p.len() as u64))
}

/// Whether `spec`, already validated and new, fits every engine-wide limit.
pub(crate) fn admit(state: &State, spec: &JobSpec) -> Result<(), Rejection> {
    let l = &state.config.limits;
    if state.jobs.len() as u64 >= u64::from(l.max_live_jobs) {
        return Err(reached("max_live_jobs", u64::from(l.max_live_jobs)));
    }
    let tasks = spec.tasks.len() as u64;
    if state.tasks.len().saturating_add(tasks) > u64::from(l.max_live_tasks) {
        return Err(reached("max_live_tasks", u64::from(l.max_live_tasks)));
    }
    let new_tenant = state.names.tenants.get(&spec.tenant).is_none();
    if new_tenant && state.names.tenants.in_use() as u64 >= u64::from(l.max_tenants) {
        return Err(reached("max_tenants", u64::from(l.max_tenants)));
    }
    let bytes = spec
        .tasks
        .iter()
        .fold(0u64, |sum, t| sum.saturating_add(t.payload.len() as u64));
    fits(state, bytes, 0)
}

/// Whether `adding` more bytes fit once `freeing` bytes are let go.
fn fits(state: &State, adding: u64, freeing: u64) -> Result<(), Rejection> {
    let max = state.config.limits.max_stored_bytes;
    if state
        .stored_bytes
        .saturating_sub(freeing)
        .saturating_add(adding)
        > max
    {
        return Err(reached("max_stored_bytes", max));
    }
    Ok(())
}

/// Whether `adding` bytes of stream frames fit once the `freeing` bytes of the frames
/// they push out are let go.
pub(crate) fn admit_frames(state: &State, adding: u64, freeing: u64) -> Result<(), Rejection> {
    fits(state, adding, freeing)
}

/// Whether a signal payload fits.
pub(crate) fn admit_signal(state: &State, payload: &Payload) -> Result<(), Rejection> {
    fits(state, payload.len() as u64, 0)
}

/// Whether `t`'s output fits once the task, ending, lets go of its signals' payloads.
pub(crate) fn admit_output(state: &State, t: &Task, output: &Payload) -> Result<(), Rejection> {
    fits(state, output.len() as u64, released_at_end(t))
}

pub(crate) fn store(state: &mut State, bytes: u64) {
    state.stored_bytes = state.stored_bytes.saturating_add(bytes);
}

pub(crate) fn unstore(state: &mut State, bytes: u64) {
    state.stored_bytes = state.stored_bytes.saturating_sub(bytes);
}

/// A task that ended lets go of its signals' payloads (nothing reads them again); the
/// signal keys stay, so a repeated signal is still a duplicate. Returns the bytes let
/// go, for `unstore`.
pub(crate) fn let_go(t: &mut Task) -> u64 {
    let freed = released_at_end(t);
    for p in t.signals.values_mut() {
        *p = Payload::default();
    }
    freed
}
