//! Engine defects the simulator found, each kept as the smallest scenario that showed
//! it, so the defect cannot come back unnoticed.

use keel_sim::{load, run, RunOptions};

/// A blacklisted worker that restarts (registers a new instance) must not come back
/// with a clean record, or a crash-looping flaky worker escapes its cooldown. The
/// engine once dropped `blacklisted_until` on re-registration without a
/// `WorkerReadmitted`; the swarm's blacklist check found it.
const BLACKLIST_SURVIVES_RESTART: &str = r#"
name = "blacklist survives a restart"
heal_at_ms = 20000
liveness_ms = 120000

[engine]
blacklist_threshold = 2
blacklist_cooldown_ms = 60000

[[worker]]
name = "flaky"
fail_rate = 1.0
max_concurrency = 2

[[worker]]
name = "honest"
join_ms = 2500

[[job]]
name = "j"

[[job.task]]
key = "a"
duration_ms = 2000
max_attempts = 10
backoff_ms = 100

[[job.task]]
key = "b"
duration_ms = 2000
max_attempts = 10
backoff_ms = 100

[[job.task]]
key = "c"
duration_ms = 2000
max_attempts = 10
backoff_ms = 100

[[fault]]
at_ms = 3000
kind = "crash_worker"
worker = "flaky"
restart_after_ms = 100

[expect.jobs]
j = "succeeded"

[[expect.count]]
what = "effect:worker_blacklisted"
worker = "flaky"
min = 1

# Two failing attempts put it on the blacklist (at about 2 s: a third grant may go
# out as the first failure frees a slot); it must get nothing more while the 60 s
# cooldown runs, restart or not.
[[expect.count]]
what = "effect:grant_offered"
worker = "flaky"
from_ms = 2500
max = 0
"#;

#[test]
fn a_restart_does_not_clear_the_blacklist() {
    let s = load(
        "blacklist_survives_restart.toml",
        BLACKLIST_SURVIVES_RESTART,
    )
    .expect("loads");
    let r = run(
        &s,
        RunOptions {
            record: true,
            ..RunOptions::new(0)
        },
    );
    assert!(
        r.ok(),
        "{}\nunmet: {:?}\n{}",
        r.summary(),
        r.unmet,
        keel_sim::compact_trace(&r.lines)
    );
}

/// The scenario itself is sound: without the restart the blacklist holds.
#[test]
fn without_a_restart_the_blacklist_holds() {
    let fault = "[[fault]]\nat_ms = 3000\nkind = \"crash_worker\"\nworker = \"flaky\"\nrestart_after_ms = 100\n";
    assert!(BLACKLIST_SURVIVES_RESTART.contains(fault));
    let src = BLACKLIST_SURVIVES_RESTART.replace(fault, "");
    let s = load("no_restart.toml", &src).expect("loads");
    let r = run(
        &s,
        RunOptions {
            record: true,
            ..RunOptions::new(0)
        },
    );
    assert!(
        r.ok(),
        "{}\nunmet: {:?}\n{}",
        r.summary(),
        r.unmet,
        keel_sim::compact_trace(&r.lines)
    );
}
