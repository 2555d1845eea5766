//! `keel admin`: offline repairs of a partition's log, for a partition whose engine
//! panics on an input (`keel serve` stops naming the input's log offset, and refuses to
//! start while the log holds it). Each command takes the partition's lease, so it is
//! refused while a server leads it; with the embedded log, the file itself is locked
//! by a running server.

use crate::connect::{init_tracing, runtime};
use crate::serve::EngineArgs;
use clap::{Args, Subcommand};
use keel_coordinator::{AdminReport, CoordinatorConfig, CoordinatorError};
use keel_engine::JobId;
use keel_log::{Log, LogError, RedbLog};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Replay the log without changing it and name the first entry that panics the
    /// engine, if one does.
    Check(Target),
    /// Drop the entries at the given offsets for good: replay the rest and store a
    /// snapshot at the log's end, which every later start begins from.
    SkipInput {
        /// Log offset of an entry to drop (as `keel serve` names it); repeatable.
        #[arg(long = "offset", value_name = "N", required = true)]
        offsets: Vec<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Append a cancellation of a job, applied at the engine's own clock so no timer
    /// fires first: for a job whose state panics the engine.
    CancelJob {
        /// The job's id (`7` or `j7`).
        #[arg(long, value_name = "ID", value_parser = parse_job)]
        job: JobId,
        #[command(flatten)]
        target: Target,
    },
}

/// Which log to repair, and the engine settings it was written with.
#[derive(Args, Debug)]
struct Target {
    /// Data directory of the embedded log (as given to `keel serve`).
    #[arg(long, value_name = "DIR", default_value = "keel-data")]
    data_dir: PathBuf,
    /// The log is in Valkey at this URL (redis://HOST:PORT) instead.
    #[arg(long, value_name = "URL")]
    valkey: Option<String>,
    #[arg(long, value_name = "P", default_value_t = 0)]
    partition: u32,
    /// How long to wait for a lease a stopped server did not hand back.
    #[arg(long, value_name = "MS", default_value_t = 15_000)]
    wait_ms: u64,
    #[command(flatten)]
    engine: EngineArgs,
    /// Replay with the engine's injected panic armed, as `keel serve
    /// --inject-engine-panic` does (builds with the `fault-injection` feature only).
    #[cfg(feature = "fault-injection")]
    #[arg(long, hide = true)]
    inject_engine_panic: bool,
}

fn parse_job(text: &str) -> Result<JobId, String> {
    let digits = text.strip_prefix('j').unwrap_or(text);
    digits
        .parse()
        .map(JobId::new)
        .map_err(|_| format!("{text:?} is not a job id (a number, or j and a number)"))
}

pub fn run(args: &AdminArgs) -> ExitCode {
    init_tracing();
    match runtime().block_on(admin(&args.command)) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keel admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn admin(command: &AdminCommand) -> Result<Vec<String>, String> {
    let target = match command {
        AdminCommand::Check(target)
        | AdminCommand::SkipInput { target, .. }
        | AdminCommand::CancelJob { target, .. } => target,
    };
    match &target.valkey {
        Some(url) => {
            let log = ValkeyLog::connect(url, ValkeyOptions::default())
                .await
                .map_err(|e| format!("connecting to Valkey at {url}: {e}"))?;
            let holder = format!(
                "keel-admin@{}/{}",
                keel_coordinator::host_name(),
                std::process::id()
            );
            repair(command, target, &log, holder).await
        }
        None => {
            let log = RedbLog::open(&target.data_dir).map_err(|e| {
                format!(
                    "opening the log in {}: {e} (a keel serve running on it must be stopped first)",
                    target.data_dir.display()
                )
            })?;
            // The file admits one process at a time, so the server's own holder name
            // takes the partition back at once even if it was not handed back.
            repair(command, target, &log, "keel-serve-embedded".to_owned()).await
        }
    }
}

async fn repair<L: Log>(
    command: &AdminCommand,
    target: &Target,
    log: &L,
    holder: String,
) -> Result<Vec<String>, String> {
    let config = CoordinatorConfig {
        partition: target.partition,
        holder,
        engine: target.engine.config()?,
        prepare_engine: prepare_engine(target),
        ..CoordinatorConfig::default()
    };
    let deadline = Instant::now() + Duration::from_millis(target.wait_ms);
    let report = loop {
        let done = match command {
            AdminCommand::Check(_) => keel_coordinator::check_log(log, &config).await,
            AdminCommand::SkipInput { offsets, .. } => {
                let offsets: BTreeSet<u64> = offsets.iter().copied().collect();
                keel_coordinator::skip_inputs(log, &config, &offsets).await
            }
            AdminCommand::CancelJob { job, .. } => {
                keel_coordinator::cancel_job(log, &config, *job).await
            }
        };
        match done {
            Err(CoordinatorError::Log(LogError::LeaseHeld { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(CoordinatorError::Log(e @ LogError::LeaseHeld { .. })) => {
                return Err(format!("{e}: stop the server leading it first"));
            }
            other => break other.map_err(|e| e.to_string())?,
        }
    };
    Ok(describe(command, &report))
}

fn describe(command: &AdminCommand, report: &AdminReport) -> Vec<String> {
    let from = match report.snapshot {
        Some(offset) => format!("the snapshot at {offset}"),
        None => "the start".to_owned(),
    };
    let mut lines = Vec::new();
    match command {
        AdminCommand::Check(_) => lines.push(format!(
            "the log replays: {} entries from {from} to its end at {}",
            report.replayed, report.end
        )),
        AdminCommand::SkipInput { .. } => {
            for (offset, input) in &report.skipped {
                lines.push(format!("skipped entry {offset}: {input}"));
            }
            lines.push(format!(
                "stored a snapshot at {}: the partition starts from it, without the skipped entries",
                report.end
            ));
        }
        AdminCommand::CancelJob { job, .. } => lines.push(format!(
            "appended a cancellation of job {} at offset {}: {}",
            job.get(),
            report.end.saturating_sub(1),
            report.answer.as_deref().unwrap_or("no answer")
        )),
    }
    lines
}

#[cfg(feature = "fault-injection")]
fn prepare_engine(target: &Target) -> Option<fn(&mut keel_engine::Engine)> {
    target
        .inject_engine_panic
        .then_some(crate::serve::arm_injected_panic as fn(&mut keel_engine::Engine))
}

#[cfg(not(feature = "fault-injection"))]
fn prepare_engine(_target: &Target) -> Option<fn(&mut keel_engine::Engine)> {
    None
}
