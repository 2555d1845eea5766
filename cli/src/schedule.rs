//! `keel schedule`: recurring jobs. `add` stores a job file with a cron expression (in
//! a time zone) or an interval; the coordinator submits each run at its due time as
//! the job `<name>@<due second, UTC>`. `list` shows every schedule's next and last due
//! time and counters; `pause`, `resume` and `delete` change one.

use crate::clock::{now_ms, rfc3339, stamp};
use crate::connect::{runtime, ConnectArgs};
use crate::duration::{exact, parse_duration};
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::output::{one_line, out, outln};
use crate::plan::Format;
use crate::table::table;
use clap::{Args, Subcommand, ValueEnum};
use keel_grpc::client::ScheduleChange;
use keel_grpc::proto::{
    add_schedule_request, schedule_view, AddScheduleRequest, CronTrigger, ScheduleResponse,
    ScheduleView,
};
use keel_jobs::{load_job, Limits};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Run a job file on a cron expression or an interval.
    #[command(after_help = EXIT_CODES)]
    Add(AddArgs),
    /// Every schedule: trigger, state, next and last due time, counters.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Stop a schedule firing (due times while paused are not run).
    #[command(after_help = EXIT_CODES)]
    Pause(NameArgs),
    /// Fire a paused schedule again, from its next due time after now.
    #[command(after_help = EXIT_CODES)]
    Resume(NameArgs),
    /// Forget a schedule; runs already submitted continue.
    #[command(after_help = EXIT_CODES)]
    Delete(NameArgs),
}

/// What a due time does while the previous run is unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverlapArg {
    Skip,
    QueueOne,
    Allow,
}

/// What due times missed while the coordinator was down do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MisfireArg {
    RunOnce,
    RunAll,
    Skip,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Job spec file (TOML), as `keel submit` reads it.
    pub job: PathBuf,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), or a
    /// macro: @hourly, @daily, @weekly, @monthly, @yearly.
    #[arg(
        long,
        value_name = "EXPR",
        conflicts_with = "every",
        required_unless_present = "every"
    )]
    pub cron: Option<String>,
    /// IANA time zone the cron expression's minutes are read in (default UTC).
    #[arg(long, value_name = "ZONE", requires = "cron", conflicts_with = "every")]
    pub tz: Option<String>,
    /// A fixed interval instead of cron (e.g. 30s, 10m, 1h; at least 1s), counted from
    /// when the schedule is added.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// The schedule's name (default: the job's name).
    #[arg(long)]
    pub name: Option<String>,
    /// A due time while the previous run is unfinished: skip it, queue one, or allow
    /// runs to overlap.
    #[arg(long, value_enum, default_value_t = OverlapArg::Skip)]
    pub overlap: OverlapArg,
    /// Due times missed by more than --grace (the coordinator was down): run the
    /// latest once, run each (up to --catch-up), or skip them.
    #[arg(long, value_enum, default_value_t = MisfireArg::RunOnce)]
    pub misfire: MisfireArg,
    /// With --misfire run-all: at most this many missed runs, the latest ones.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub catch_up: u32,
    /// How late a due time may be seen and still run as on time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1m")]
    pub grace: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format (JSON fields: cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The schedule's name.
    pub name: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: &ScheduleArgs) -> ExitCode {
    let rt = runtime();
    match &args.command {
        ScheduleCommand::Add(a) => finish("schedule add", rt.block_on(add(a))),
        ScheduleCommand::List(a) => finish("schedule list", rt.block_on(list(a))),
        ScheduleCommand::Pause(a) => finish(
            "schedule pause",
            rt.block_on(change(a, ScheduleChange::Pause)),
        ),
        ScheduleCommand::Resume(a) => finish(
            "schedule resume",
            rt.block_on(change(a, ScheduleChange::Resume)),
        ),
        ScheduleCommand::Delete(a) => finish(
            "schedule delete",
            rt.block_on(change(a, ScheduleChange::Delete)),
        ),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The request `args` describe, with the job read from its file.
fn request(args: &AddArgs) -> Result<AddScheduleRequest, Failure> {
    let file = args.job.display().to_string();
    let source =
        std::fs::read_to_string(&args.job).map_err(|e| Failure::error(format!("{file}: {e}")))?;
    let job = load_job(&file, &source, &Limits::default()).map_err(|e| e.to_string())?;
    let spec = keel_grpc::job_spec_to_proto(job.spec());
    let trigger = match (&args.cron, args.every) {
        (Some(expr), _) => add_schedule_request::Trigger::Cron(CronTrigger {
            expr: expr.clone(),
            zone: args.tz.clone().unwrap_or_else(|| "UTC".into()),
        }),
        (None, Some(every)) => add_schedule_request::Trigger::EveryMs(millis(every)),
        (None, None) => return Err(Failure::error("give --cron EXPR or --every DURATION")),
    };
    Ok(AddScheduleRequest {
        name: args.name.clone().unwrap_or_else(|| spec.name.clone()),
        job: Some(spec),
        trigger: Some(trigger),
        overlap: match args.overlap {
            OverlapArg::Skip => "skip",
            OverlapArg::QueueOne => "queue_one",
            OverlapArg::Allow => "allow",
        }
        .into(),
        misfire: match args.misfire {
            MisfireArg::RunOnce => "run_once",
            MisfireArg::RunAll => "run_all",
            MisfireArg::Skip => "skip",
        }
        .into(),
        catch_up_max: args.catch_up,
        grace_ms: Some(millis(args.grace)),
    })
}

async fn add(args: &AddArgs) -> Result<Exit, Failure> {
    let request = request(args)?;
    let mut client = args.connect.connect().await?;
    let answer = client.add_schedule(request).await?;
    let what = if answer.duplicate {
        "already exists with this spec"
    } else {
        "added"
    };
    outln!("schedule {:?} {what}; {}", answer.name, next_words(&answer));
    Ok(Exit::Ok)
}

fn next_words(answer: &ScheduleResponse) -> String {
    match answer.next_due_ms {
        Some(at) => format!("next run at {}", stamp(at, now_ms())),
        None => "no run is due".to_string(),
    }
}

async fn change(args: &NameArgs, change: ScheduleChange) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let answer = client.change_schedule(change, &args.name).await?;
    let name = &answer.name;
    let line = match (change, answer.duplicate) {
        (ScheduleChange::Pause, false) => format!("schedule {name:?} paused"),
        (ScheduleChange::Pause, true) => format!("schedule {name:?} was already paused"),
        (ScheduleChange::Resume, dup) => {
            let was = if dup { " was not paused;" } else { " resumed;" };
            format!("schedule {name:?}{was} {}", next_words(&answer))
        }
        (ScheduleChange::Delete, _) => format!("schedule {name:?} deleted"),
    };
    outln!("{line}");
    Ok(Exit::Ok)
}

async fn list(args: &ListArgs) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let schedules = client.list_schedules().await?.schedules;
    match args.format {
        Format::Text => out!("{}", render(&schedules, now_ms())),
        Format::Json => {
            let list: Vec<Value> = schedules.iter().map(to_json).collect();
            out!("{}", crate::json::document(&json!({ "schedules": list })));
        }
    }
    Ok(Exit::Ok)
}

