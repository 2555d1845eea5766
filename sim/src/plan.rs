//! Simulating a job plan: one job spec on a pool of honest workers, no faults, no
//! network delay, each task running for its `estimated_ms`. The planner uses this to
//! show how a plan would actually be scheduled by the real engine.

use crate::run::{run, RunOptions, RunReport};
use crate::scenario::{name_ref, GroupSpec, JobPlan, NetworkSpec, Scenario, TaskPlan, WorkerSpec};
use crate::timeline::Bar;
use keel_engine::{GroupKind, JobSpec, TaskSpec};
use std::collections::BTreeMap;

/// A worker of the pool a plan is simulated on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanWorker {
    pub name: String,
    pub capabilities: Vec<String>,
    pub max_concurrency: u32,
}

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
pub const DEFAULT_TASK_MS: u64 = 1_000;

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

/// The scenario of a plan: the job, honest workers, an instant network, no faults.
fn plan_scenario(spec: &JobSpec, workers: &[PlanWorker]) -> Scenario {
    Scenario {
        name: format!("plan {}", spec.name),
        description: String::new(),
        heal_at_ms: 0,
        liveness_ms: 365 * 24 * 3_600_000,
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
            tasks: spec.tasks.iter().map(task_plan).collect(),
        }],
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
}
