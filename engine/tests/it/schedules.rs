//! Schedules: a run is submitted at each due time on the engine's clock, named after
//! it; overlap and misfire policies decide what a busy or missed due time does;
//! pause, resume and delete; bad specs are refused by name; and every step survives a
//! snapshot and a replay (the harness checks both).

use keel_engine::*;
use keel_engine_harness::*;

const MIN: u64 = 60_000;

fn every(name: &str, interval_ms: u64) -> ScheduleSpec {
    ScheduleSpec::new(name, job("tmpl", &["a"]), Trigger::Every { interval_ms })
}

fn cron(name: &str, expr: &str, zone: &str) -> ScheduleSpec {
    let trigger = Trigger::Cron {
        expr: expr.into(),
        zone: zone.into(),
    };
    ScheduleSpec::new(name, job("tmpl", &["a"]), trigger)
}

fn cmd(h: &mut Harness, c: ScheduleCommand) -> Result<Accepted, Rejection> {
    h.apply(Input::Client(ClientCommand::Schedule(c)))
        .reply
        .expect("a client command gets a reply")
}

fn add(h: &mut Harness, spec: ScheduleSpec) -> Accepted {
    cmd(h, ScheduleCommand::Add(Box::new(spec))).expect("schedule added")
}

/// `(due, job)` of every run fired by `effects`.
fn fired(effects: &[Effect]) -> Vec<(Time, JobId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleFired { due, job, .. } => Some((*due, *job)),
            _ => None,
        })
        .collect()
}

/// Ticks at every wake-up up to `until`, returning the due times fired.
fn run_until(h: &mut Harness, until: Time) -> Vec<Time> {
    let mut dues = Vec::new();
    let mut last = None;
    while let Some(at) = next_wakeup(h, until, &mut last) {
        dues.extend(fired(&h.tick(at)).into_iter().map(|(d, _)| d));
    }
    dues
}

/// The engine's next wake-up up to `until`, after the `last` one ticked. A tick fires
/// everything due by its time, so each wake-up is later than the tick before it; one
/// that is not would have these loops tick for ever.
fn next_wakeup(h: &Harness, until: Time, last: &mut Option<Time>) -> Option<Time> {
    let at = h.engine.next_wakeup().filter(|&t| t <= until)?;
    assert!(
        last.is_none_or(|l| at > l),
        "wake-up at {at} is not after the tick at {last:?}"
    );
    *last = Some(at);
    Some(at)
}

fn view(h: &Harness, name: &str) -> ScheduleView {
    h.engine.schedule(name).expect("schedule exists")
}

fn cancel(h: &mut Harness, job: JobId) {
    h.apply(Input::Client(ClientCommand::CancelJob { job }));
}

#[test]
fn an_interval_schedule_fires_each_period_from_when_it_was_added() {
    let mut h = Harness::new(config());
    h.at(500);
    let mut spec = every("beat", 1_000);
    spec.overlap = Overlap::Allow;
    let reply = add(&mut h, spec);
    assert_eq!(
        reply,
        Accepted::ScheduleUpdated {
            name: "beat".into(),
            next_due: Some(1_500),
            duplicate: false
        }
    );
    assert_eq!(run_until(&mut h, 4_499), vec![1_500, 2_500, 3_500]);
    let names: Vec<String> = h.engine.jobs().into_iter().map(|j| j.name).collect();
    assert_eq!(
        names,
        [
            "beat@1970-01-01T00:00:01Z",
            "beat@1970-01-01T00:00:02Z",
            "beat@1970-01-01T00:00:03Z"
        ]
    );
    let v = view(&h, "beat");
    assert_eq!(
        (v.fired, v.next_due, v.last_due),
        (3, Some(4_500), Some(3_500))
    );
    assert_eq!(v.running.len(), 3);
    h.check_replay();
}