/// `cron "*/5 * * * *" Europe/Berlin` or `every 10m`.
fn trigger_words(v: &ScheduleView) -> String {
    match &v.trigger {
        Some(schedule_view::Trigger::Cron(c)) => format!("cron {:?} {}", c.expr, c.zone),
        Some(schedule_view::Trigger::EveryMs(ms)) => format!("every {}", exact(*ms)),
        None => "-".into(),
    }
}

fn state_words(v: &ScheduleView) -> String {
    if v.paused {
        return "paused".into();
    }
    let running: Vec<String> = v.running.iter().map(|j| format!("j{j}")).collect();
    match (running.is_empty(), v.queued_ms) {
        (true, _) => "idle".into(),
        (false, None) => format!("running {}", running.join(",")),
        (false, Some(_)) => format!("running {}, one queued", running.join(",")),
    }
}

/// The `keel schedule list` table.
pub fn render(schedules: &[ScheduleView], now: u64) -> String {
    if schedules.is_empty() {
        return "no schedules\n".into();
    }
    let when = |t: Option<u64>| t.map_or_else(|| "-".into(), |t| stamp(t, now));
    let rows: Vec<[String; 9]> = schedules
        .iter()
        .map(|v| {
            [
                one_line(&v.name, 40),
                one_line(&trigger_words(v), 40),
                state_words(v),
                when(v.next_due_ms),
                when(v.last_due_ms),
                v.fired.to_string(),
                v.skipped.to_string(),
                v.missed.to_string(),
                if v.last_error.is_empty() {
                    v.failed.to_string()
                } else {
                    format!("{} ({})", v.failed, one_line(&v.last_error, 60))
                },
            ]
        })
        .collect();
    let head = [
        "NAME", "TRIGGER", "STATE", "NEXT", "LAST", "RUNS", "SKIPPED", "MISSED", "FAILED",
    ];
    table(head, &rows)
}

fn to_json(v: &ScheduleView) -> Value {
    let time = |t: Option<u64>| t.map(rfc3339);
    json!({
        "name": v.name,
        "job": v.job.as_ref().map(|j| j.name.clone()),
        "trigger": trigger_words(v),
        "overlap": v.overlap,
        "misfire": v.misfire,
        "catch_up_max": v.catch_up_max,
        "grace_ms": v.grace_ms,
        "paused": v.paused,
        "next_due": time(v.next_due_ms),
        "next_due_ms": v.next_due_ms,
        "last_due": time(v.last_due_ms),
        "last_due_ms": v.last_due_ms,
        "running": v.running,
        "queued": time(v.queued_ms),
        "queued_ms": v.queued_ms,
        "runs": v.fired,
        "skipped": v.skipped,
        "missed": v.missed,
        "failed": v.failed,
        "last_error": (!v.last_error.is_empty()).then(|| v.last_error.clone()),
    })
}
