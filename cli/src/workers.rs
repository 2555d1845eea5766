//! `keel workers`: every worker the coordinator knows, with its lanes, capabilities,
//! slots, the tasks it runs, its blacklist state and when it was last heard from.

use crate::clock::{now_ms, stamp};
use crate::connect::{runtime, ConnectArgs};
use crate::duration::coarse;
use crate::exit::{finish, Exit, Failure, EXIT_CODES};
use crate::json;
use crate::output::{one_line, out};
use crate::plan::Format;
use crate::table::table;
use clap::Args;
use keel_engine::ALL_LANES;
use keel_grpc::proto::{LeaseInfo, WorkerInfo};
use serde_json::json;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct WorkersArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format (JSON fields: cli/README.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &WorkersArgs) -> ExitCode {
    finish("workers", runtime().block_on(list(args)))
}

async fn list(args: &WorkersArgs) -> Result<Exit, Failure> {
    let mut client = args.connect.connect().await?;
    let workers = client.list_workers().await?.workers;
    match args.format {
        Format::Text => out!("{}", render(&workers, now_ms())),
        Format::Json => {
            let list: Vec<_> = workers.iter().map(json::worker).collect();
            out!("{}", json::document(&json!({ "workers": list })));
        }
    }
    Ok(Exit::Ok)
}

const MAX_CELL: usize = 60;
/// Running tasks named in the table; the rest are counted.
const SHOWN_LEASES: usize = 3;

fn list_cell(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    one_line(&items.join(","), MAX_CELL)
}

/// `j7/extract`, with the attempt when it is not the first.
fn lease(l: &LeaseInfo) -> String {
    let key = one_line(&l.key, 30);
    match l.attempt {
        0 | 1 => format!("j{}/{key}", l.job),
        n => format!("j{}/{key} (attempt {n})", l.job),
    }
}

fn running(w: &WorkerInfo) -> String {
    let mut shown: Vec<String> = w.leases.iter().take(SHOWN_LEASES).map(lease).collect();
    if w.leases.len() > SHOWN_LEASES {
        shown.push(format!("and {} more", w.leases.len() - SHOWN_LEASES));
    }
    if shown.is_empty() {
        "-".to_string()
    } else {
        shown.join(", ")
    }
}

fn status(w: &WorkerInfo, now: u64) -> String {
    let word = one_line(&w.status, 20);
    match w.blacklisted_until_ms {
        Some(until) if w.status == "blacklisted" => format!("{word} until {}", stamp(until, now)),
        Some(until) => format!("{word} (blacklisted until {})", stamp(until, now)),
        None => word,
    }
}

fn render(workers: &[WorkerInfo], now: u64) -> String {
    let rows: Vec<[String; 8]> = workers
        .iter()
        .map(|w| {
            let lanes = if w.lanes.iter().any(|l| l == ALL_LANES) {
                "all".to_string()
            } else {
                list_cell(&w.lanes, "default")
            };
            [
                one_line(&w.id, MAX_CELL),
                w.instance.to_string(),
                status(w, now),
                lanes,
                list_cell(&w.capabilities, "-"),
                format!("{}/{}", w.leases.len(), w.max_concurrency),
                format!("{} ago", coarse(now.saturating_sub(w.last_seen_ms))),
                running(w),
            ]
        })
        .collect();
    let head = [
        "WORKER",
        "INSTANCE",
        "STATUS",
        "LANES",
        "CAPABILITIES",
        "SLOTS",
        "LAST HEARD",
        "RUNNING",
    ];
    table(head, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_show_lanes_slots_blacklist_and_leases() {
        let lease = |job, key: &str, attempt| LeaseInfo {
            job,
            key: key.into(),
            attempt,
            ..Default::default()
        };
        let workers = [
            WorkerInfo {
                id: "w1".into(),
                instance: 17,
                status: "active".into(),
                lanes: vec![ALL_LANES.into()],
                capabilities: vec!["gpu".into(), "cuda:12".into()],
                max_concurrency: 4,
                last_seen_ms: 9_000,
                leases: vec![
                    lease(7, "extract", 1),
                    lease(7, "load", 2),
                    lease(8, "a", 1),
                    lease(8, "b", 1),
                ],
                ..Default::default()
            },
            WorkerInfo {
                id: "w\u{202e}2".into(),
                instance: 3,
                status: "blacklisted".into(),
                lanes: vec!["batch".into(), "default".into()],
                max_concurrency: 1,
                blacklisted_until_ms: Some(u64::MAX),
                last_seen_ms: 1_000,
                ..Default::default()
            },
        ];
        let text = render(&workers, 10_000);
        let cells = |line: &str| -> Vec<String> {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        };
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            cells(lines[0]),
            [
                "WORKER",
                "INSTANCE",
                "STATUS",
                "LANES",
                "CAPABILITIES",
                "SLOTS",
                "LAST HEARD",
                "RUNNING"
            ]
        );
        assert_eq!(
            cells(lines[1]),
            [
                "w1",
                "17",
                "active",
                "all",
                "gpu,cuda:12",
                "4/4",
                "1s ago",
                "j7/extract, j7/load (attempt 2), j8/a, and 1 more"
            ]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "w\\u{202e}2",
                "3",
                "blacklisted until forever",
                "batch,default",
                "-",
                "0/1",
                "9s ago",
                "-"
            ]
        );
    }
}
