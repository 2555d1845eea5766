//! Simulating a job plan: one job spec on a pool of honest workers, no faults, no
//! network delay, each task running for its `estimated_ms`. The planner uses this to
//! show how a plan would actually be scheduled by the real engine.

use crate::run::{run, RunOptions, RunReport};
use crate::scenario::{
    name_ref, EdgePlan, GroupSpec, JobPlan, NetworkSpec, Scenario, TaskPlan, WorkerSpec,
};
use crate::timeline::Bar;
use keel_engine::{validate_job, GroupKind, JobSpec, Limits, TaskSpec};
use std::collections::BTreeMap;

/// A worker of the pool a plan is simulated on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanWorker {
    /// Its name in the outcome's per-worker numbers.
    pub name: String,
    /// What it advertises.
    pub capabilities: Vec<String>,
    /// Tasks it runs at once.
    pub max_concurrency: u32,
}

/// What a simulated run of a plan measured.
#[derive(Clone, Debug)]
pub struct PlanOutcome {
    /// From submission to the end of the last attempt, in ms.
    pub makespan_ms: u64,
    /// Sum of attempt lengths per worker, in ms.
    pub busy_ms: BTreeMap<String, u64>,
    /// One bar per attempt: worker, task, start, end.
    pub timeline: Vec<Bar>,
    /// `succeeded` unless a task could not run (no capable worker, say).
    pub outcome: String,
    /// The whole run, for `timeline::svg` or a trace.
    pub report: RunReport,
}

/// Tasks without `estimated_ms` take this long.
pub(crate) const DEFAULT_TASK_MS: u64 = 1_000;

/// The longest a simulated plan may run (30 days of virtual time). The simulator's work
/// grows with virtual time (leases are renewed, timers fire), so a plan that must run
/// longer is refused at once, naming why, rather than ground through for minutes
/// until the run's event budget gives up.
pub(crate) const PLAN_HORIZON_MS: u64 = 30 * DAY_MS;

const DAY_MS: u64 = 24 * 3_600_000;

/// Runs `spec` on `workers` with no faults. Deterministic; `Err` names an invalid input.
/// `seed` drives the simulator's tie-breaks; a run is reproducible from it.
pub fn simulate_plan(
    spec: &JobSpec,
    workers: &[PlanWorker],
    seed: u64,
) -> Result<PlanOutcome, String> {
    if workers.is_empty() {
        return Err("simulating a plan needs at least one worker".into());
    }
    check_horizon(spec, workers)?;
    let scenario = plan_scenario(spec, workers);
    crate::load::check_generated(&scenario).map_err(|e| e.message)?;
    let report = run(&scenario, RunOptions::new(seed));
    if let Some(v) = report.violations.first() {
        return Err(format!("the plan could not be simulated: {v}"));
    }
    let mut busy_ms: BTreeMap<String, u64> = workers.iter().map(|w| (w.name.clone(), 0)).collect();
    for b in &report.bars {
        *busy_ms.entry(b.worker.clone()).or_default() += b.end - b.start;
    }
    Ok(PlanOutcome {
        makespan_ms: report.bars.iter().map(|b| b.end).max().unwrap_or(0),
        busy_ms,
        timeline: report.bars.clone(),
        outcome: report
            .outcomes
            .get(&spec.name)
            .copied()
            .unwrap_or("unfinished")
            .to_string(),
        report,
    })
}

/// Refuses a plan whose run certainly outlasts [`PLAN_HORIZON_MS`]: a task estimated
/// beyond it, a dependency chain whose estimates add up beyond it, or more estimated
/// work than the pool's slots can do within it. Sums saturate, so any estimate up to
/// `u64::MAX` gets this answer.
fn check_horizon(spec: &JobSpec, workers: &[PlanWorker]) -> Result<(), String> {
    let beyond = format!(
        "beyond the {} days keel plan --simulate runs a plan for",
        PLAN_HORIZON_MS / DAY_MS
    );
    let estimate = |t: &TaskSpec| t.estimated_ms.unwrap_or(DEFAULT_TASK_MS);
    if let Some(t) = spec.tasks.iter().find(|t| estimate(t) > PLAN_HORIZON_MS) {
        return Err(format!(
            "task {:?} is estimated at {} ms, {beyond}",
            t.key,
            estimate(t)
        ));
    }
    if let Ok(valid) = validate_job(spec, &Limits::default()) {
        let mut chain = vec![0u64; spec.tasks.len()];
        for &i in &valid.topo_order {
            let i = i as usize;
            let before = valid.upstream[i].iter().map(|&u| chain[u as usize]).max();
            chain[i] = before.unwrap_or(0).saturating_add(estimate(&spec.tasks[i]));
            if chain[i] > PLAN_HORIZON_MS {
                return Err(format!(
                    "the dependency chain ending at task {:?} is estimated at {} ms, {beyond}",
                    spec.tasks[i].key, chain[i]
                ));
            }
        }
    }
    let work = spec
        .tasks
        .iter()
        .fold(0u64, |sum, t| sum.saturating_add(estimate(t)));
    let slots = workers.iter().fold(0u64, |sum, w| {
        sum.saturating_add(u64::from(w.max_concurrency.max(1)))
    });
    if work / slots.max(1) > PLAN_HORIZON_MS {
        return Err(format!(
            "the tasks are estimated at {work} ms in all, more than the pool's {slots} slots can run {beyond}"
        ));
    }
    Ok(())
}

