//! Extreme values in a scenario's fields run to an end: no overflow, no panic, no run
//! stuck on a fault that healing should have lifted.

use keel_sim::{load, run, RunOptions};

/// An fsync that would take longer than any run, a coordinator that would stay down
/// forever, script steps at the end of time and for an instance it never had.
const EXTREMES: &str = r#"
name = "extremes"
heal_at_ms = 3000
liveness_ms = 60000

[[worker]]
name = "w1"

[[job]]
name = "j"

[[job.task]]
key = "a"

[[fault]]
at_ms = 10
kind = "slow_fsync"
for_ms = 9223372036854775807
delay_ms = 9223372036854775807

[[fault]]
at_ms = 20
kind = "fail_append"
for_ms = 9223372036854775807

[[script]]
at_ms = 0
worker = "w1"
do = "request"
credits = 0

[[script]]
at_ms = 5
worker = "w1"
do = "accept"

[[script]]
at_ms = 9223372036854775807
worker = "w1"
do = "complete"
job = "j"
task = "a"
attempt = 0
epoch = 0

[expect.jobs]
j = "succeeded"
"#;

#[test]
fn healing_lifts_an_fsync_that_would_never_end() {
    let scenario = load("extremes.toml", EXTREMES).expect("loads");
    let opts = RunOptions {
        record: true,
        ..RunOptions::new(0)
    };
    let report = run(&scenario, opts);
    // Replies the slow fsync held back are released after later marks; the trace still
    // reads in virtual-time order.
    let times: Vec<u64> = report.lines.iter().map(|l| l.t).collect();
    assert!(times.is_sorted(), "trace out of order: {times:?}");
    assert!(
        report.ok(),
        "{}\n{:?}\n{:?}",
        report.summary(),
        report.violations,
        report.unmet
    );
}
