//! `keel plan --simulate`: runs the job in the deterministic simulator on the pool's
//! workers with no faults, each task taking its estimate, and reports the makespan,
//! how busy each worker was, and optionally the timeline as SVG; as text, or as a
//! `simulation` object added to the JSON plan.

use keel_jobs::{format_duration as dur, LoadedJob, Pool};
use keel_sim::{simulate_plan, PlanWorker};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// What one simulated run of the plan showed.
#[derive(Debug, Serialize)]
pub struct Simulation {
    pub seed: u64,
    pub outcome: String,
    pub makespan_ms: u64,
    pub workers: Vec<WorkerLoad>,
    /// Where the SVG timeline was written, if asked for.
    pub timeline: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct WorkerLoad {
    pub name: String,
    pub busy_ms: u64,
    /// Busy time over the makespan times the worker's concurrency, in percent.
    pub utilisation_pct: f64,
}

/// One simulated worker per unit of each pool entry's count, named `entry-1`, `entry-2`...
fn workers(pool: &Pool) -> Vec<PlanWorker> {
    pool.entries
        .iter()
        .flat_map(|e| {
            (1..=e.count).map(move |k| PlanWorker {
                name: format!("{}-{k}", e.name),
                capabilities: e.capabilities.clone(),
                max_concurrency: e.concurrency,
            })
        })
        .collect()
}

/// Runs the simulation; writes the SVG timeline when asked.
pub fn simulate(
    job: &LoadedJob,
    pool: &Pool,
    seed: u64,
    timeline: Option<&Path>,
) -> Result<Simulation, String> {
    let workers = workers(pool);
    let run = simulate_plan(job.spec(), &workers, seed)?;
    let loads = workers
        .iter()
        .map(|w| {
            let busy_ms = run.busy_ms.get(&w.name).copied().unwrap_or(0);
            let capacity = run
                .makespan_ms
                .saturating_mul(u64::from(w.max_concurrency.max(1)));
            let utilisation_pct = if capacity == 0 {
                0.0
            } else {
                busy_ms as f64 * 100.0 / capacity as f64
            };
            WorkerLoad {
                name: w.name.clone(),
                busy_ms,
                utilisation_pct,
            }
        })
        .collect();
    let written = match timeline {
        Some(path) => {
            let title = format!("keel plan --simulate {}", job.spec().name);
            let svg = keel_sim::timeline::svg(
                &title,
                &run.report.workers,
                &run.timeline,
                &run.report.marks,
                run.makespan_ms,
            );
            std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    Ok(Simulation {
        seed,
        outcome: run.outcome,
        makespan_ms: run.makespan_ms,
        workers: loads,
        timeline: written,
    })
}

impl Simulation {
    /// The simulation section of the text report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str("\nsimulation: no faults, each task takes its estimate (the simulator's default without one)\n");
        let _ = writeln!(
            out,
            "  outcome {}, makespan {}",
            self.outcome,
            dur(self.makespan_ms)
        );
        let width = self.workers.iter().map(|w| w.name.len()).max().unwrap_or(0);
        for w in &self.workers {
            let _ = writeln!(
                out,
                "  {:width$}  busy {:>10}  utilisation {:5.1}%",
                w.name,
                dur(w.busy_ms),
                w.utilisation_pct
            );
        }
        if let Some(path) = &self.timeline {
            let _ = writeln!(out, "  timeline written to {path}");
        }
        out
    }
}
