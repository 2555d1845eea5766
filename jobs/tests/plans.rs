//! Golden plans: the text and JSON plan of every example job, in snapshots/. A change
//! to planning shows up here as a diff to review.

use keel_jobs::{load_job, load_pool, plan, Limits};
use std::path::Path;

/// Each example job with the pool it is planned against.
const CASES: &[(&str, Option<&str>)] = &[
    ("etl-chain", Some("pool")),
    ("fan-out-fan-in", Some("pool")),
    ("quorum", Some("pool")),
    ("gpu-routed", Some("pool")),
    ("gpu-routed", Some("pool-cpu-only")),
    ("gpu-routed", None),
    ("generated-1000", Some("pool")),
    ("wordcount", None),
    ("build-log", None),
    ("live-count", None),
];

fn read(name: &str) -> (String, String) {
    let rel = format!("examples/{name}.toml");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(&rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (rel, text)
}

#[test]
fn every_example_job_has_golden_plans() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut jobs: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml") && !f.starts_with("pool"))
        .map(|f| f.trim_end_matches(".toml").to_string())
        .collect();
    jobs.sort();
    for job in jobs {
        assert!(
            CASES.iter().any(|(j, _)| *j == job),
            "examples/{job}.toml has no golden plan"
        );
    }
}

#[test]
fn golden_plans() {
    let limits = Limits::default();
    for &(job_name, pool_name) in CASES {
        let (file, text) = read(job_name);
        let job = load_job(&file, &text, &limits).unwrap_or_else(|e| panic!("{e}"));
        let pool = pool_name.map(|p| {
            let (file, text) = read(p);
            load_pool(&file, &text, &limits).unwrap_or_else(|e| panic!("{e}"))
        });
        let plan = plan(&job, pool.as_ref());
        let suffix = pool_name.map_or("no-pool".to_string(), |p| p.to_string());
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
            description => format!("keel plan examples/{job_name}.toml{}", pool_name.map_or(String::new(), |p| format!(" --workers examples/{p}.toml"))),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("plan__{job_name}__{suffix}__text"), plan.to_text());
            insta::assert_snapshot!(format!("plan__{job_name}__{suffix}__json"), plan.to_json());
        });
    }
}
