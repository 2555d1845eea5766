//! Every scenario in `scenarios/` runs, meets its expectations, is deterministic, and
//! matches its golden compact trace under `snapshots/` (one line per event, so a
//! behaviour change is a readable diff).

use keel_sim::{compact_trace, load, run, RunOptions};
use std::path::{Path, PathBuf};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn check(stem: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{stem}.toml"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let scenario = load(&format!("scenarios/{stem}.toml"), &src).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        record: true,
        ..RunOptions::new(0)
    };
    let report = run(&scenario, opts);
    let mut compact = compact_trace(&report.lines);
    if report.reads > 0 {
        compact.push_str(&format!("status reads that ran: {}\n", report.reads));
    }
    assert!(
        report.ok(),
        "{stem}: {}\nviolations: {:?}\nunmet: {:?}\ntrace:\n{compact}",
        report.summary(),
        report.violations,
        report.unmet
    );
    let again = run(
        &scenario,
        RunOptions {
            record: false,
            ..opts
        },
    );
    assert_eq!(
        again.digest, report.digest,
        "{stem}: the same seed gave a different run"
    );
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(format!("scenario__{stem}"), compact);
    });
}

#[test]
fn every_scenario_file_has_a_test() {
    let stems: Vec<String> = scenario_files()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let listed = [
        "budgets",
        "cancel_running",
        "capability_routing",
        "clock_drift_near_expiry",
        "concurrency_caps",
        "coordinator_crash_recovery",
        "corrupt_log_refused",
        "dag_groups",
        "edges_fifo",
        "edges_newest",
        "flaky_worker_blacklisted",
        "grant_expiry",
        "grant_race",
        "held_grant_expires",
        "partition_heal",
        "rate_limits",
        "reads_across_crashes",
        "schedules",
        "scripted_stale_completion",
        "signals",
        "stale_instance_register",
        "stale_worker_requeue",
        "storage_faults",
        "streams",
        "streams_newest",
        "zombie_completion_rejected",
    ];
    assert_eq!(
        stems, listed,
        "add a test below for every new scenario file"
    );
}

macro_rules! scenario_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            check(stringify!($name));
        })*
    };
}

scenario_tests!(
    budgets,
    cancel_running,
    capability_routing,
    clock_drift_near_expiry,
    concurrency_caps,
    coordinator_crash_recovery,
    corrupt_log_refused,
    dag_groups,
    edges_fifo,
    edges_newest,
    flaky_worker_blacklisted,
    grant_expiry,
    grant_race,
    held_grant_expires,
    partition_heal,
    rate_limits,
    reads_across_crashes,
    schedules,
    scripted_stale_completion,
    signals,
    stale_instance_register,
    stale_worker_requeue,
    storage_faults,
    streams,
    streams_newest,
    zombie_completion_rejected,
);

/// scenarios/README.md names every effect, end reason, rejection code and check a
/// scenario may count, so the list a reader sees is the list the loader accepts.
#[test]
fn the_readme_lists_every_countable_name() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/README.md");
    let readme = std::fs::read_to_string(path).expect("scenarios/README.md");
    let effects = keel_engine::Effect::LABELS.iter().copied();
    let reasons = keel_engine::EndReason::ALL.iter().map(|r| r.label());
    let codes = keel_engine::Rejection::CODES.iter().copied();
    let checks = keel_sim::Check::ALL.iter().map(|c| c.name());
    let missing: Vec<&str> = effects
        .chain(reasons)
        .chain(codes)
        .chain(checks)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios/README.md does not list {missing:?}"
    );
}