#[test]
fn a_day_of_a_five_minute_cron_fires_every_due_time_once() {
    let mut cfg = config();
    cfg.liveness_timeout_ms = u64::MAX / 4;
    let mut h = Harness::new(cfg);
    h.register("w", 1, &[], 4).expect("registered");
    add(&mut h, cron("etl", "*/5 * * * *", "UTC"));
    let (mut dues, mut last) = (Vec::new(), None);
    while let Some(at) = next_wakeup(&h, 1_440 * MIN, &mut last) {
        let effects = h.tick(at);
        dues.extend(fired(&effects).into_iter().map(|(d, _)| d));
        let offered = grants_for(&effects, "w").into_iter();
        for (grant, _) in offered.chain(h.request("w", 1, 4)) {
            let fence = h.accept("w", 1, grant).expect("accepted");
            h.complete("w", 1, fence);
        }
    }
    let expected: Vec<Time> = (1..=288).map(|k| k * 5 * MIN).collect();
    assert_eq!(dues, expected);
    let v = view(&h, "etl");
    assert_eq!((v.fired, v.skipped, v.missed, v.failed), (288, 0, 0, 0));
    h.check_replay();
}

#[test]
fn overlap_skip_counts_a_due_time_while_the_run_is_unfinished() {
    let mut h = Harness::new(config());
    add(&mut h, every("s", MIN));
    assert_eq!(run_until(&mut h, 3 * MIN), vec![MIN]);
    let v = view(&h, "s");
    assert_eq!((v.fired, v.skipped), (1, 2));
    h.at(3 * MIN + 1);
    cancel(&mut h, v.running[0]);
    assert_eq!(
        h.engine.next_wakeup(),
        Some(4 * MIN),
        "nothing queued, nothing to release"
    );
    assert_eq!(run_until(&mut h, 4 * MIN), vec![4 * MIN]);
}

#[test]
fn overlap_queue_one_holds_one_due_time_until_the_run_ends() {
    let mut h = Harness::new(config());
    let mut spec = every("q", MIN);
    spec.overlap = Overlap::QueueOne;
    add(&mut h, spec);
    assert_eq!(run_until(&mut h, 3 * MIN), vec![MIN]);
    let v = view(&h, "q");
    assert_eq!((v.fired, v.skipped, v.queued), (1, 1, Some(2 * MIN)));
    h.at(3 * MIN + 7);
    cancel(&mut h, v.running[0]);
    assert_eq!(
        h.engine.next_wakeup(),
        Some(3 * MIN + 7),
        "the release is due now"
    );
    assert_eq!(run_until(&mut h, 3 * MIN + 7), vec![2 * MIN]);
    assert_eq!(view(&h, "q").queued, None);
    h.check_replay();
}

#[test]
fn pausing_drops_a_queued_due_time_as_skipped() {
    let mut h = Harness::new(config());
    let mut spec = every("q", MIN);
    spec.overlap = Overlap::QueueOne;
    add(&mut h, spec);
    run_until(&mut h, 3 * MIN);
    let before = view(&h, "q");
    assert_eq!((before.skipped, before.queued), (1, Some(2 * MIN)));
    cmd(&mut h, ScheduleCommand::Pause { name: "q".into() }).unwrap();
    let after = view(&h, "q");
    assert_eq!((after.skipped, after.queued, after.paused), (2, None, true));
    cancel(&mut h, after.running[0]);
    assert_eq!(
        run_until(&mut h, 10 * MIN),
        Vec::<Time>::new(),
        "nothing was left queued"
    );
}

/// A queue-one schedule whose run just ended, its queued due time's release armed for
/// now, then `command` at the same time: the release fires first (due timers fire
/// before any input), so the queued due time runs before the command is handled.
fn release_pending_then(command: ScheduleCommand) -> (Harness, Vec<Time>) {
    let mut h = Harness::new(config());
    let mut spec = every("q", MIN);
    spec.overlap = Overlap::QueueOne;
    add(&mut h, spec);
    run_until(&mut h, 3 * MIN);
    h.at(3 * MIN + 7);
    let run = view(&h, "q").running[0];
    cancel(&mut h, run);
    assert_eq!(
        h.engine.next_wakeup(),
        Some(3 * MIN + 7),
        "the release is due"
    );
    let out = h.apply(Input::Client(ClientCommand::Schedule(command)));
    assert!(matches!(out.reply, Some(Ok(_))), "{:?}", out.reply);
    let next = h.engine.next_wakeup();
    assert!(next > Some(3 * MIN + 7), "a timer is left armed: {next:?}");
    let dues = fired(&out.effects).into_iter().map(|(d, _)| d).collect();
    (h, dues)
}

