//! Exponential backoff with deterministic jitter. The jitter is a pure function of the
//! engine seed, the task and the attempt, so replaying the log gives the same delays.

use crate::ids::{TaskId, Time};
use crate::output::{Effect, EndReason};
use crate::spec::RetryPolicy;
use crate::state::{State, TaskState};
use crate::timers::Timer;

/// Delay before the retry that follows the `failures`-th failure:
/// `min(max, base * factor^(failures-1))`, reduced by up to `jitter_pct` percent.
pub fn backoff_delay(
    policy: &RetryPolicy,
    failures: u32,
    seed: u64,
    task: TaskId,
    attempt: u32,
) -> u64 {
    let exp = failures.saturating_sub(1);
    let mut delay = policy.backoff_base_ms;
    for _ in 0..exp {
        delay = delay.saturating_mul(policy.backoff_factor as u64);
        if delay >= policy.backoff_max_ms {
            break;
        }
    }
    let delay = delay.min(policy.backoff_max_ms);
    let span =
        delay / 100 * policy.jitter_pct as u64 + delay % 100 * policy.jitter_pct as u64 / 100;
    if span == 0 {
        return delay;
    }
    let r = mix(seed ^ task.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((attempt as u64) << 32));
    delay - r % (span + 1)
}

/// SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Starts a new attempt of `tid` that becomes ready at `until`.
pub(crate) fn schedule(s: &mut State, tid: TaskId, until: Time, reason: EndReason) {
    let Some(task) = s.tasks.get_mut(&tid) else {
        return;
    };
    task.attempt += 1;
    task.state = TaskState::Delayed { until };
    s.fx.push(Effect::TaskRequeued {
        job: task.job,
        task: tid,
        attempt: task.attempt,
        reason,
        ready_at: until,
    });
    s.timers.arm(until, Timer::TaskDue(tid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            backoff_base_ms: 100,
            backoff_factor: 2,
            backoff_max_ms: 1_000,
            jitter_pct: 0,
        };
        let d: Vec<u64> = (1..=6)
            .map(|f| backoff_delay(&p, f, 1, TaskId(1), f))
            .collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn jitter_is_bounded_deterministic_and_varies() {
        let p = RetryPolicy {
            jitter_pct: 50,
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..200 {
            let a = backoff_delay(&p, 1, 7, TaskId(t), 1);
            assert_eq!(a, backoff_delay(&p, 1, 7, TaskId(t), 1));
            assert!((500..=1_000).contains(&a), "{a}");
            seen.insert(a);
        }
        assert!(
            seen.len() > 50,
            "jitter should spread delays, got {}",
            seen.len()
        );
        assert_ne!(
            (0..20)
                .map(|t| backoff_delay(&p, 1, 7, TaskId(t), 1))
                .collect::<Vec<_>>(),
            (0..20)
                .map(|t| backoff_delay(&p, 1, 8, TaskId(t), 1))
                .collect::<Vec<_>>(),
            "the seed must change the jitter"
        );
    }
}
