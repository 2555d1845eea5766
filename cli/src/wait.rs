//! Following a job to its end for `keel submit --wait` and `keel retry --wait`: a
//! progress bar on a terminal, otherwise one line on stderr every few seconds and
//! whenever the task counts change. A coordinator that cannot be reached is waited for
//! (and said so, with how long), up to `--timeout`.

use crate::duration::{coarse, short};
use crate::output::{errln, one_line};
use indicatif::{ProgressBar, ProgressStyle};
use keel_grpc::client::Client;
use keel_grpc::proto::DescribeJobResponse;
use keel_jobs::terminal_safe;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the job is asked for.
const POLL: Duration = Duration::from_millis(250);
/// How often a plain progress line is written when nothing changes.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How following a job ended.
#[derive(Debug)]
pub enum End {
    /// The job finished with this outcome.
    Finished(String),
    /// The coordinator no longer knows the job (forgotten after its retention, or a
    /// coordinator without it).
    Gone(String),
    /// `--timeout` ran out; the job was last seen running.
    TimedOut,
    /// `--timeout` ran out while no coordinator could be reached: the job's state is
    /// unknown. Holds the last error.
    Unreachable(String),
}

/// The job's last view (if any was read) and how following it ended.
pub struct Followed {
    pub view: Option<DescribeJobResponse>,
    pub end: End,
}

/// Where a job stands, for a progress line.
#[derive(Clone, Copy)]
struct Tick {
    job: u64,
    done: u64,
    total: u64,
    waited: Duration,
}

/// Where progress goes: a bar on a terminal, plain lines otherwise.
enum Progress {
    Bar(ProgressBar),
    Plain {
        last: Option<String>,
        written: Instant,
    },
}

impl Progress {
    fn new(tasks: u32) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Plain {
                last: None,
                written: Instant::now(),
            };
        }
        let bar = ProgressBar::new(u64::from(tasks));
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} done  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress::Bar(bar)
    }

    /// Shows `line` (the counts, or why the coordinator is not answering). A plain
    /// line is written when `key` differs from the last one written, or every
    /// [`PLAIN_EVERY`].
    fn show(&mut self, at: Tick, key: &str, line: &str) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(at.done);
                bar.set_message(line.to_string());
            }
            Progress::Plain { last, written } => {
                if last.as_deref() != Some(key) || written.elapsed() >= PLAIN_EVERY {
                    errln!(
                        "job {}: {}/{} done  {line}  (waited {})",
                        at.job,
                        at.done,
                        at.total,
                        coarse(at.waited.as_millis() as u64)
                    );
                    *last = Some(key.to_string());
                    *written = Instant::now();
                }
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Finished tasks, and "state n" pairs for every state present.
pub fn counts(view: &DescribeJobResponse) -> (u64, String) {
    let mut by_state = BTreeMap::<&str, u32>::new();
    for t in &view.tasks {
        *by_state.entry(t.state.as_str()).or_default() += 1;
    }
    let done = ["succeeded", "failed", "skipped", "cancelled"]
        .iter()
        .map(|s| u64::from(by_state.get(s).copied().unwrap_or(0)))
        .sum();
    let text = by_state
        .iter()
        .map(|(state, n)| format!("{} {n}", terminal_safe(state)))
        .collect::<Vec<_>>()
        .join("  ");
    (done, text)
}

/// Polls the job until it ends or `timeout` passes, reconnecting through coordinator
/// restarts and moving to whichever coordinator leads.
pub async fn follow(
    client: &mut Client,
    job: u64,
    tasks: u32,
    timeout: Option<Duration>,
) -> Followed {
    let started = Instant::now();
    let mut progress = Progress::new(tasks);
    let mut view: Option<DescribeJobResponse> = None;
    let mut unreachable: Option<(Instant, String)> = None;
    let end = loop {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        let answer = match left {
            Some(left) => match tokio::time::timeout(left, client.describe_job(job)).await {
                Ok(answer) => answer,
                Err(_) => break timed_out(unreachable),
            },
            None => client.describe_job(job).await,
        };
        let mut at = Tick {
            job,
            done: view.as_ref().map_or(0, |v| counts(v).0),
            total: u64::from(tasks),
            waited: started.elapsed(),
        };
        match answer {
            Ok(now) => {
                unreachable = None;
                let (done, line) = counts(&now);
                at.done = done;
                progress.show(at, &line, &line);
                let outcome = now.status.as_ref().map(|s| s.outcome.clone());
                view = Some(now);
                if let Some(outcome) = outcome.filter(|o| !o.is_empty()) {
                    break End::Finished(outcome);
                }
            }
            Err(e) if e.code() == Some(tonic::Code::NotFound) => {
                break End::Gone(one_line(&e.to_string(), 200));
            }
            Err(e) => {
                let error = one_line(&e.to_string(), 200);
                let since = unreachable.as_ref().map_or_else(Instant::now, |(t, _)| *t);
                let line = format!(
                    "coordinator unreachable for {}: {error}",
                    short(since.elapsed().as_millis() as u64)
                );
                progress.show(at, "unreachable", &line);
                unreachable = Some((since, error));
            }
        }
        if timeout.is_some_and(|t| started.elapsed() + POLL > t) {
            break timed_out(unreachable);
        }
        tokio::time::sleep(POLL).await;
    };
    progress.finish();
    Followed { view, end }
}

fn timed_out(unreachable: Option<(Instant, String)>) -> End {
    match unreachable {
        Some((_, error)) => End::Unreachable(error),
        None => End::TimedOut,
    }
}
