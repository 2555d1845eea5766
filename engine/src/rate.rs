//! Token buckets that pace grants (`RatePolicy`). A bucket's level is kept in units of
//! `1 / per_ms` token, so refilling `rate` units per millisecond and taking `per_ms`
//! units per grant are exact integer steps: no rounding lets a grant through early.
//! Only buckets that have been drawn from are stored; a name with no stored bucket has
//! a full one. Dispatch skips a queue whose buckets lack a token and arms one timer
//! for the earliest moment one of them refills.

use crate::config::{Rate, RateScope};
use crate::ids::Time;
use crate::ready::QueueKey;
use crate::state::{Bucket, BucketKey, State};
use crate::timers::Timer;

/// Units a full bucket holds.
fn capacity(rate: &Rate) -> u64 {
    u64::from(rate.burst) * u64::from(rate.per_ms)
}

/// How many times the configured rate a bucket refills at: 1, unless a test injects
/// [`crate::Faults::fast_refill`].
fn speed(state: &State) -> u64 {
    #[cfg(feature = "fault-injection")]
    if state.faults.fast_refill {
        return 2;
    }
    let _ = state;
    1
}

/// The bucket's level at `now` under `rate`, refilled (at `speed` times the rate) and
/// capped.
fn level_at(bucket: Option<&Bucket>, rate: &Rate, now: Time, speed: u64) -> u64 {
    let cap = capacity(rate);
    let Some(b) = bucket else {
        return cap;
    };
    let level = if b.per_ms == rate.per_ms {
        b.level
    } else {
        // Floor: a rescaled level never holds more than it did.
        let scaled = u128::from(b.level) * u128::from(rate.per_ms) / u128::from(b.per_ms.max(1));
        u64::try_from(scaled).unwrap_or(u64::MAX)
    };
    let refill = u64::from(rate.rate)
        .saturating_mul(speed)
        .saturating_mul(now.saturating_sub(b.at));
    level.saturating_add(refill).min(cap)
}

/// Calls `f` with each bucket configured for a queue's tasks: its identity and rate.
/// Dispatch asks this for every queue head it weighs, so the identity is one buffer
/// refilled per bucket rather than a new string each.
fn each_bucket(state: &State, q: QueueKey, mut f: impl FnMut(&BucketKey, &Rate)) {
    let rates = &state.config.rates;
    if rates.is_empty() {
        return;
    }
    let names = [
        (RateScope::Tenant, Some(state.names.tenants.name(q.tenant))),
        (RateScope::Lane, Some(state.names.lanes.name(q.lane))),
        (
            RateScope::Key,
            q.rate.map(|key| state.names.rates.name(key)),
        ),
    ];
    let mut key: BucketKey = (RateScope::Tenant, String::new());
    for (scope, name) in names {
        let Some((name, rate)) = name.and_then(|n| Some((n, rates.get(scope, n)?))) else {
            continue;
        };
        key.0 = scope;
        key.1.clear();
        key.1.push_str(name);
        f(&key, rate);
    }
}

/// The buckets configured for a queue's tasks, with their identities.
fn buckets_of(state: &State, q: QueueKey) -> Vec<(BucketKey, Rate)> {
    let mut buckets = Vec::new();
    each_bucket(state, q, |key, rate| buckets.push((key.clone(), *rate)));
    buckets
}

/// When a queue's tasks may next be granted: `None` when every bucket of the queue has
/// a token now, else the earliest time all of them will (if nothing else draws on
/// them), with the bucket that waits longest (on a tie, the wider scope: tenant, lane,
/// key), which status names.
pub(crate) fn throttled(state: &State, q: QueueKey) -> Option<(BucketKey, Time)> {
    let now = state.now;
    let mut worst: Option<(BucketKey, Time)> = None;
    each_bucket(state, q, |key, rate| {
        let level = level_at(state.buckets.get(key), rate, now, speed(state));
        let cost = u64::from(rate.per_ms);
        if level >= cost {
            return;
        }
        let missing = cost - level;
        let wait = missing.div_ceil(u64::from(rate.rate.max(1)));
        let at = now.saturating_add(wait);
        if worst.as_ref().is_none_or(|(_, w)| at > *w) {
            worst = Some((key.clone(), at));
        }
    });
    worst
}

/// Takes one token from each bucket of the queue; called once `throttled` said none is
/// empty.
pub(crate) fn take(state: &mut State, q: QueueKey) {
    let now = state.now;
    for (key, rate) in buckets_of(state, q) {
        let level = level_at(state.buckets.get(&key), &rate, now, speed(state));
        let bucket = Bucket {
            level: level.saturating_sub(u64::from(rate.per_ms)),
            at: now,
            per_ms: rate.per_ms,
        };
        state.buckets.insert(key, bucket);
    }
}

/// Arms the wake-up for the earliest refill dispatch waits for, unless one as early is
/// armed already.
pub(crate) fn wake_at(state: &mut State, at: Time) {
    if state
        .rate_wake
        .is_some_and(|armed| armed <= at && armed > state.now)
    {
        return;
    }
    state.rate_wake = Some(at);
    state.timers.arm(at, Timer::RateRefill);
}

/// The refill timer fired: dispatch looks at the throttled queues again.
pub(crate) fn woke(state: &mut State, at: Time) {
    if state.rate_wake == Some(at) {
        state.rate_wake = None;
    }
    state.dispatch_dirty = true;
}

/// After a configuration change: buckets no longer configured are dropped (their
/// names are no longer paced), the rest keep their level, rescaled and capped.
pub(crate) fn reconfigured(state: &mut State) {
    let now = state.now;
    let rates = state.config.rates.clone();
    state
        .buckets
        .retain(|(scope, name), b| match rates.get(*scope, name) {
            Some(rate) => {
                *b = Bucket {
                    level: level_at(Some(b), rate, now, 1),
                    at: now,
                    per_ms: rate.per_ms,
                };
                true
            }
            None => false,
        });
}

/// A stored bucket that fits its configuration: configured, not above capacity, not
/// from the future. Checked by the invariant checker and on restore.
pub(crate) fn consistent(state: &State, key: &BucketKey, b: &Bucket) -> bool {
    state
        .config
        .rates
        .get(key.0, &key.1)
        .is_some_and(|rate| b.per_ms == rate.per_ms && b.level <= capacity(rate))
        && b.at <= state.now
}

impl crate::Engine {
    /// Ready tasks held back for a token, per bucket that holds them (scope, name,
    /// tasks), in bucket order: what a metrics endpoint shows as throttled work.
    pub fn rate_limited(&self) -> Vec<(RateScope, String, u64)> {
        let state = &self.state;
        let mut held: std::collections::BTreeMap<BucketKey, u64> = Default::default();
        for (q, n) in state.ready.queue_sizes() {
            if let Some((key, _)) = throttled(state, q) {
                *held.entry(key).or_default() += n;
            }
        }
        held.into_iter()
            .map(|((s, name), n)| (s, name, n))
            .collect()
    }
}
