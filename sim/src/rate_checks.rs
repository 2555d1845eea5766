//! The rate-limit check: no bucket lets more grants through in any window than its
//! rate allows. For a bucket of `rate` tokens per `per_ms` and a burst of `burst`, the
//! grants `i..=j` at times `t_i..t_j` must number at most
//! `burst + rate * (t_j - t_i) / per_ms`. Written as `f(k) = k * per_ms - rate * t_k`,
//! that is `f(j) - f(i) <= (burst - 1) * per_ms` for every `i <= j`, so keeping the
//! smallest `f` seen checks every window ending at each grant in O(1), without
//! modelling a bucket the way the engine does.

use keel_engine::{JobSpec, Rate, RatePolicy, RateScope, TaskId, Time};
use std::collections::BTreeMap;

/// Per bucket: grants seen so far and the smallest `f` among them.
#[derive(Clone, Copy)]
struct Window {
    grants: i128,
    min_f: i128,
}

#[derive(Default)]
pub(crate) struct RateChecks {
    policy: RatePolicy,
    grant_ttl_ms: u64,
    /// The buckets each known task draws from.
    tasks: BTreeMap<TaskId, Vec<(RateScope, String)>>,
    windows: BTreeMap<(RateScope, String), Window>,
}

impl RateChecks {
    /// Grants are timed by their expiry less the grant TTL: the engine time they were
    /// made at, whatever the checker's own clock says.
    pub(crate) fn new(policy: RatePolicy, grant_ttl_ms: u64) -> RateChecks {
        RateChecks {
            policy,
            grant_ttl_ms,
            ..RateChecks::default()
        }
    }

    pub(crate) fn admitted(&mut self, first: TaskId, spec: &JobSpec) {
        if self.policy.is_empty() {
            return;
        }
        for (i, t) in spec.tasks.iter().enumerate() {
            let mut names = vec![
                (RateScope::Tenant, spec.tenant.clone()),
                (RateScope::Lane, spec.lane.clone()),
            ];
            if let Some(key) = &t.rate_key {
                names.push((RateScope::Key, key.clone()));
            }
            names.retain(|(scope, name)| self.policy.get(*scope, name).is_some());
            if !names.is_empty() {
                self.tasks.insert(TaskId::nth_after(first, i as u64), names);
            }
        }
    }

    /// A grant of `task` expiring at `expires_at`; the failure's detail if it takes a
    /// bucket past its rate.
    pub(crate) fn granted(&mut self, task: TaskId, expires_at: Time) -> Option<String> {
        let at = expires_at.saturating_sub(self.grant_ttl_ms);
        let buckets = self.tasks.get(&task)?;
        let mut broken = None;
        for key in buckets {
            let Some(rate) = self.policy.get(key.0, &key.1) else {
                continue;
            };
            let window = self.windows.get(key).copied();
            let (next, over) = step(window, rate, at);
            self.windows.insert(key.clone(), next);
            if let Some(over) = over {
                broken.get_or_insert(format!(
                    "{task} granted at {at} ms is {over} over the {} bucket {:?} \
                     ({} per {} ms, burst {}) within one window",
                    key.0.as_str(),
                    key.1,
                    rate.rate,
                    rate.per_ms,
                    rate.burst
                ));
            }
        }
        broken
    }
}

/// Adds a grant at `at` to a bucket's window; how far past the allowance it is, in
/// grants (rounded up), if it is.
fn step(window: Option<Window>, rate: &Rate, at: Time) -> (Window, Option<i128>) {
    let per = i128::from(rate.per_ms);
    let k = window.map_or(0, |w| w.grants);
    let f = k * per - i128::from(rate.rate) * i128::from(at);
    let min_f = window.map_or(f, |w| w.min_f.min(f));
    let slack = (i128::from(rate.burst) - 1) * per;
    let excess = f - min_f - slack;
    let next = Window {
        grants: k + 1,
        min_f,
    };
    (next, (excess > 0).then(|| (excess + per - 1) / per))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: Rate, times: &[Time]) -> Vec<Option<i128>> {
        let mut w = None;
        times
            .iter()
            .map(|&t| {
                let (next, over) = step(w, &rate, t);
                w = Some(next);
                over
            })
            .collect()
    }

    const TWO_PER_SECOND: Rate = Rate {
        rate: 2,
        per_ms: 1_000,
        burst: 2,
    };

    #[test]
    fn grants_within_the_rate_pass() {
        let times = [0, 0, 500, 1_000, 1_500, 10_000, 10_000, 10_500];
        assert!(run(TWO_PER_SECOND, &times).iter().all(Option::is_none));
    }

    #[test]
    fn a_burst_past_the_bucket_is_caught() {
        assert_eq!(run(TWO_PER_SECOND, &[0, 0, 0]), vec![None, None, Some(1)]);
    }

    #[test]
    fn a_grant_one_millisecond_early_is_caught() {
        assert_eq!(run(TWO_PER_SECOND, &[0, 0, 499]), vec![None, None, Some(1)]);
        assert_eq!(run(TWO_PER_SECOND, &[0, 0, 500]), vec![None, None, None]);
    }

    #[test]
    fn a_long_window_is_checked_not_only_the_last_burst() {
        // Each step alone looks spaced, but over 0..=1000 ms five grants went out where
        // the bucket allows 2 + 2.
        let times = [0, 0, 400, 700, 1_000];
        let over = run(TWO_PER_SECOND, &times);
        assert_eq!(over[..2], [None, None]);
        assert!(over[2..].iter().any(Option::is_some), "{over:?}");
    }
}
