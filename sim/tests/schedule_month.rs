//! A month of a five-minute cron schedule in the simulator, with the coordinator
//! crashing five times (once for longer than the grace period, so a catch-up runs):
//! exactly the 8 640 due times run, each once, named after its due second, and every
//! run succeeds. The run is virtual time: `time cargo test --release -p keel-sim --test
//! schedule_month` measures what a month costs.

use keel_engine::run_name;
use keel_sim::{load, run, RunOptions};

const MIN: u64 = 60_000;
const DAY: u64 = 1_440 * MIN;

fn scenario() -> String {
    let crashes = [
        (2 * DAY + 7 * MIN + 100, 20_000),
        (9 * DAY + 3_000, 45 * MIN),
        (15 * DAY + 4 * MIN + 59_000, 2_000),
        (21 * DAY + 13 * MIN, 90_000),
        (29 * DAY + 12 * 60 * MIN + 2 * MIN, 5 * MIN),
    ];
    let faults: String = crashes
        .iter()
        .map(|(at, down)| {
            format!("[[fault]]\nat_ms = {at}\nkind = \"crash_coordinator\"\nfor_ms = {down}\n\n")
        })
        .collect();
    format!(
        r#"name = "a month of a five-minute schedule"
heal_at_ms = {heal}
liveness_ms = 3600000

[engine]
lease_ttl_ms = 60000
liveness_timeout_ms = 600000

[[worker]]
name = "w1"
max_concurrency = 2

[[schedule]]
name = "etl"
delete_ms = {delete}
cron = "*/5 * * * *"
overlap = "allow"
misfire = "run_all"
catch_up = 1000

[[schedule.task]]
key = "load"
duration_ms = 1000

{faults}[[expect.count]]
what = "check:schedule_fire"
max = 0
"#,
        heal = 30 * DAY + 10 * MIN,
        delete = 30 * DAY + MIN,
    )
}

#[test]
fn a_month_of_a_five_minute_schedule_fires_every_due_time_once_across_crashes() {
    let scenario = load("schedule_month.toml", &scenario()).unwrap_or_else(|e| panic!("{e}"));
    let report = run(&scenario, RunOptions::new(0));
    eprintln!(
        "a month of */5 with 5 coordinator crashes: {} events",
        report.events
    );
    assert!(
        report.ok(),
        "{}: {:?} {:?}",
        report.summary(),
        report.violations,
        report.unmet
    );
    let runs: Vec<(&String, &&str)> = report
        .outcomes
        .iter()
        .filter(|(name, _)| name.starts_with("etl@"))
        .collect();
    let mut expected: Vec<String> = (1..=30 * 288)
        .map(|k| run_name("etl", k * 5 * MIN))
        .collect();
    expected.sort();
    let names: Vec<&String> = runs.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), 8_640);
    assert!(
        names.iter().zip(&expected).all(|(a, b)| *a == b),
        "a due time is missing or extra"
    );
    let failed: Vec<_> = runs.iter().filter(|(_, o)| **o != "succeeded").collect();
    assert!(failed.is_empty(), "runs that did not succeed: {failed:?}");
}
