//! Planner behaviour on small jobs written for one rule each.

use keel_jobs::{load_job, load_pool, plan, Limit, Limits, Plan, Warning};

/// Plans a job given as text; the job is leaked so the plan can borrow its ids.
fn plan_of(job: &str, pool: Option<&str>) -> Plan<'static> {
    let limits = Limits::default();
    let job = load_job("job.toml", job, &limits).unwrap_or_else(|e| panic!("{e}"));
    let job = Box::leak(Box::new(job));
    let pool = pool.map(|p| load_pool("pool.toml", p, &limits).unwrap_or_else(|e| panic!("{e}")));
    plan(job, pool.as_ref())
}

fn path<'a>(p: &Plan<'a>) -> Vec<(&'a str, u64, u64)> {
    let steps = &p.critical_path.steps;
    steps
        .iter()
        .map(|s| (s.task, s.start_ms, s.finish_ms))
        .collect()
}

const GROUPS: &str = r#"
[job]
name = "groups"
[[task]]
id = "fast"
estimate = 10
[[task]]
id = "mid"
estimate = 20
[[task]]
id = "slow"
estimate = 40
[[task]]
id = "any"
deps = { any_of = ["slow", "fast", "mid"] }
[[task]]
id = "two"
deps = { quorum = 2, of = ["slow", "fast", "mid"] }
[[task]]
id = "all"
deps = ["slow", "fast", "mid"]
"#;

#[test]
fn all_of_waits_for_the_slowest_upstream() {
    let p = plan_of(GROUPS, None);
    // `all` and `slow` both finish at 40; the path ends at the smaller id.
    assert_eq!(path(&p), [("slow", 0, 40), ("all", 40, 40)]);
}

#[test]
fn quorum_and_any_of_start_at_the_kth_finish() {
    let long_tail = |id: &str| {
        GROUPS.replace(
            &format!("id = \"{id}\"\ndeps"),
            &format!("id = \"{id}\"\nestimate = 100\ndeps"),
        )
    };
    // slow=40, fast=10, mid=20: any_of is ready at 10, a quorum of two at 20.
    assert_eq!(
        path(&plan_of(&long_tail("any"), None)),
        [("fast", 0, 10), ("any", 10, 110)]
    );
    assert_eq!(
        path(&plan_of(&long_tail("two"), None)),
        [("mid", 0, 20), ("two", 20, 120)]
    );
}

#[test]
fn a_not_before_delay_can_gate_the_critical_path() {
    let job = r#"
[job]
name = "delayed"
deadline = "1m"
[[task]]
id = "a"
estimate = "10s"
[[task]]
id = "b"
deps = ["a"]
delay = "2m"
estimate = "5s"
"#;
    let p = plan_of(job, None);
    assert_eq!(path(&p), [("b", 120_000, 125_000)]);
    assert_eq!(
        p.warnings,
        [Warning::DeadlineBeforeCriticalPath {
            deadline_ms: 60_000,
            critical_path_ms: 125_000
        }]
    );
}

#[test]
fn schedule_puts_higher_priority_then_longer_work_first_within_a_stage() {
    let job = r#"
[job]
name = "order"
priority = 1
[[task]]
id = "a-short"
estimate = 1
[[task]]
id = "b-long"
estimate = 9
[[task]]
id = "c-urgent"
priority = 7
[[task]]
id = "d-late"
delay = 5
estimate = 1
[[task]]
id = "e-after"
deps = ["a-short"]
"#;
    let p = plan_of(job, None);
    assert_eq!(
        p.schedule,
        ["c-urgent", "b-long", "a-short", "d-late", "e-after"]
    );
}

#[test]
fn parallelism_is_bounded_by_the_cap_and_by_serving_pool_slots() {
    let job = r#"
[job]
name = "wide"
[defaults]
max_concurrency = 5
[[task]]
id = "t1"
capabilities = ["gpu"]
[[task]]
id = "t2"
capabilities = ["gpu"]
[[task]]
id = "t3"
[[task]]
id = "t4"
[[task]]
id = "t5"
[[task]]
id = "t6"
"#;
    let p = plan_of(job, None);
    assert_eq!(
        (p.stages[0].max_parallel, p.stages[0].limited_by),
        (5, Limit::MaxConcurrency)
    );
    let pool = "[[worker]]\nname = \"g\"\ncount = 2\ncapabilities = [\"gpu\"]\n[[worker]]\nname = \"other-lane\"\ncount = 50\nlanes = [\"batch\"]\n";
    let p = plan_of(job, Some(pool));
    assert_eq!(
        (p.stages[0].max_parallel, p.stages[0].limited_by),
        (2, Limit::Pool)
    );
    assert!(p.warnings.contains(&Warning::CapSerialisesStage {
        stage: 0,
        width: 6,
        max_concurrency: 5
    }));
    assert!(p
        .warnings
        .iter()
        .all(|w| !matches!(w, Warning::NoWorkerCanRun { .. })));
    let gpu_need = &p.stages[0].needs[1];
    assert_eq!(gpu_need.served_by.as_deref(), Some(&["g".to_string()][..]));
}

#[test]
fn a_pool_entry_without_lanes_serves_only_the_default_lane() {
    let job = "[job]\nname = \"j\"\nlane = \"batch\"\n[[task]]\nid = \"a\"\n";
    let p = plan_of(job, Some("[[worker]]\nname = \"w\"\n"));
    assert!(
        matches!(&p.warnings[..], [Warning::NoWorkerCanRun { lane, tasks, .. }] if lane == "batch" && tasks == &["a"])
    );
    let p = plan_of(job, Some("[[worker]]\nname = \"w\"\nlanes = [\"batch\"]\n"));
    assert!(p.warnings.is_empty());
}

const STREAMS: &str = r#"
[job]
name = "streams"
[[task]]
id = "prep"
estimate = 10
[[task]]
id = "produce"
deps = ["prep"]
estimate = 30
[[task]]
id = "tail"
stream_from = ["produce"]
estimate = 5
[[task]]
id = "after"
deps = ["tail"]
estimate = 1
"#;

#[test]
fn a_consumer_runs_beside_its_producer_and_ends_no_earlier() {
    let p = plan_of(STREAMS, None);
    // `tail` starts with `produce` and its stream ends when `produce` does.
    assert_eq!(
        path(&p),
        [
            ("prep", 0, 10),
            ("produce", 10, 40),
            ("tail", 10, 40),
            ("after", 40, 41)
        ]
    );
    let stages: Vec<(u32, Vec<&str>)> = p
        .stages
        .iter()
        .map(|s| (s.index, s.tasks.clone()))
        .collect();
    assert_eq!(
        stages,
        [
            (0, vec!["prep"]),
            (1, vec!["produce", "tail"]),
            (2, vec!["after"])
        ]
    );
}

#[test]
fn a_consumer_longer_than_its_producer_is_gated_by_what_started_both() {
    let job = format!(
        "{STREAMS}\n[[task]]\nid = \"slow\"\nstream_from = [\"produce\"]\nestimate = 100\n"
    );
    let p = plan_of(&job, None);
    assert_eq!(path(&p), [("prep", 0, 10), ("slow", 10, 110)]);
    // Producers come first in their stage, then the consumers by remaining work.
    assert_eq!(p.schedule, ["prep", "produce", "slow", "tail", "after"]);
}
