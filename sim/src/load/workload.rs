//! The network, the workers, the jobs and the schedules: ranges, duplicates and
//! dependencies.

use super::Ctx;
use crate::scenario::{GroupSpec, Scenario};
use crate::setup::schedule_spec;
use crate::ScenarioError;
use std::collections::BTreeSet;

pub(super) fn network(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    let net = &s.network;
    let at = || ctx.header("[network]", 0);
    for (name, p) in [
        ("loss", net.loss),
        ("duplicate", net.duplicate),
        ("reorder", net.reorder),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(ctx.err(
                at(),
                format!("network.{name} must be within 0..=1, got {p}"),
            ));
        }
    }
    if net.latency_min_ms > net.latency_max_ms {
        return Err(ctx.err(at(), "network.latency_min_ms exceeds latency_max_ms"));
    }
    if net.sync_interval_ms == 0 {
        return Err(ctx.err(at(), "network.sync_interval_ms must be at least 1"));
    }
    Ok(())
}

/// Checks every worker; returns their names.
pub(super) fn workers<'a>(ctx: &Ctx, s: &'a Scenario) -> Result<BTreeSet<&'a str>, ScenarioError> {
    if s.workers.is_empty() {
        return Err(ctx.err(None, "a scenario needs at least one [[worker]]"));
    }
    let mut workers = BTreeSet::new();
    for (i, w) in s.workers.iter().enumerate() {
        let at = ctx.header("[[worker]]", i);
        if !workers.insert(w.name.as_str()) {
            return Err(ctx.err(at, format!("worker {:?} is declared twice", w.name)));
        }
        if !((0.0..=1.0).contains(&w.fail_rate) && w.slowness > 0.0 && w.slowness <= 1000.0) {
            return Err(ctx.err(
                at,
                format!(
                    "worker {:?}: fail_rate must be within 0..=1 and slowness within (0, 1000]",
                    w.name
                ),
            ));
        }
        if w.max_concurrency == 0 {
            return Err(ctx.err(
                at,
                format!("worker {:?}: max_concurrency must be at least 1", w.name),
            ));
        }
    }
    Ok(workers)
}

/// Checks every job and its tasks' dependencies; returns the job names.
pub(super) fn jobs<'a>(ctx: &Ctx, s: &'a Scenario) -> Result<BTreeSet<&'a str>, ScenarioError> {
    let mut jobs = BTreeSet::new();
    for (i, j) in s.jobs.iter().enumerate() {
        let at = ctx.header("[[job]]", i);
        if !jobs.insert(j.name.as_str()) {
            return Err(ctx.err(at, format!("job {:?} is declared twice", j.name)));
        }
        if j.tasks.is_empty() {
            return Err(ctx.err(at, format!("job {:?} has no [[job.task]]", j.name)));
        }
        let keys: BTreeSet<&str> = j.tasks.iter().map(|t| t.key.as_str()).collect();
        for t in &j.tasks {
            for up in &t.after {
                if !keys.contains(up.get_ref().as_str()) {
                    return Err(ctx.err(
                        Some(up.span()),
                        format!(
                            "task {:?} depends on unknown task {:?} in job {:?}",
                            t.key,
                            up.get_ref(),
                            j.name
                        ),
                    ));
                }
            }
            if t.group == GroupSpec::Quorum && t.quorum.is_none() {
                return Err(ctx.err(
                    at.clone(),
                    format!("task {:?}: group = \"quorum\" needs quorum = k", t.key),
                ));
            }
        }
    }
    Ok(jobs)
}

/// Each schedule is named once, deleted after it is added, and passes the engine's own
/// checks (tried on a scratch engine, so the file is refused with the engine's words).
pub(super) fn schedules(ctx: &Ctx, s: &Scenario) -> Result<(), ScenarioError> {
    let mut names = BTreeSet::new();
    for (i, plan) in s.schedules.iter().enumerate() {
        let at = ctx.header("[[schedule]]", i);
        if !names.insert(plan.name.as_str()) {
            return Err(ctx.err(at, format!("schedule {:?} is declared twice", plan.name)));
        }
        if plan.delete_ms <= plan.add_ms {
            return Err(ctx.err(
                at,
                format!("schedule {:?}: delete_ms must be after add_ms", plan.name),
            ));
        }
        let spec = schedule_spec(plan).map_err(|e| ctx.err(at.clone(), e))?;
        let mut scratch = keel_engine::Engine::new(keel_engine::Config::default());
        let add =
            keel_engine::ClientCommand::Schedule(keel_engine::ScheduleCommand::Add(Box::new(spec)));
        if let Some(Err(refused)) = scratch.apply(0, keel_engine::Input::Client(add)).reply {
            return Err(ctx.err(at, format!("schedule {:?}: {refused}", plan.name)));
        }
    }
    Ok(())
}
