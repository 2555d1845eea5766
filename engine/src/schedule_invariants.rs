//! The schedules' invariants: timers armed where the records say, paused schedules
//! idle, and the runs each schedule counts as active exactly the unended jobs mapped to
//! it.

use crate::schedule_spec::MAX_SCHEDULES;
use crate::state::State;
use crate::timers::Timer;
use crate::violation::Violation;

pub(super) fn check_schedules(state: &State) -> Result<(), Violation> {
    ensure!(
        Limit,
        state.schedules.len() <= MAX_SCHEDULES,
        "{} schedules are held, over {MAX_SCHEDULES}",
        state.schedules.len()
    );
    let mut runs = 0usize;
    for (name, s) in &state.schedules {
        ensure!(
            Reference,
            &s.spec.name == name,
            "schedule {name:?} is stored under another name than its own"
        );
        if let Some(at) = s.next_due {
            ensure!(
                Timer,
                state.timers.contains(at, &Timer::ScheduleDue(name.clone())),
                "schedule {name:?} is due at {at} without a timer"
            );
        }
        if let Some(at) = s.release_at {
            ensure!(
                Timer,
                state
                    .timers
                    .contains(at, &Timer::ScheduleRelease(name.clone())),
                "schedule {name:?} releases at {at} without a timer"
            );
        }
        ensure!(
            Timer,
            !s.paused || (s.next_due.is_none() && s.release_at.is_none() && s.queued.is_none()),
            "paused schedule {name:?} still has a due time, a release or a queued run"
        );
        ensure!(
            Timer,
            s.late_from.is_none() || s.next_due.is_some(),
            "schedule {name:?} holds missed due times with no timer to run them"
        );
        for job in &s.active {
            ensure!(
                Reference,
                state.jobs.get(job).is_some_and(|j| j.end.is_none())
                    && state.schedule_runs.get(job) == Some(name),
                "schedule {name:?} counts {job} as running, which is not its unended run"
            );
        }
        runs += s.active.len();
    }
    ensure!(
        Count,
        runs == state.schedule_runs.len(),
        "{} runs are mapped to schedules, the schedules count {runs}",
        state.schedule_runs.len()
    );
    Ok(())
}