#[test]
fn a_release_due_when_a_pause_arrives_runs_the_queued_due_time_first() {
    let (mut h, dues) = release_pending_then(ScheduleCommand::Pause { name: "q".into() });
    assert_eq!(dues, vec![2 * MIN]);
    let v = view(&h, "q");
    assert_eq!((v.paused, v.queued, v.running.len()), (true, None, 1));
    assert_eq!(run_until(&mut h, 10 * MIN), Vec::<Time>::new());
    h.check_replay();
}

#[test]
fn a_release_due_when_a_delete_arrives_runs_the_queued_due_time_first() {
    let (h, dues) = release_pending_then(ScheduleCommand::Delete { name: "q".into() });
    assert_eq!(dues, vec![2 * MIN]);
    assert!(h.engine.schedule("q").is_none());
    h.check_replay();
}

/// A five-minute schedule whose engine next sees the time an hour and a half minute
/// after it was added: twelve due times, the last of them within the grace period.
fn after_downtime(misfire: Misfire) -> (Vec<Time>, ScheduleView) {
    let mut h = Harness::new(config());
    let mut spec = every("m", 5 * MIN);
    spec.overlap = Overlap::Allow;
    spec.misfire = misfire;
    add(&mut h, spec);
    let dues = fired(&h.tick(60 * MIN + 30_000))
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    h.check_replay();
    (dues, view(&h, "m"))
}

#[test]
fn missed_due_times_follow_the_misfire_policy_and_the_on_time_one_runs() {
    let (dues, v) = after_downtime(Misfire::Skip);
    assert_eq!(
        dues,
        vec![60 * MIN],
        "only the due time within the grace runs"
    );
    assert_eq!((v.fired, v.missed, v.next_due), (1, 11, Some(65 * MIN)));
    let (dues, v) = after_downtime(Misfire::RunOnce);
    assert_eq!(dues, vec![55 * MIN, 60 * MIN]);
    assert_eq!((v.fired, v.missed), (2, 10));
    let (dues, v) = after_downtime(Misfire::RunAll { max: 3 });
    assert_eq!(dues, vec![45 * MIN, 50 * MIN, 55 * MIN, 60 * MIN]);
    assert_eq!((v.fired, v.missed), (4, 8));
    let (dues, v) = after_downtime(Misfire::RunAll { max: 1_000 });
    assert_eq!(dues, (1..=12).map(|k| k * 5 * MIN).collect::<Vec<_>>());
    assert_eq!((v.fired, v.missed, v.last_due), (12, 0, Some(60 * MIN)));
}

/// Runs the five-minute due time on time, then sees the time an hour later: every due
/// time from ten minutes on is caught up, and the one that ran is not run again.
fn ran_then_missed(h: &mut Harness) -> Vec<Time> {
    let mut spec = every("m", 5 * MIN);
    spec.overlap = Overlap::Allow;
    spec.misfire = Misfire::RunAll { max: 1_000 };
    add(h, spec);
    assert_eq!(run_until(h, 5 * MIN), vec![5 * MIN]);
    fired(&h.tick(60 * MIN + 30_000))
        .into_iter()
        .map(|(d, _)| d)
        .collect()
}

#[test]
fn a_catch_up_starts_after_the_due_time_that_already_ran() {
    let mut h = Harness::new(config());
    let caught_up = ran_then_missed(&mut h);
    assert_eq!(caught_up, (2..=12).map(|k| k * 5 * MIN).collect::<Vec<_>>());
    h.check_replay();
}

