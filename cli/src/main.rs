//! The `keel` command.

#[cfg(not(unix))]
compile_error!("keel needs a Unix system: its worker runs commands in process groups");

mod admin;
mod bench_e2e;
mod budgets;
mod cancel;
mod clock;
mod connect;
mod duration;
mod exit;
mod explain;
mod jobs;
mod json;
mod log_json;
mod logs;
mod output;
mod plan;
mod plan_simulate;
mod process_group;
mod reaper;
mod results;
mod retry;
mod schedule;
mod serve;
mod serve_budget_gauges;
mod serve_console;
mod serve_gauges;
mod serve_identity;
mod serve_listen;
mod serve_policy;
mod signal;
mod sim;
mod status;
mod status_text;
mod submit;
mod table;
mod wait;
mod worker;
mod worker_edges;
mod worker_exec;
mod worker_inputs;
mod worker_log;
mod worker_reaper;
mod worker_state;
mod worker_stream;
mod workers;

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
    /// Show a job, its tasks and their attempts, and why waiting tasks wait.
    Status(status::StatusArgs),
    /// List jobs, newest first: state, task counts, age.
    Jobs(jobs::JobsArgs),
    /// List workers: lanes, capabilities, slots, running tasks, blacklist, last heard.
    Workers(workers::WorkersArgs),
    /// Cancel a job: revoke its running attempts and end its unfinished tasks.
    Cancel(cancel::CancelArgs),
    /// Submit the failed, cancelled and skipped part of a finished job as a new job.
    Retry(retry::RetryArgs),
    /// Resume a task suspended on a waitpoint.
    Signal(signal::SignalArgs),
    /// Recurring jobs: add (cron or interval), list, pause, resume, delete.
    Schedule(schedule::ScheduleArgs),
    /// List budgets: tenant and job budgets, each dimension's use and limits.
    Budgets(budgets::BudgetsArgs),
    /// Print a task's output: its winning attempt's.
    Output(results::OutputArgs),
    /// Print a job's result: the outputs of the tasks nothing else depends on.
    Result(results::ResultArgs),
    /// Print a task's output stream: the frames its attempts emitted; -f follows it.
    Logs(logs::LogsArgs),
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
        Command::Jobs(args) => jobs::run(&args),
        Command::Workers(args) => workers::run(&args),
        Command::Cancel(args) => cancel::run(&args),
        Command::Retry(args) => retry::run(&args),
        Command::Signal(args) => signal::run(&args),
        Command::Schedule(args) => schedule::run(&args),
        Command::Budgets(args) => budgets::run(&args),
        Command::Output(args) => results::run_output(&args),
        Command::Result(args) => results::run_result(&args),
        Command::Logs(args) => logs::run(&args),
        Command::BenchE2e(args) => bench_e2e::run(&args),
        Command::Reaper(args) => reaper::run(&args),
        Command::Admin(args) => admin::run(&args),
    }
}
