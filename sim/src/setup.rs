//! Turning a scenario into what a run needs: the engine's configuration, worker
//! parameters and job specs with each task's simulated work in its payload.

use crate::scenario::{GroupSpec, JobPlan, Scenario, WorkerSpec};
use crate::work::TaskWork;
use crate::worker::WorkerParams;
use keel_engine::{
    BlacklistPolicy, Config, DepGroup, GroupKind, JobSpec, RetryPolicy, TaskSpec,
    UnsatisfiedPolicy, WorkerId,
};

pub fn engine_config(s: &Scenario, seed: u64) -> Config {
    let d = Config::default();
    let k = &s.engine;
    let b = d.blacklist;
    let mut config = Config {
        seed,
        grant_ttl_ms: k.grant_ttl_ms.unwrap_or(d.grant_ttl_ms),
        lease_ttl_ms: k.lease_ttl_ms.unwrap_or(d.lease_ttl_ms),
        liveness_timeout_ms: k.liveness_timeout_ms.unwrap_or(d.liveness_timeout_ms),
        max_losses: k.max_losses.unwrap_or(d.max_losses),
        blacklist: BlacklistPolicy {
            threshold: k.blacklist_threshold.unwrap_or(b.threshold),
            window_ms: k.blacklist_window_ms.unwrap_or(b.window_ms),
            cooldown_ms: k.blacklist_cooldown_ms.unwrap_or(b.cooldown_ms),
        },
        ..d
    };
    config.tenants.caps = k.tenant_caps.clone();
    config
}

pub fn worker_params(w: &WorkerSpec, ordinal: usize, config: &Config) -> WorkerParams {
    WorkerParams {
        id: WorkerId::new(w.name.clone()),
        capabilities: w.capabilities.clone(),
        max_concurrency: w.max_concurrency,
        slowness: w.slowness,
        fail_rate: w.fail_rate,
        lease_ttl_ms: config.lease_ttl_ms,
        liveness_timeout_ms: config.liveness_timeout_ms,
        heartbeat_ms: (config.liveness_timeout_ms / 3).max(1),
        resend_ms: 1_000,
        ordinal: ordinal as u64 + 1,
    }
}

pub fn job_spec(j: &JobPlan) -> JobSpec {
    let tasks = j
        .tasks
        .iter()
        .map(|t| {
            let deps = (!t.after.is_empty()).then(|| DepGroup {
                kind: match t.group {
                    GroupSpec::AllOf => GroupKind::AllOf,
                    GroupSpec::AnyOf => GroupKind::AnyOf,
                    GroupSpec::Quorum => GroupKind::Quorum(t.quorum.unwrap_or(1)),
                },
                upstream: t.after.iter().map(|u| u.get_ref().clone()).collect(),
                on_unsatisfied: UnsatisfiedPolicy::Skip,
            });
            let work = TaskWork {
                duration_ms: t.duration_ms,
                fail_attempts: t.fail_attempts,
            };
            TaskSpec {
                payload: work.encode(),
                capabilities: t.capabilities.clone(),
                deps,
                retry: RetryPolicy {
                    max_attempts: t.max_attempts,
                    backoff_base_ms: t.backoff_ms,
                    backoff_max_ms: t.backoff_ms.saturating_mul(8),
                    ..RetryPolicy::default()
                },
                priority: t.priority,
                allow_failure: t.allow_failure,
                estimated_ms: Some(t.duration_ms),
                ..TaskSpec::new(t.key.clone())
            }
        })
        .collect();
    JobSpec {
        tenant: j.tenant.clone().unwrap_or_else(|| "default".into()),
        max_concurrency: j.max_concurrency,
        deadline_ms: j.deadline_ms,
        ..JobSpec::new(j.name.clone(), tasks)
    }
}
