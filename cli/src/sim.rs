//! `keel sim`: run scenario files and swarms of seeded chaos runs against the real
//! engine. Seeds run in parallel threads here; each run itself is single-threaded and
//! deterministic inside keel-sim.

use crate::output::{errln, one_line, out, outln, safe_lines};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use keel_jobs::terminal_safe;
use keel_sim::{
    compact_trace, jsonl_trace, load, run, run_seed, scenario_for, svg_timeline, swarm_summary,
    Profile, RunOptions, SwarmOptions,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

#[derive(Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run one scenario file and check its expected outcomes.
    Run(RunArgs),
    /// Run many seeds, each with its own drawn fault profile, in parallel.
    Swarm(SwarmArgs),
    /// Print the fault profile and the generated scenario of one swarm seed.
    Show(ShowArgs),
    /// One long chaos run at scale (defaults: 50 workers, 10,000 tasks, 1 virtual hour).
    Scale(ScaleArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the full trace as JSONL, ordered by virtual time.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Draw an SVG timeline: a row per worker, a bar per attempt, fault marks.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Print the compact trace (the golden form) to stdout.
    #[arg(long)]
    print_trace: bool,
}

#[derive(Args)]
struct SwarmArgs {
    /// How many seeds to run.
    #[arg(long)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Parallel threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Reruns allowed to shrink each failure; 0 skips shrinking.
    #[arg(long, default_value_t = 200)]
    shrink_budget: u32,
    /// Print every seed's profile line (always on for 10 seeds or fewer).
    #[arg(long)]
    profiles: bool,
    /// Keep the coordinator's durable log and snapshots for every seed, not only
    /// for seeds whose faults need them (to measure what durability costs).
    #[arg(long)]
    durable: bool,
}

#[derive(Args)]
struct ShowArgs {
    seed: u64,
}

#[derive(Args)]
struct ScaleArgs {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    workers: u32,
    #[arg(long, default_value_t = 10_000)]
    tasks: u32,
    /// Length of the fault phase in virtual minutes.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Check the engine's own invariants after every this-many applies and at the
    /// end (0: only at the end); the check walks the whole engine state, so at this
    /// scale it is sampled. History checks always run after every event.
    #[arg(long, default_value_t = 1_000)]
    check_every: u32,
    /// Also space the checks by the state they walk: at least (tasks + dependency
    /// edges) / this-many applies apart, so a large state is not checked as often as
    /// a small one at a cost per apply that grows with it (0: `--check-every` alone).
    #[arg(long, default_value_t = 4)]
    check_budget: u32,
    /// Keep the coordinator's durable log and snapshots even when the
    /// seed's faults do not need them (to measure what durability costs).
    #[arg(long)]
    durable: bool,
}

pub fn run_command(args: &SimArgs) -> ExitCode {
    match &args.command {
        SimCommand::Run(args) => run_scenario(args),
        SimCommand::Swarm(args) => swarm(args),
        SimCommand::Show(args) => {
            let (profile, scenario) = scenario_for(args.seed);
            outln!("# {profile}");
            out!("{}", scenario.to_toml());
            ExitCode::SUCCESS
        }
        SimCommand::Scale(args) => scale(args),
    }
}

fn scale(args: &ScaleArgs) -> ExitCode {
    let profile = Profile::at_scale(args.seed, args.workers, args.tasks, args.minutes * 60_000);
    outln!("{profile}");
    let scenario = profile.scenario();
    let started = Instant::now();
    let report = run(
        &scenario,
        RunOptions {
            check_every: args.check_every,
            check_budget: args.check_budget,
            durable: args.durable,
            ..RunOptions::new(args.seed)
        },
    );
    let wall = started.elapsed().as_secs_f64();
    for v in &report.violations {
        outln!("violation: {v}");
    }
    if let Some(why) = &report.stopped {
        outln!("stopped: {why}");
    }
    outln!("{}", report.summary());
    outln!(
        "{}",
        swarm_summary(1, !report.violations.is_empty() as u64, report.events, wall)
    );
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_scenario(args: &RunArgs) -> ExitCode {
    let file = args.scenario.display().to_string();
    let src = match std::fs::read_to_string(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: cannot read {}: {e}", terminal_safe(&file));
            return ExitCode::from(2);
        }
    };
    let scenario = match load(&file, &src) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {}", one_line(&e.to_string(), 1000));
            return ExitCode::from(2);
        }
    };
    let record = args.trace.is_some() || args.print_trace;
    let report = run(
        &scenario,
        RunOptions {
            record,
            ..RunOptions::new(args.seed)
        },
    );
    if args.print_trace {
        out!("{}", safe_lines(&compact_trace(&report.lines)));
    }
    if let Some(path) = &args.trace {
        if let Err(e) = std::fs::write(path, jsonl_trace(&report.lines)) {
            errln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.timeline {
        let svg = svg_timeline(
            &scenario.name,
            &report.workers,
            &report.bars,
            &report.marks,
            report.end_ms,
        );
        if let Err(e) = std::fs::write(path, svg) {
            errln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    for v in &report.violations {
        outln!("violation: {}", terminal_safe(&v.to_string()));
    }
    if let Some(why) = &report.stopped {
        outln!("stopped: {why}");
    }
    for u in &report.unmet {
        outln!("unmet: {}", terminal_safe(&u.to_string()));
    }
    for (job, outcome) in &report.outcomes {
        outln!("job: {} {outcome}", terminal_safe(&job.to_string()));
    }
    outln!("{}", terminal_safe(&report.summary()));
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn swarm(args: &SwarmArgs) -> ExitCode {
    let threads = swarm_threads(args.jobs);
    let opts = SwarmOptions {
        shrink_budget: args.shrink_budget,
        durable: args.durable,
        ..SwarmOptions::default()
    };
    let show_profiles = args.profiles || args.seeds <= 10;
    let next = AtomicU64::new(args.start);
    let end = args.start + args.seeds;
    let bar = seed_bar(args.seeds);
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let (mut failures, mut events) = (0u64, 0u64);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, opts) = (&next, &opts);
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                if tx.send(run_seed(seed, opts)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for r in rx {
            events += r.events;
            if show_profiles {
                say(
                    &bar,
                    format!(
                        "seed {}: {} events, digest {:016x}, {}",
                        r.seed,
                        r.events,
                        r.digest,
                        scenario_for(r.seed).0
                    ),
                );
            }
            if let Some(report) = r.report {
                failures += 1;
                say(&bar, report);
            }
            bar.set_message(format!("{failures} failed"));
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    outln!(
        "{}",
        swarm_summary(
            args.seeds,
            failures,
            events,
            started.elapsed().as_secs_f64()
        )
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Threads to run seeds on: `--jobs`, else one per core; at least one.
fn swarm_threads(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

/// A progress bar over `seeds` seeds.
fn seed_bar(seeds: u64) -> ProgressBar {
    let bar = ProgressBar::new(seeds);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Prints above the progress bar, or plainly when there is no terminal to draw on.
fn say(bar: &ProgressBar, text: String) {
    if bar.is_hidden() {
        outln!("{}", text.trim_end());
    } else {
        bar.println(text.trim_end());
    }
}
