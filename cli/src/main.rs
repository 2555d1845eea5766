//! The `keel` command.

#[cfg(not(unix))]
compile_error!("keel needs a Unix system: its worker runs commands in process groups");

mod admin;
mod bench_e2e;
mod connect;
mod output;
mod plan;
mod plan_simulate;
mod process_group;
mod reaper;
mod serve;
mod serve_console;
mod serve_identity;
mod serve_listen;
mod signal;
mod sim;
mod status;
mod submit;
mod worker;
mod worker_exec;
mod worker_reaper;
mod worker_state;

use clap::{Parser, Subcommand};

/// Allocation is a large share of the engine's per-command cost; mimalloc roughly
/// halves it against the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run a coordinator: gRPC for workers and clients over the embedded log or Valkey.
    Serve(serve::ServeArgs),
    /// Serve tasks by running a shell command per task.
    Worker(worker::WorkerArgs),
    /// Submit a job spec file and print its id; --wait follows it to the end.
    Submit(submit::SubmitArgs),
    /// Show a job, its tasks and their attempts.
    Status(status::StatusArgs),
    /// Resume a task suspended on a waitpoint.
    Signal(signal::SignalArgs),
    /// Measure end-to-end throughput and claim-to-start latency on loopback.
    BenchE2e(bench_e2e::BenchE2eArgs),
    /// Kills a worker's commands when the worker dies (started by `keel worker`).
    #[command(hide = true)]
    Reaper(reaper::ReaperArgs),
    /// Repair a partition's log offline: check it, skip an input that panics the
    /// engine, or cancel a job.
    Admin(admin::AdminArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Sim(args) => sim::run_command(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Worker(args) => worker::run(&args),
        Command::Submit(args) => submit::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Signal(args) => signal::run(&args),
        Command::BenchE2e(args) => bench_e2e::run(&args),
        Command::Reaper(args) => reaper::run(&args),
        Command::Admin(args) => admin::run(&args),
    }
}
