//! Every timer the engine runs, in one ordered set keyed by (due time, timer). Timers
//! whose subject changed since they were armed re-check on firing, so frequent updates
//! (heartbeats, renewals) cost no set operations.

use crate::ids::{GrantId, JobId, TaskId, Time, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Timer {
    GrantExpiry(GrantId),
    LeaseExpiry(TaskId),
    AttemptTimeout(TaskId),
    /// A delayed task or a retry backoff becomes ready.
    TaskDue(TaskId),
    SuspendTimeout(TaskId),
    JobDeadline(JobId),
    /// A finished job is forgotten.
    JobRetention(JobId),
    WorkerLiveness(WorkerId),
    BlacklistEnd(WorkerId),
    /// A lost worker's record is dropped.
    WorkerForget(WorkerId),
    /// A token bucket dispatch waits for has refilled.
    RateRefill,
    /// A schedule's next due time (or its catch-up after missed ones).
    ScheduleDue(String),
    /// A schedule's queued run may start: the run it waited for has ended.
    ScheduleRelease(String),
    /// A job stopped by its budget ends.
    BudgetEnd(JobId),
    /// A tenant stopped by its budget has its attempts revoked.
    BudgetRevoke(String),
    /// A tenant budget's period ends (tenant, budget).
    BudgetReset(String, String),
}

/// Timers on numbered subjects are packed into one integer, `(time << 64) | (kind <<
/// 56) | id`, so the hot set compares integers; timers on named workers live in a
/// second set. Kinds are numbered in `Timer` declaration order and worker timers come
/// last, so merging the two sets fires timers in exactly `(time, Timer)` order (an id
/// over 56 bits, which no engine hands out, is named too and fires after the packed
/// timers due at the same time).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Timers {
    packed: BTreeSet<u128>,
    named: BTreeSet<(Time, Timer)>,
}

const ID_BITS: u32 = 56;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

fn pack(at: Time, timer: &Timer) -> Option<u128> {
    let (kind, id) = match timer {
        Timer::GrantExpiry(g) => (0u64, g.0),
        Timer::LeaseExpiry(t) => (1, t.0),
        Timer::AttemptTimeout(t) => (2, t.0),
        Timer::TaskDue(t) => (3, t.0),
        Timer::SuspendTimeout(t) => (4, t.0),
        Timer::JobDeadline(j) => (5, j.0),
        Timer::JobRetention(j) => (6, j.0),
        Timer::WorkerLiveness(_)
        | Timer::BlacklistEnd(_)
        | Timer::WorkerForget(_)
        | Timer::RateRefill
        | Timer::ScheduleDue(_)
        | Timer::ScheduleRelease(_)
        | Timer::BudgetEnd(_)
        | Timer::BudgetRevoke(_)
        | Timer::BudgetReset(..) => return None,
    };
    if id > ID_MASK {
        return None;
    }
    Some(((at as u128) << 64) | ((kind << ID_BITS) | id) as u128)
}

fn unpack(key: u128) -> (Time, Timer) {
    let at = (key >> 64) as u64;
    let low = key as u64;
    let id = low & ID_MASK;
    let timer = match low >> ID_BITS {
        0 => Timer::GrantExpiry(GrantId(id)),
        1 => Timer::LeaseExpiry(TaskId(id)),
        2 => Timer::AttemptTimeout(TaskId(id)),
        3 => Timer::TaskDue(TaskId(id)),
        4 => Timer::SuspendTimeout(TaskId(id)),
        5 => Timer::JobDeadline(JobId(id)),
        _ => Timer::JobRetention(JobId(id)),
    };
    (at, timer)
}

impl Timers {
    pub(crate) fn arm(&mut self, at: Time, timer: Timer) {
        match pack(at, &timer) {
            Some(key) => {
                self.packed.insert(key);
            }
            None => {
                self.named.insert((at, timer));
            }
        }
    }

    pub(crate) fn disarm(&mut self, at: Time, timer: Timer) {
        match pack(at, &timer) {
            Some(key) => {
                self.packed.remove(&key);
            }
            None => {
                self.named.remove(&(at, timer));
            }
        }
    }