#[cfg(feature = "fault-injection")]
#[test]
fn the_refire_defect_runs_the_last_due_time_again() {
    let mut h = Harness::new(config());
    h.engine.inject_faults(Faults {
        schedule_refire: true,
        ..Faults::default()
    });
    assert_eq!(
        ran_then_missed(&mut h)[0],
        5 * MIN,
        "the simulator relies on this"
    );
}

#[test]
fn a_due_time_seen_exactly_the_grace_period_late_is_on_time() {
    let mut h = Harness::new(config());
    let mut spec = every("g", 5 * MIN);
    spec.misfire = Misfire::Skip;
    add(&mut h, spec);
    let dues: Vec<Time> = fired(&h.tick(5 * MIN + 60_000))
        .iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        dues,
        vec![5 * MIN],
        "60 s late with 60 s of grace still runs"
    );
    assert_eq!(view(&h, "g").missed, 0);
    assert_eq!(
        h.engine.jobs()[0].submitted_at,
        5 * MIN,
        "submitted by its own timer at its due time, not by a catch-up"
    );
}

#[test]
fn in_a_catch_up_a_due_time_exactly_the_grace_period_late_is_on_time() {
    let mut h = Harness::new(config());
    let mut spec = every("c", 5 * MIN);
    spec.misfire = Misfire::Skip;
    add(&mut h, spec);
    let dues: Vec<Time> = fired(&h.tick(60 * MIN + 60_000))
        .iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(dues, vec![60 * MIN]);
    assert_eq!(view(&h, "c").missed, 11);
}

#[test]
fn a_clock_jump_of_centuries_costs_bounded_work_and_counts_what_it_scanned() {
    let mut h = Harness::new(config());
    let mut spec = every("far", 1_000);
    spec.misfire = Misfire::Skip;
    add(&mut h, spec);
    h.tick(300 * 365 * 86_400_000);
    let v = view(&h, "far");
    assert_eq!((v.fired, v.missed), (0, 100_000));
    assert!(v.next_due.is_some_and(|t| t > 300 * 365 * 86_400_000));
}

#[test]
fn pause_resume_and_delete() {
    let mut h = Harness::new(config());
    let mut spec = every("p", MIN);
    spec.overlap = Overlap::Allow;
    add(&mut h, spec);
    assert_eq!(run_until(&mut h, MIN), vec![MIN]);
    let pause = ScheduleCommand::Pause { name: "p".into() };
    let paused = cmd(&mut h, pause.clone()).unwrap();
    assert!(matches!(
        paused,
        Accepted::ScheduleUpdated {
            next_due: None,
            duplicate: false,
            ..
        }
    ));
    assert!(matches!(
        cmd(&mut h, pause),
        Ok(Accepted::ScheduleUpdated {
            duplicate: true,
            ..
        })
    ));
    assert_eq!(
        run_until(&mut h, 10 * MIN),
        Vec::<Time>::new(),
        "nothing fires while paused"
    );
    h.at(10 * MIN + 1);
    let resumed = cmd(&mut h, ScheduleCommand::Resume { name: "p".into() }).unwrap();
    assert!(
        matches!(resumed, Accepted::ScheduleUpdated { next_due: Some(t), .. } if t == 11 * MIN)
    );
    assert_eq!(run_until(&mut h, 11 * MIN), vec![11 * MIN]);
    assert_eq!(
        h.engine.schedules(),
        vec![view(&h, "p")],
        "the listing holds what the schedule's own view does"
    );
    cmd(&mut h, ScheduleCommand::Delete { name: "p".into() }).unwrap();
    assert_eq!(h.engine.schedules(), vec![]);
    assert_eq!(run_until(&mut h, 20 * MIN), Vec::<Time>::new());
    assert_eq!(h.engine.jobs().len(), 2, "runs already submitted stay");
    for name in ["p", "nope"] {
        let refused = cmd(&mut h, ScheduleCommand::Resume { name: name.into() }).unwrap_err();
        assert_eq!(refused.to_string(), format!("unknown schedule {name:?}"));
    }
    h.check_replay();
}

