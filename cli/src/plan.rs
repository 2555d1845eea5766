//! `keel plan`: shows what Keel will do with a job before it runs. Reads the job spec
//! (and optionally a worker pool), prints the plan as text or JSON, or the located
//! error report and a non-zero exit code when a file is invalid.

use crate::output;
use crate::plan_simulate::{simulate, Simulation};
use clap::{Args, ValueEnum};
use keel_jobs::{load_job, load_pool, plan, Limits, SpecError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Job spec file (TOML); see examples/README.md for the format.
    pub job: PathBuf,
    /// Worker pool file (TOML) to match the job's capability needs against.
    #[arg(long, value_name = "POOL.toml")]
    pub workers: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also run the job in the deterministic simulator on the pool, with no faults,
    /// and report the makespan and each worker's utilisation (in JSON, as a
    /// `simulation` object beside the plan's fields).
    #[arg(long, requires = "workers")]
    pub simulate: bool,
    /// Seed of the simulation (with --simulate); the same seed gives the same run.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "simulate")]
    pub seed: u64,
    /// Write the simulated timeline as SVG to this file.
    #[arg(long, value_name = "FILE.svg", requires = "simulate")]
    pub timeline: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Spec files are small; a bound keeps a wrong path (a device, a huge log) from
/// exhausting memory.
const MAX_FILE_BYTES: u64 = 64 << 20;

pub fn run(args: &PlanArgs) -> ExitCode {
    match render(args) {
        Ok(out) => {
            output::stdout(&out);
            ExitCode::SUCCESS
        }
        Err(report) => {
            let _ = writeln!(std::io::stderr().lock(), "{report}");
            ExitCode::FAILURE
        }
    }
}

fn render(args: &PlanArgs) -> Result<String, String> {
    let limits = Limits::default();
    let (name, text) = read(&args.job)?;
    let job = load_job(&name, &text, &limits).map_err(|e| e.to_string())?;
    let pool = match &args.workers {
        Some(path) => {
            let (name, text) = read(path)?;
            Some(load_pool(&name, &text, &limits).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let plan = plan(&job, pool.as_ref());
    let simulation = match (args.simulate, &pool) {
        (true, Some(pool)) => Some(simulate(&job, pool, args.seed, args.timeline.as_deref())?),
        _ => None,
    };
    Ok(match (args.format, simulation) {
        // Names may hold bidirectional-text controls; JSON output is left to its reader.
        (Format::Text, None) => output::safe_lines(&plan.to_text()),
        (Format::Text, Some(simulation)) => {
            output::safe_lines(&(plan.to_text() + &simulation.to_text()))
        }
        (Format::Json, None) => plan.to_json() + "\n",
        (Format::Json, Some(simulation)) => {
            #[derive(serde::Serialize)]
            struct Simulated<'a, P: serde::Serialize> {
                #[serde(flatten)]
                plan: &'a P,
                simulation: Simulation,
            }
            let both = Simulated {
                plan: &plan,
                simulation,
            };
            serde_json::to_string_pretty(&both).map_err(|e| e.to_string())? + "\n"
        }
    })
}

/// Reads a file as UTF-8 text, named in reports as it was given on the command line.
fn read(path: &Path) -> Result<(String, String), String> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{name}: larger than {} MiB", MAX_FILE_BYTES >> 20));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(e) => {
            let valid_up_to = e.utf8_error().valid_up_to();
            Err(SpecError::invalid_utf8(&name, e.as_bytes(), valid_up_to).to_string())
        }
    }
}