    pub(crate) fn next(&self) -> Option<Time> {
        let packed = self.packed.first().map(|k| (k >> 64) as u64);
        let named = self.named.first().map(|(t, _)| *t);
        match (packed, named) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Time) -> Option<(Time, Timer)> {
        let packed = self.packed.first().map(|k| (k >> 64) as u64);
        let named = self.named.first().map(|(t, _)| *t);
        let take_packed = match (packed, named) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_packed {
            let key = *self.packed.first()?;
            if (key >> 64) as u64 > now {
                return None;
            }
            self.packed.pop_first();
            Some(unpack(key))
        } else {
            if self.named.first()?.0 > now {
                return None;
            }
            self.named.pop_first()
        }
    }

    /// Every timer due at or before `now`, earliest first, without firing any.
    pub(crate) fn due(&self, now: Time) -> Vec<(Time, Timer)> {
        let packed = self
            .packed
            .iter()
            .take_while(|k| (*k >> 64) as u64 <= now)
            .map(|k| unpack(*k));
        let named = self.named.iter().take_while(|(t, _)| *t <= now).cloned();
        let mut due: Vec<(Time, Timer)> = packed.chain(named).collect();
        due.sort();
        due
    }

    pub(crate) fn contains(&self, at: Time, timer: &Timer) -> bool {
        match pack(at, timer) {
            Some(key) => self.packed.contains(&key),
            None => self.named.contains(&(at, timer.clone())),
        }
    }
}

/// A timer due at a tick, described for a person: when the engine panics on a tick,
/// the driver names what the tick was firing (and the job it concerns, when it can).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueTimer {
    /// When it was due.
    pub at: Time,
    /// What fires, e.g. `lease expiry of t7`.
    pub what: String,
    /// The job it concerns, if any.
    pub job: Option<JobId>,
}

impl fmt::Display for DueTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(job) = self.job {
            write!(f, " ({job})")?;
        }
        write!(f, " due at {} ms", self.at)
    }
}