/// The scenario of a plan: the job, honest workers, an instant network, no faults.
fn plan_scenario(spec: &JobSpec, workers: &[PlanWorker]) -> Scenario {
    Scenario {
        name: format!("plan {}", spec.name),
        description: String::new(),
        heal_at_ms: 0,
        liveness_ms: 365 * 24 * 3_600_000,
        reads_every_ms: 0,
        engine: Default::default(),
        network: NetworkSpec {
            latency_min_ms: 0,
            latency_max_ms: 0,
            sync_interval_ms: 1,
            ..NetworkSpec::default()
        },
        workers: workers
            .iter()
            .map(|w| WorkerSpec {
                name: w.name.clone(),
                capabilities: w.capabilities.clone(),
                max_concurrency: w.max_concurrency.max(1),
                slowness: 1.0,
                fail_rate: 0.0,
                drift_ppm: 0,
                join_ms: 0,
            })
            .collect(),
        jobs: vec![JobPlan {
            name: spec.name.clone(),
            submit_ms: 0,
            tenant: None,
            max_concurrency: spec.max_concurrency,
            deadline_ms: spec.deadline_ms,
            result: spec.result.clone(),
            budgets: spec.budgets.clone(),
            tasks: spec.tasks.iter().map(task_plan).collect(),
        }],
        schedules: Vec::new(),
        faults: Vec::new(),
        script: Vec::new(),
        expect: Default::default(),
    }
}

/// A spec's task as the simulator runs it: one attempt of its estimated length.
fn task_plan(t: &TaskSpec) -> TaskPlan {
    let (after, group, quorum) = match &t.deps {
        None => (Vec::new(), GroupSpec::AllOf, None),
        Some(g) => {
            let (kind, k) = match g.kind {
                GroupKind::AllOf => (GroupSpec::AllOf, None),
                GroupKind::AnyOf => (GroupSpec::AnyOf, None),
                GroupKind::Quorum(k) => (GroupSpec::Quorum, Some(k)),
            };
            (g.upstream.iter().map(name_ref).collect(), kind, k)
        }
    };
    TaskPlan {
        key: t.key.clone(),
        duration_ms: t.estimated_ms.unwrap_or(DEFAULT_TASK_MS),
        capabilities: t.capabilities.clone(),
        after,
        group,
        quorum,
        max_attempts: 1,
        backoff_ms: 0,
        fail_attempts: 0,
        allow_failure: t.allow_failure,
        priority: t.priority,
        rate_key: t.rate_key.clone(),
        usage: None,
        waits: false,
        frames: 0,
        keep: 0,
        stream_from: Vec::new(),
        edge: EdgePlan::Fifo,
        capacity: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, ms: u64) -> TaskSpec {
        TaskSpec {
            estimated_ms: Some(ms),
            ..TaskSpec::new(key)
        }
    }

    #[test]
    fn a_diamond_on_two_workers_takes_its_critical_path() {
        let spec = JobSpec::new(
            "diamond",
            vec![
                task("a", 1_000),
                task("b", 3_000).after(GroupKind::AllOf, &["a"]),
                task("c", 2_000).after(GroupKind::AllOf, &["a"]),
                task("d", 1_000).after(GroupKind::AllOf, &["b", "c"]),
            ],
        );
        let pool: Vec<PlanWorker> = ["w1", "w2"]
            .iter()
            .map(|n| PlanWorker {
                name: n.to_string(),
                capabilities: vec![],
                max_concurrency: 1,
            })
            .collect();
        let out = simulate_plan(&spec, &pool, 0).unwrap();
        assert_eq!(out.outcome, "succeeded");
        assert_eq!(out.timeline.len(), 4);
        // Critical path a -> b -> d is 5 s; scheduling and sync add a few ms per hop.
        assert!(
            (5_000..5_100).contains(&out.makespan_ms),
            "{}",
            out.makespan_ms
        );
        let busy: u64 = out.busy_ms.values().sum();
        assert!((7_000..7_050).contains(&busy), "{busy}");
    }

    fn one_worker(slots: u32) -> Vec<PlanWorker> {
        vec![PlanWorker {
            name: "w".into(),
            capabilities: vec![],
            max_concurrency: slots,
        }]
    }

    #[test]
    fn plans_that_outlast_the_horizon_are_refused_naming_why() {
        let huge = JobSpec::new("huge", vec![task("a", u64::MAX)]);
        let err = simulate_plan(&huge, &one_worker(1), 0).unwrap_err();
        assert_eq!(
            err,
            "task \"a\" is estimated at 18446744073709551615 ms, beyond the 30 days keel plan --simulate runs a plan for"
        );
        let day = 24 * 3_600_000;
        let chain = JobSpec::new(
            "chain",
            vec![
                task("a", 20 * day),
                task("b", 20 * day).after(GroupKind::AllOf, &["a"]),
            ],
        );
        let err = simulate_plan(&chain, &one_worker(8), 0).unwrap_err();
        assert!(
            err.starts_with("the dependency chain ending at task \"b\""),
            "{err}"
        );
        let wide = JobSpec::new("wide", vec![task("a", 20 * day), task("b", 20 * day)]);
        let err = simulate_plan(&wide, &one_worker(1), 0).unwrap_err();
        assert!(err.contains("more than the pool's 1 slots"), "{err}");
        // Tasks side by side on enough slots run.
        let fits = JobSpec::new("fits", vec![task("a", 3_600_000), task("b", 3_600_000)]);
        let out = simulate_plan(&fits, &one_worker(2), 0).unwrap();
        assert_eq!(out.outcome, "succeeded");
    }
}
