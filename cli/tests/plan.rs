//! `keel plan` end to end: exit codes, formats, and error reports on stderr.

use std::process::{Command, Output};

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_valid_job_prints_its_plan_and_exits_zero() {
    let o = keel(&["plan", "examples/etl-chain.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("job \"nightly-etl\"\n"), "{out}");
    assert!(out.contains("critical path: 57m over 5 tasks"), "{out}");
    assert!(out.contains("pool: none given"), "{out}");
}

#[test]
fn json_with_a_pool_follows_the_schema_order() {
    let args = [
        "plan",
        "examples/gpu-routed.toml",
        "--workers",
        "examples/pool.toml",
        "--format",
        "json",
    ];
    let o = keel(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("{\n  \"schema\": \"keel.plan/v1\",\n  \"job\": {"),
        "{out}"
    );
    let keys = [
        "\"pool\"",
        "\"stages\"",
        "\"schedule\"",
        "\"critical_path\"",
        "\"warnings\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| out.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(out.contains("\"kind\": \"no_worker_can_run\""), "{out}");
}

#[test]
fn an_invalid_job_prints_a_located_report_and_exits_non_zero() {
    let o = keel(&["plan", "jobs/tests/fixtures/unknown-dependency.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.starts_with("jobs/tests/fixtures/unknown-dependency.toml:11:20: task \"load\" depends on unknown task \"extract2\"\n"),
        "{err}"
    );
}

#[test]
fn an_invalid_pool_is_reported_against_the_pool_file() {
    let args = [
        "plan",
        "examples/quorum.toml",
        "--workers",
        "jobs/tests/fixtures/pool-zero-count.toml",
    ];
    let o = keel(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("jobs/tests/fixtures/pool-zero-count.toml:3:9: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreadable_and_non_utf8_files_are_errors_not_panics() {
    let o = keel(&["plan", "examples/no-such-job.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("examples/no-such-job.toml: "),
        "{}",
        stderr(&o)
    );
    let dir = std::env::temp_dir().join(format!("keel-plan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("latin1.toml");
    std::fs::write(&bad, b"[job]\nname = \"caf\xe9\"\n").unwrap();
    let o = keel(&["plan", bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("latin1.toml:2:12: the file is not valid UTF-8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let o = keel(&["plan", "examples/etl-chain.toml", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn simulate_reports_makespan_utilisation_and_writes_the_timeline() {
    let svg = std::env::temp_dir().join(format!("keel-plan-timeline-{}.svg", std::process::id()));
    let svg_arg = svg.to_str().unwrap();
    let args = [
        "plan",
        "examples/etl-chain.toml",
        "--workers",
        "examples/pool.toml",
        "--simulate",
        "--timeline",
        svg_arg,
    ];
    let o = keel(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let sim = &out[out.find("\nsimulation: ").expect("a simulation section")..];
    // A chain runs one task at a time, so the makespan is at least the critical path.
    let makespan = sim.lines().nth(2).unwrap();
    assert!(
        makespan.starts_with("  outcome succeeded, makespan 57m"),
        "{sim}"
    );
    assert!(sim.contains("  cpu-1 "), "{sim}");
    assert!(sim.contains("utilisation"), "{sim}");
    let written = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).unwrap();
    assert!(
        written.starts_with("<svg"),
        "{}",
        &written[..written.len().min(80)]
    );
}

#[test]
fn simulate_needs_a_pool() {
    let o = keel(&["plan", "examples/etl-chain.toml", "--simulate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn simulate_is_reproducible_from_its_seed() {
    let run = |seed: &str| {
        let o = keel(&[
            "plan",
            "examples/fan-out-fan-in.toml",
            "--workers",
            "examples/pool.toml",
            "--simulate",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let first = run("11");
    assert!(first.contains("makespan"), "{first}");
    assert_eq!(
        first,
        run("11"),
        "the same seed must give the same simulation"
    );
    let without = keel(&["plan", "examples/fan-out-fan-in.toml", "--seed", "11"]);
    assert!(
        !without.status.success(),
        "--seed without --simulate is a usage error"
    );
}

#[test]
fn simulate_in_json_adds_a_simulation_object_to_the_plan() {
    let args = [
        "plan",
        "examples/etl-chain.toml",
        "--workers",
        "examples/pool.toml",
        "--simulate",
        "--seed",
        "3",
        "--format",
        "json",
    ];
    let o = keel(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(json["schema"], "keel.plan/v1");
    let sim = &json["simulation"];
    assert_eq!(sim["seed"], 3);
    assert_eq!(sim["outcome"], "succeeded");
    // The chain's critical path is 57 minutes of estimates.
    assert!(sim["makespan_ms"].as_u64().unwrap() >= 57 * 60_000, "{sim}");
    let workers = sim["workers"].as_array().unwrap();
    assert!(workers.iter().any(|w| w["name"] == "cpu-1"), "{sim}");
    let busy: u64 = workers.iter().map(|w| w["busy_ms"].as_u64().unwrap()).sum();
    assert!(busy > 0, "{sim}");
    assert!(sim["timeline"].is_null());
    assert_eq!(
        stdout(&keel(&args)),
        stdout(&o),
        "the same seed gives the same JSON"
    );
}

#[test]
fn names_that_reorder_text_are_escaped_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("bidi.toml");
    let toml = "[job]\nname = \"invoice\u{202e}fdp.exe\"\n\n[[task]]\nid = \"a\u{2066}b\"\ncommand = \"x\"\n";
    std::fs::write(&job, toml).unwrap();
    let o = keel(&["plan", job.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("job \"invoice\\u{202e}fdp.exe\"\n"),
        "{out}"
    );
    assert!(out.contains("a\\u{2066}b"), "{out}");
    assert!(
        !out.contains('\u{202e}') && !out.contains('\u{2066}'),
        "{out}"
    );
}

#[test]
fn an_error_on_a_50_mb_line_yields_a_short_report() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("huge.toml");
    let huge = "p".repeat(50 << 20);
    let toml = format!("[job]\nname = \"big\"\npriority = \"{huge}\"\n\n[[task]]\nid = \"a\"\n");
    std::fs::write(&job, toml).unwrap();
    let o = keel(&["plan", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.len() < 2_000, "{} bytes", err.len());
    assert!(err.contains(":3:12: field `priority`"), "{err}");
}

/// A task estimated at `u64::MAX` ms used to overflow the simulated worker's clock (a
/// panic); a plan that must run longer than the simulator's horizon is refused, naming
/// the task, and the plan itself is still printed without `--simulate`.
#[test]
fn simulate_refuses_estimates_beyond_its_horizon_naming_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("forever.toml");
    std::fs::write(
        &job,
        "[job]\nname = \"forever\"\n\n[[task]]\nid = \"a\"\n\n[[task]]\nid = \"b\"\nestimate = \"18446744073709551615ms\"\ndeps = [\"a\"]\n",
    )
    .unwrap();
    let job = job.to_str().unwrap();
    let o = keel(&["plan", job, "--simulate", "--workers", "examples/pool.toml"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("task \"b\" is estimated at 18446744073709551615 ms, beyond the 30 days keel plan --simulate runs a plan for"),
        "{err}"
    );
    let o = keel(&["plan", job]);
    assert!(o.status.success(), "{}", stderr(&o));
}