impl crate::Engine {
    /// The first `limit` timers a tick at `now` would fire, earliest first, and how
    /// many are due in all. Read-only, for naming a tick that panicked the engine.
    pub fn timers_due(&self, now: Time, limit: usize) -> (Vec<DueTimer>, usize) {
        let due = self.state.timers.due(now);
        let total = due.len();
        let job_of = |task: TaskId| self.describe_task(task).ok().map(|v| v.job);
        let described = due
            .into_iter()
            .take(limit)
            .map(|(at, timer)| {
                let (what, job) = match timer {
                    Timer::GrantExpiry(g) => (format!("grant expiry of {g}"), None),
                    Timer::LeaseExpiry(t) => (format!("lease expiry of {t}"), job_of(t)),
                    Timer::AttemptTimeout(t) => (format!("attempt timeout of {t}"), job_of(t)),
                    Timer::TaskDue(t) => (format!("{t} becoming ready"), job_of(t)),
                    Timer::SuspendTimeout(t) => (format!("suspension timeout of {t}"), job_of(t)),
                    Timer::JobDeadline(j) => (format!("deadline of {j}"), Some(j)),
                    Timer::JobRetention(j) => (format!("retention end of {j}"), Some(j)),
                    Timer::WorkerLiveness(w) => (format!("liveness of worker {w}"), None),
                    Timer::BlacklistEnd(w) => (format!("blacklist end of worker {w}"), None),
                    Timer::WorkerForget(w) => (format!("forgetting worker {w}"), None),
                    Timer::RateRefill => ("a rate limit refill".to_owned(), None),
                    Timer::ScheduleDue(s) => (format!("schedule {s:?} due"), None),
                    Timer::ScheduleRelease(s) => (format!("schedule {s:?} queued run"), None),
                    Timer::BudgetEnd(j) => (format!("budget end of {j}"), Some(j)),
                    Timer::BudgetRevoke(t) => (format!("budget revocation of tenant {t}"), None),
                    Timer::BudgetReset(t, b) => {
                        (format!("reset of tenant {t}'s budget {b:?}"), None)
                    }
                };
                DueTimer { at, what, job }
            })
            .collect();
        (described, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_time_then_kind_order_across_both_sets() {
        let mut t = Timers::default();
        let w = WorkerId::new("w");
        t.arm(5, Timer::WorkerLiveness(w.clone()));
        t.arm(5, Timer::JobRetention(JobId(2)));
        t.arm(5, Timer::GrantExpiry(GrantId(9)));
        t.arm(3, Timer::BlacklistEnd(w.clone()));
        t.arm(7, Timer::LeaseExpiry(TaskId(1)));
        t.disarm(7, Timer::LeaseExpiry(TaskId(1)));
        assert_eq!(t.next(), Some(3));
        let mut fired = Vec::new();
        while let Some(x) = t.pop_due(10) {
            fired.push(x);
        }
        assert_eq!(
            fired,
            vec![
                (3, Timer::BlacklistEnd(w.clone())),
                (5, Timer::GrantExpiry(GrantId(9))),
                (5, Timer::JobRetention(JobId(2))),
                (5, Timer::WorkerLiveness(w)),
            ]
        );
        assert_eq!(t.next(), None);
    }

    /// Snapshots hold the packed form, so which timers are packed is part of the format:
    /// every numbered timer whose id fits 56 bits, keyed `(time << 64) | (kind << 56) |
    /// id`; a larger id goes to the named set and still fires.
    #[test]
    fn numbered_timers_are_packed_up_to_56_bit_ids() {
        let mut t = Timers::default();
        t.arm(7, Timer::LeaseExpiry(TaskId(ID_MASK)));
        let key = (7u128 << 64) | (1u128 << 56) | u128::from(ID_MASK);
        assert_eq!(t.packed.iter().copied().collect::<Vec<_>>(), [key]);
        assert!(t.named.is_empty());
        t.arm(7, Timer::LeaseExpiry(TaskId(ID_MASK + 1)));
        assert_eq!((t.packed.len(), t.named.len()), (1, 1));
        assert!(t.contains(7, &Timer::LeaseExpiry(TaskId(ID_MASK + 1))));
        assert_eq!(t.pop_due(7), Some((7, Timer::LeaseExpiry(TaskId(ID_MASK)))));
        assert_eq!(
            t.pop_due(7),
            Some((7, Timer::LeaseExpiry(TaskId(ID_MASK + 1))))
        );
    }

    #[test]
    fn due_lists_without_firing_in_firing_order() {
        let mut t = Timers::default();
        let w = WorkerId::new("w");
        t.arm(5, Timer::WorkerLiveness(w.clone()));
        t.arm(3, Timer::LeaseExpiry(TaskId(4)));
        t.arm(9, Timer::JobDeadline(JobId(1)));
        let due = t.due(5);
        assert_eq!(
            due,
            vec![
                (3, Timer::LeaseExpiry(TaskId(4))),
                (5, Timer::WorkerLiveness(w))
            ]
        );
        assert_eq!(t.next(), Some(3));
        assert_eq!(t.due(2), vec![]);
    }

    #[test]
    fn an_engine_names_the_timers_a_tick_would_fire() {
        use crate::{ClientCommand, Config, Engine, Input, JobSpec, TaskSpec};
        let mut engine = Engine::new(Config::default());
        assert_eq!(engine.timers_due(u64::MAX, 8), (vec![], 0));
        let mut spec = JobSpec::new("late", vec![TaskSpec::new("a")]);
        spec.deadline_ms = Some(1_000);
        engine.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
        let (due, total) = engine.timers_due(u64::MAX, 8);
        assert_eq!(total, due.len());
        let deadline = due.iter().find(|d| d.what.starts_with("deadline of j"));
        assert!(deadline.is_some_and(|d| d.job.is_some()), "{due:?}");
        assert_eq!(engine.timers_due(u64::MAX, 0), (vec![], total));
        assert_eq!(
            engine.timers_due(0, 8).1,
            0,
            "nothing is due before the deadline"
        );
        let d = DueTimer {
            at: 1_200,
            what: "lease expiry of t7".into(),
            job: Some(JobId(3)),
        };
        assert_eq!(d.to_string(), "lease expiry of t7 (j3) due at 1200 ms");
    }
}
