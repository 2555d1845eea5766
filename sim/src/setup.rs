//! Turning a scenario into what a run needs: the engine's configuration, worker
//! parameters, job specs with each task's simulated work in its payload, and the
//! schedules a client adds.

use crate::scenario::{GroupSpec, JobPlan, Scenario, SchedulePlan, WorkerSpec};
use crate::work::TaskWork;
use crate::worker::WorkerParams;
use keel_engine::{
    BlacklistPolicy, Config, DepGroup, GroupKind, JobSpec, Misfire, Overlap, RetryPolicy,
    ScheduleSpec, StreamMode, TaskSpec, Trigger, UnsatisfiedPolicy, WorkerId,
};

pub(crate) fn engine_config(scenario: &Scenario, seed: u64) -> Config {
    let defaults = Config::default();
    let knobs = &scenario.engine;
    let blacklist = defaults.blacklist;
    let mut config = Config {
        seed,
        grant_ttl_ms: knobs.grant_ttl_ms.unwrap_or(defaults.grant_ttl_ms),
        lease_ttl_ms: knobs.lease_ttl_ms.unwrap_or(defaults.lease_ttl_ms),
        liveness_timeout_ms: knobs
            .liveness_timeout_ms
            .unwrap_or(defaults.liveness_timeout_ms),
        max_losses: knobs.max_losses.unwrap_or(defaults.max_losses),
        blacklist: BlacklistPolicy {
            threshold: knobs.blacklist_threshold.unwrap_or(blacklist.threshold),
            window_ms: knobs.blacklist_window_ms.unwrap_or(blacklist.window_ms),
            cooldown_ms: knobs.blacklist_cooldown_ms.unwrap_or(blacklist.cooldown_ms),
        },
        ..defaults
    };
    config.tenants.caps = knobs.tenant_caps.clone();
    config.rates = knobs.rates.clone();
    config.budgets = knobs.budgets.clone();
    config
}

pub(crate) fn worker_params(worker: &WorkerSpec, ordinal: usize, config: &Config) -> WorkerParams {
    WorkerParams {
        id: WorkerId::new(worker.name.clone()),
        capabilities: worker.capabilities.clone(),
        max_concurrency: worker.max_concurrency,
        slowness: worker.slowness,
        fail_rate: worker.fail_rate,
        lease_ttl_ms: config.lease_ttl_ms,
        liveness_timeout_ms: config.liveness_timeout_ms,
        answer_timeout_ms: 1_000,
        ordinal: ordinal as u64 + 1,
    }
}

pub(crate) fn job_spec(job: &JobPlan) -> JobSpec {
    let tasks = job
        .tasks
        .iter()
        .map(|task| {
            let deps = (!task.after.is_empty()).then(|| DepGroup {
                kind: match task.group {
                    GroupSpec::AllOf => GroupKind::AllOf,
                    GroupSpec::AnyOf => GroupKind::AnyOf,
                    GroupSpec::Quorum => GroupKind::Quorum(task.quorum.unwrap_or(1)),
                },
                upstream: task
                    .after
                    .iter()
                    .map(|upstream| upstream.get_ref().clone())
                    .collect(),
                on_unsatisfied: UnsatisfiedPolicy::Skip,
            });
            let work = TaskWork {
                duration_ms: task.duration_ms,
                fail_attempts: task.fail_attempts,
                usage: task.usage.clone(),
                waits: task.waits,
                frames: task.frames,
                streams: Vec::new(),
            };
            TaskSpec {
                payload: work.encode(),
                capabilities: task.capabilities.clone(),
                deps,
                retry: RetryPolicy {
                    max_attempts: task.max_attempts,
                    backoff_base_ms: task.backoff_ms,
                    backoff_max_ms: task.backoff_ms.saturating_mul(8),
                    ..RetryPolicy::default()
                },
                priority: task.priority,
                allow_failure: task.allow_failure,
                estimated_ms: Some(task.duration_ms),
                rate_key: task.rate_key.clone(),
                stream: match task.keep {
                    0 => StreamMode::Durable,
                    1 => StreamMode::Newest,
                    n => StreamMode::Bounded {
                        frames: u32::from(n),
                    },
                },
                stream_from: task
                    .stream_from
                    .iter()
                    .map(|from| keel_engine::StreamEdge {
                        from: from.clone(),
                        policy: task.edge.policy(task.capacity.unwrap_or(1)),
                    })
                    .collect(),
                ..TaskSpec::new(task.key.clone())
            }
        })
        .collect();
    JobSpec {
        tenant: job.tenant.clone().unwrap_or_else(|| "default".into()),
        max_concurrency: job.max_concurrency,
        deadline_ms: job.deadline_ms,
        result: job.result.clone(),
        budgets: job.budgets.clone(),
        ..JobSpec::new(job.name.clone(), tasks)
    }
}

/// The engine's schedule for `plan`; a policy word it does not know is a load error.
pub(crate) fn schedule_spec(plan: &SchedulePlan) -> Result<ScheduleSpec, String> {
    let job = job_spec(&JobPlan {
        name: plan.name.clone(),
        submit_ms: 0,
        tenant: None,
        max_concurrency: None,
        deadline_ms: None,
        result: Vec::new(),
        budgets: Default::default(),
        tasks: plan.tasks.clone(),
    });
    let trigger = match (plan.every_ms, &plan.cron) {
        (Some(interval_ms), None) => Trigger::Every { interval_ms },
        (None, Some(expr)) => Trigger::Cron {
            expr: expr.clone(),
            zone: plan.zone.clone().unwrap_or_else(|| "UTC".into()),
        },
        _ => {
            return Err(format!(
                "schedule {:?} needs exactly one of every_ms and cron",
                plan.name
            ))
        }
    };
    let overlap = match plan.overlap.as_deref() {
        None | Some("skip") => Overlap::Skip,
        Some("queue_one") => Overlap::QueueOne,
        Some("allow") => Overlap::Allow,
        Some(other) => {
            return Err(format!(
                "schedule {:?}: unknown overlap {other:?}",
                plan.name
            ))
        }
    };
    let misfire = match plan.misfire.as_deref() {
        None | Some("run_once") => Misfire::RunOnce,
        Some("run_all") => Misfire::RunAll {
            max: plan.catch_up.unwrap_or(1_000),
        },
        Some("skip") => Misfire::Skip,
        Some(other) => {
            return Err(format!(
                "schedule {:?}: unknown misfire {other:?}",
                plan.name
            ))
        }
    };
    Ok(ScheduleSpec {
        overlap,
        misfire,
        grace_ms: plan.grace_ms.unwrap_or(60_000),
        ..ScheduleSpec::new(plan.name.clone(), job, trigger)
    })
}