#[test]
fn adding_again_is_idempotent_and_another_spec_under_the_name_conflicts() {
    let mut h = Harness::new(config());
    add(&mut h, every("d", MIN));
    let again = add(&mut h, every("d", MIN));
    assert!(matches!(
        again,
        Accepted::ScheduleUpdated {
            duplicate: true,
            ..
        }
    ));
    let other = cmd(&mut h, ScheduleCommand::Add(Box::new(every("d", 2 * MIN)))).unwrap_err();
    assert_eq!(other.code(), "schedule_name_conflict");
}

#[test]
fn a_run_the_engine_refuses_is_counted_with_its_reason() {
    let mut cfg = config();
    cfg.limits.max_jobs_in_flight_per_tenant = 1;
    let mut h = Harness::new(cfg);
    let mut spec = every("busy", MIN);
    spec.overlap = Overlap::Allow;
    add(&mut h, spec);
    assert_eq!(run_until(&mut h, 2 * MIN), vec![MIN]);
    let v = view(&h, "busy");
    assert_eq!((v.fired, v.failed), (1, 1));
    assert_eq!(
        v.last_error.as_deref(),
        Some("run busy@1970-01-01T00:02:00Z: tenant \"default\" already has 1 jobs in flight")
    );
}

#[test]
fn bad_specs_are_refused_naming_what_is_wrong() {
    let mut h = Harness::new(config());
    let mut cases: Vec<(ScheduleSpec, &str)> = vec![
        (every("i", 999), "interval 999 ms is outside 1000 ms to"),
        (cron("c", "*/5 * * *", "UTC"), "has 4 fields"),
        (cron("c", "61 * * * *", "UTC"), "61 is out of range 0-59"),
        (
            cron("z", "* * * * *", "Mars/Olympus"),
            "unknown time zone \"Mars/Olympus\"",
        ),
        (every("", MIN), "schedule name is invalid: empty"),
        (
            every(&"n".repeat(236), MIN),
            "schedule name is invalid: longer than 235 bytes",
        ),
    ];
    let mut grace = every("g", MIN);
    grace.grace_ms = 0;
    cases.push((grace, "grace 0 ms is outside 1000 ms"));
    let mut week = every("w", MIN);
    week.grace_ms = 7 * 86_400_000 + 1;
    cases.push((
        week,
        "grace 604800001 ms is outside 1000 ms to 604800000 ms",
    ));
    cases.push((
        every("x", 10 * 366 * 86_400_000 + 1),
        "interval 316224000001 ms is outside 1000 ms to 316224000000 ms",
    ));
    let mut all = every("a", MIN);
    all.misfire = Misfire::RunAll { max: 0 };
    cases.push((all, "misfire run_all max 0 is outside 1 to 1000"));
    let mut empty = every("e", MIN);
    empty.job.tasks.clear();
    cases.push((empty, "its job: the job has no tasks"));
    for (spec, expected) in cases {
        let refused = cmd(&mut h, ScheduleCommand::Add(Box::new(spec))).unwrap_err();
        assert_eq!(refused.code(), "invalid_schedule");
        assert!(
            refused.to_string().contains(expected),
            "{refused} lacks {expected:?}"
        );
    }
    assert_eq!(h.engine.schedules(), vec![]);
    assert_eq!(h.engine.next_wakeup(), None);
    let mut longest = every("longest", 10 * 366 * 86_400_000);
    longest.grace_ms = 7 * 86_400_000;
    add(&mut h, longest);
}

#[test]
fn a_cron_schedule_reads_its_minutes_in_its_zone() {
    let mut h = Harness::new(config());
    // 2026-03-29 00:00 UTC; Berlin springs forward at 01:00 UTC that night.
    h.at(1_774_742_400_000);
    add(&mut h, cron("berlin", "30 2 * * *", "Europe/Berlin"));
    let due = view(&h, "berlin").next_due.expect("due");
    assert_eq!(
        due, 1_774_746_000_000,
        "02:30 does not exist: it runs at 03:00 local, 01:00 UTC"
    );
}
