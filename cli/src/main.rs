//! The `keel` command.

mod plan;
mod sim;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "Keel: a simulation-first distributed task engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what Keel will do with a job: stages, schedule, critical path, warnings.
    Plan(plan::PlanArgs),
    /// Deterministic simulation: run scenario files and seeded chaos swarms.
    Sim(sim::SimArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Sim(args) => sim::run_command(&args),
    }
}
