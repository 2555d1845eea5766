//! Properties of the planner over random DAGs, and of the loaders over arbitrary text.

use keel_engine::{GroupKind, JobSpec, TaskSpec};
use keel_jobs::{load_job, load_pool, plan, Limits, LoadedJob, Pool, PoolEntry};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Distinct ids whose order differs from creation order (7919 is coprime to 1009).
fn key(i: usize) -> String {
    format!("k{}", (i * 7919) % 1009)
}

fn arb_task(i: usize) -> impl Strategy<Value = TaskSpec> {
    let deps = proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(4));
    let caps = proptest::sample::subsequence(vec!["cpu", "gpu", "ssd"], 0..=2);
    // Few distinct priorities, estimates and delays, so schedule ties are common and
    // the final tie-break by id is exercised.
    let estimate = proptest::option::of(proptest::sample::select(vec![10u64, 20, 35]));
    let delay = proptest::sample::select(vec![0u64, 0, 0, 15]);
    (deps, 0u8..3, any::<u32>(), -1i32..2, estimate, delay, caps).prop_map(
        move |(deps, kind, k, priority, estimate, delay, caps)| {
            let mut t = TaskSpec::new(key(i)).requires(&caps);
            if !deps.is_empty() {
                let kind = match kind {
                    0 => GroupKind::AllOf,
                    1 => GroupKind::AnyOf,
                    _ => GroupKind::Quorum(1 + k % deps.len() as u32),
                };
                let ups: Vec<String> = deps.iter().map(|&d| key(d)).collect();
                let ups: Vec<&str> = ups.iter().map(String::as_str).collect();
                t = t.after(kind, &ups);
            }
            t.priority = (priority != 0).then_some(priority);
            t.estimated_ms = estimate;
            t.delay_ms = delay;
            t
        },
    )
}

/// A random DAG in creation order, and the same tasks in a shuffled file order.
fn arb_jobs() -> impl Strategy<Value = (JobSpec, JobSpec)> {
    (1usize..40)
        .prop_flat_map(|n| (0..n).map(arb_task).collect::<Vec<_>>())
        .prop_flat_map(|tasks| (Just(tasks.clone()), Just(tasks).prop_shuffle()))
        .prop_map(|(a, b)| {
            let mut job = JobSpec::new("random", a);
            job.max_concurrency = Some(3);
            job.deadline_ms = Some(150);
            let mut shuffled = job.clone();
            shuffled.tasks = b;
            (job, shuffled)
        })
}

fn pool() -> Pool {
    let entry = |name: &str, caps: &[&str]| PoolEntry {
        name: name.into(),
        count: 2,
        concurrency: 1,
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        lanes: Vec::new(),
    };
    Pool {
        entries: vec![entry("plain", &["cpu"]), entry("gpu", &["cpu", "gpu"])],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn schedule_is_a_topological_order_of_every_task_once((spec, _) in arb_jobs()) {
        let job = LoadedJob::from_spec(spec, &Limits::default()).unwrap();
        let p = plan(&job, Some(&pool()));
        let position: BTreeMap<&str, usize> =
            p.schedule.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        prop_assert_eq!(position.len(), job.spec().tasks.len());
        prop_assert_eq!(p.schedule.len(), job.spec().tasks.len());
        for t in &job.spec().tasks {
            for up in t.deps.iter().flat_map(|g| &g.upstream) {
                prop_assert!(position[up.as_str()] < position[t.key.as_str()], "{} before {}", t.key, up);
            }
        }
        let staged: Vec<&str> = p.stages.iter().flat_map(|s| s.tasks.iter().copied()).collect();
        prop_assert_eq!(staged, p.schedule.clone());
    }

    #[test]
    fn plan_does_not_depend_on_file_order_or_run((spec, shuffled) in arb_jobs()) {
        let limits = Limits::default();
        let a = LoadedJob::from_spec(spec, &limits).unwrap();
        let b = LoadedJob::from_spec(shuffled, &limits).unwrap();
        let pool = pool();
        let first = plan(&a, Some(&pool));
        prop_assert_eq!(&first, &plan(&a, Some(&pool)));
        prop_assert_eq!(first.to_json(), plan(&b, Some(&pool)).to_json());
        prop_assert_eq!(first.to_text(), plan(&b, Some(&pool)).to_text());
    }

    #[test]
    fn critical_path_is_a_chain_ending_last((spec, _) in arb_jobs()) {
        let job = LoadedJob::from_spec(spec, &Limits::default()).unwrap();
        let p = plan(&job, None);
        let tasks: BTreeMap<&str, &TaskSpec> =
            job.spec().tasks.iter().map(|t| (t.key.as_str(), t)).collect();
        let steps = &p.critical_path.steps;
        prop_assert!(!steps.is_empty());
        prop_assert_eq!(steps.last().unwrap().finish_ms, p.critical_path.length_ms);
        for pair in steps.windows(2) {
            let down = tasks[pair[1].task];
            let ups = &down.deps.as_ref().unwrap().upstream;
            prop_assert!(ups.iter().any(|u| u == pair[0].task));
            prop_assert_eq!(pair[0].finish_ms, pair[1].start_ms);
        }
        for t in tasks.values() {
            let own = t.delay_ms + t.estimated_ms.unwrap_or(0);
            prop_assert!(own <= p.critical_path.length_ms);
        }
    }

    #[test]
    fn loaders_never_panic_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = load_job("f.toml", &text, &Limits::default()).map_err(|e| e.to_string());
        let _ = load_pool("f.toml", &text, &Limits::default()).map_err(|e| e.to_string());
    }

    #[test]
    fn loaders_never_panic_on_damaged_examples(
        which in 0usize..4,
        at in any::<proptest::sample::Index>(),
        cut in 0usize..40,
        insert in "[\\[\\]{}=\",#a-z0-9 \n]{0,12}",
    ) {
        let names = ["etl-chain", "quorum", "gpu-routed", "pool"];
        let path = format!("{}/../examples/{}.toml", env!("CARGO_MANIFEST_DIR"), names[which]);
        let text = std::fs::read_to_string(path).unwrap();
        let mut start = at.index(text.len());
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let damaged = format!("{}{insert}{}", &text[..start], &text[end..]);
        if let Ok(job) = load_job("f.toml", &damaged, &Limits::default()) {
            let _ = plan(&job, None).to_text();
        }
        let _ = load_pool("f.toml", &damaged, &Limits::default()).map_err(|e| e.to_string());
    }
}

#[test]
fn deeply_nested_input_is_refused_not_overflowed() {
    let text = format!(
        "[job]\nname = \"x\"\n[[task]]\nid = \"a\"\ndata = {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(load_job("f.toml", &text, &Limits::default()).is_err());
}
