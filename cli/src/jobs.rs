//! `keel jobs`: the jobs a coordinator knows (live, and finished ones until their
//! retention ends), newest first, filtered by state, tenant and lane.

use crate::clock::now_ms;
use crate::connect::{runtime, ConnectArgs};
use crate::duration::coarse;
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::json;
use crate::output::{errln, one_line, out};
use crate::plan::Format;
use crate::table::table;
use clap::builder::PossibleValuesParser;
use clap::Args;
use keel_grpc::proto::{JobStatus, ListJobsRequest, ListJobsResponse, TaskStateCount};
use serde_json::json;
use std::process::ExitCode;

/// The states `--state` accepts: a job's outcome, or running / finished.
const STATES: [&str; 6] = [
    "running",
    "finished",
    "succeeded",
    "failed",
    "cancelled",
    "deadline_exceeded",
];

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct JobsArgs {
    /// Only jobs in this state.
    #[arg(long, value_name = "S", value_parser = PossibleValuesParser::new(STATES))]
    pub state: Option<String>,
    /// Only jobs of this tenant.
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
    /// Only jobs in this lane.
    #[arg(long, value_name = "L")]
    pub lane: Option<String>,
    /// At most this many jobs, the newest; 0 lists all.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format (JSON fields: cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &JobsArgs) -> ExitCode {
    finish("jobs", runtime().block_on(list(args)))
}

async fn list(args: &JobsArgs) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let request = ListJobsRequest {
        state: args.state.clone(),
        tenant: args.tenant.clone(),
        lane: args.lane.clone(),
        limit: Some(args.limit),
        task_states: true,
    };
    let listed = client.list_jobs_where(request).await?;
    match args.format {
        Format::Text => {
            out!("{}", render(&listed, now_ms()));
            let shown = listed.jobs.len() as u64;
            if u64::from(listed.matched) > shown {
                errln!(
                    "keel jobs: the newest {shown} of {} jobs; --limit 0 lists all",
                    listed.matched
                );
            }
        }
        Format::Json => out!("{}", json::document(&document(&listed))),
    }
    Ok(Exit::Ok)
}

/// `{"jobs": [...], "matched": N}`, newest first.
fn document(listed: &ListJobsResponse) -> serde_json::Value {
    let jobs: Vec<_> = listed
        .jobs
        .iter()
        .rev()
        .map(|j| json::job(j, &j.task_states))
        .collect();
    json!({ "jobs": jobs, "matched": listed.matched })
}

/// "2 succeeded, 1 running", states in the order a task goes through them.
fn counts(states: &[TaskStateCount]) -> String {
    const ORDER: [&str; 14] = [
        "succeeded",
        "failed",
        "cancelled",
        "skipped",
        "running",
        "offered",
        "queued",
        "rate_limited",
        "blocked",
        "parked",
        "budget_stopped",
        "delayed",
        "suspended",
        "waiting",
    ];
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len());
    let mut sorted: Vec<&TaskStateCount> = states.iter().collect();
    sorted.sort_by_key(|c| rank(&c.state));
    sorted
        .iter()
        .map(|c| format!("{} {}", c.count, one_line(&c.state, 20)))
        .collect::<Vec<_>>()
        .join(", ")
}

const MAX_NAME: usize = 40;

fn render(listed: &ListJobsResponse, now: u64) -> String {
    let rows: Vec<[String; 7]> = listed
        .jobs
        .iter()
        .rev()
        .map(|j: &JobStatus| {
            [
                j.id.to_string(),
                one_line(&j.name, MAX_NAME),
                one_line(&j.tenant, MAX_NAME),
                one_line(&j.lane, MAX_NAME),
                one_line(json::state_word(j), MAX_NAME),
                counts(&j.task_states),
                coarse(now.saturating_sub(j.submitted_at_ms)),
            ]
        })
        .collect();
    let mut out = table(
        ["ID", "NAME", "TENANT", "LANE", "STATE", "TASKS", "AGE"],
        &rows,
    );
    for j in listed.jobs.iter().rev() {
        for note in &j.budget_notes {
            out.push_str(&format!("job {}: {}\n", j.id, one_line(note, 200)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, name: &str, outcome: &str, states: &[(&str, u32)]) -> JobStatus {
        JobStatus {
            id,
            name: name.into(),
            tenant: "default".into(),
            lane: "batch".into(),
            outcome: outcome.into(),
            submitted_at_ms: 1_000,
            task_states: states
                .iter()
                .map(|(s, n)| TaskStateCount {
                    state: s.to_string(),
                    count: *n,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_table_lists_newest_first_with_counts_and_age() {
        let listed = ListJobsResponse {
            jobs: vec![
                job(
                    1,
                    "etl",
                    "failed",
                    &[("skipped", 1), ("succeeded", 2), ("failed", 1)],
                ),
                job(2, "x\u{1b}[2J", "", &[("waiting", 3), ("running", 1)]),
            ],
            matched: 2,
        };
        let text = render(&listed, 181_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID  NAME      TENANT   LANE   STATE    TASKS                             AGE"
        );
        assert_eq!(
            lines[1],
            "2   x\\x1b[2J  default  batch  running  1 running, 3 waiting              3m"
        );
        assert_eq!(
            lines[2],
            "1   etl       default  batch  failed   2 succeeded, 1 failed, 1 skipped  3m"
        );
    }

    #[test]
    fn the_document_is_newest_first() {
        let listed = ListJobsResponse {
            jobs: vec![job(1, "a", "succeeded", &[]), job(2, "b", "", &[])],
            matched: 5,
        };
        let v = document(&listed);
        assert_eq!(v["jobs"][0]["id"], 2);
        assert_eq!(v["jobs"][1]["state"], "succeeded");
        assert_eq!(v["matched"], 5);
    }
}
