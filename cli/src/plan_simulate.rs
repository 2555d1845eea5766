//! `keel plan --simulate`: runs the job in the deterministic simulator on the pool's
//! workers with no faults, each task taking its estimate, and reports the makespan,
//! how busy each worker was, and optionally the timeline as SVG.

use keel_sim::{simulate_plan, PlanWorker};
use keel_spec::{format_duration as dur, LoadedJob, Pool};
use std::fmt::Write;
use std::path::Path;

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

/// The simulation section of the report; writes the SVG timeline when asked.
pub fn simulate(
    job: &LoadedJob,
    pool: &Pool,
    seed: u64,
    timeline: Option<&Path>,
) -> Result<String, String> {
    let workers = workers(pool);
    let run = simulate_plan(job.spec(), &workers, seed)?;
    let mut out = String::new();
    out.push_str("\nsimulation: no faults, each task takes its estimate (the simulator's default without one)\n");
    let _ = writeln!(
        out,
        "  outcome {}, makespan {}",
        run.outcome,
        dur(run.makespan_ms)
    );
    let width = workers.iter().map(|w| w.name.len()).max().unwrap_or(0);
    for w in &workers {
        let busy = run.busy_ms.get(&w.name).copied().unwrap_or(0);
        let capacity = run
            .makespan_ms
            .saturating_mul(u64::from(w.max_concurrency.max(1)));
        let pct = if capacity == 0 {
            0.0
        } else {
            busy as f64 * 100.0 / capacity as f64
        };
        let _ = writeln!(
            out,
            "  {:width$}  busy {:>10}  utilisation {pct:5.1}%",
            w.name,
            dur(busy)
        );
    }
    if let Some(path) = timeline {
        let title = format!("keel plan --simulate {}", job.spec().name);
        let svg = keel_sim::timeline::svg(
            &title,
            &run.report.workers,
            &run.timeline,
            &run.report.marks,
            run.makespan_ms,
        );
        std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(out, "  timeline written to {}", path.display());
    }
    Ok(out)
}
