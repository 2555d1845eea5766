//! The rate part of the invariant check catches each way a stored bucket or the refill
//! wake-up can disagree with the configuration and the timers: restore and every
//! simulated step rely on it to refuse a bucket that would grant too early or never.

use crate::ids::{TaskId, WorkerId};
use crate::input::{ClientCommand, Input, WorkerCommand};
use crate::invariant_checks_tests::caught;
use crate::invariants::{check, InvariantKind};
use crate::state::{Bucket, State};
use crate::timers::Timer;
use crate::{Config, Engine, InstanceId, JobSpec, Rate, RateScope, TaskSpec};

/// Capacity of the "api" bucket, in units: two tokens of 1 000 units.
const CAPACITY: u64 = 2_000;

/// At 10 ms: key "api" (one token a second, burst two) has given its two tokens to
/// worker "w"; the third task waits for the refill, whose timer is armed at 1 010.
fn with_rates() -> State {
    let mut cfg = Config::default();
    let api = Rate {
        rate: 1,
        per_ms: 1_000,
        burst: 2,
    };
    cfg.rates.keys.insert("api".into(), api);
    let mut e = Engine::new(cfg);
    let w = WorkerId::new("w");
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 3,
    };
    e.apply(0, Input::worker(&w, InstanceId(1), reg));
    let tasks = ["a", "b", "c"].map(|k| {
        let mut t = TaskSpec::new(k);
        t.rate_key = Some("api".into());
        t
    });
    let job = JobSpec::new("j", tasks.to_vec());
    e.apply(0, Input::Client(ClientCommand::SubmitJob(job)));
    let ask = WorkerCommand::RequestWork { credits: 3 };
    e.apply(10, Input::worker(&w, InstanceId(1), ask));
    let state = e.state;
    assert_eq!(check(&state), Ok(()));
    assert_eq!(state.rate_wake, Some(1_010), "the third task waits");
    state
}

fn api(state: &mut State) -> &mut Bucket {
    state
        .buckets
        .get_mut(&(RateScope::Key, "api".to_string()))
        .expect("the drawn api bucket")
}

#[test]
fn a_bucket_fuller_than_its_burst_is_caught() {
    let mut state = with_rates();
    // With no worker waiting, a full bucket breaks nothing: dispatch has no one to
    // offer the third task to.
    state.demand.clear();
    api(&mut state).level = CAPACITY;
    assert_eq!(check(&state), Ok(()), "full is within the burst");
    api(&mut state).level = CAPACITY + 1;
    caught(&state, InvariantKind::Limit, "holds 2001 units");
}

#[test]
fn a_bucket_counted_in_another_period_is_caught() {
    let mut state = with_rates();
    api(&mut state).per_ms = 999;
    caught(&state, InvariantKind::Limit, "key bucket \"api\"");
}

#[test]
fn a_bucket_drawn_in_the_future_is_caught() {
    let mut state = with_rates();
    api(&mut state).at = 10;
    assert_eq!(check(&state), Ok(()), "drawn now");
    api(&mut state).at = 11;
    caught(&state, InvariantKind::Limit, "at 11");
}

#[test]
fn a_bucket_no_rate_configures_is_caught() {
    let mut state = with_rates();
    let bucket = *api(&mut state);
    state
        .buckets
        .insert((RateScope::Lane, "api".to_string()), bucket);
    caught(&state, InvariantKind::Limit, "lane bucket \"api\"");
}

#[test]
fn a_refill_wake_up_without_its_timer_is_caught() {
    let mut state = with_rates();
    state.timers.disarm(1_010, Timer::RateRefill);
    caught(&state, InvariantKind::Timer, "wake-up at 1010 has no timer");
}

#[test]
fn a_rate_key_miscounting_its_holders_is_caught() {
    let mut state = with_rates();
    state.tasks.get_mut(&TaskId(1)).expect("task a").rate = None;
    caught(&state, InvariantKind::Count, "counts 3 holders, found 2");
}
