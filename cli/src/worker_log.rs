//! What `keel worker` says on stderr: its lanes and capabilities when it starts, and one
//! line when each task attempt starts and one when it ends (how, and after how long),
//! as text or as one JSON object per line (`--log-format json`).

use crate::clock::{now_ms, rfc3339};
use crate::duration::short;
use crate::output::{errln, one_line};
use clap::ValueEnum;
use keel_engine::ALL_LANES;
use keel_grpc::worker::{Outcome, Summary, Task};
use keel_jobs::terminal_safe;
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Longest error shown on a text line; JSON lines carry it whole.
const MAX_ERROR: usize = 200;

fn emit(format: LogFormat, text: &str, mut fields: Value) {
    let time = rfc3339(now_ms());
    match format {
        LogFormat::Text => errln!("{time} {text}"),
        LogFormat::Json => {
            fields["time"] = json!(time);
            errln!("{}", crate::json::document_line(&fields));
        }
    }
}

/// The worker's first line: who it is and what it serves.
pub fn started(format: LogFormat, id: &str, lanes: &[String], caps: &[String], concurrency: u32) {
    let all = lanes.iter().any(|l| l == ALL_LANES);
    let lane_text = match (all, lanes.is_empty()) {
        (true, _) => "all lanes".to_string(),
        (false, true) => "lane default".to_string(),
        (false, false) => format!("lanes {}", lanes.join(",")),
    };
    let cap_text = if caps.is_empty() {
        "no capabilities".to_string()
    } else {
        format!("capabilities {}", caps.join(","))
    };
    let text = format!(
        "worker {} serving {lane_text}, {cap_text}, concurrency {concurrency}",
        one_line(id, 100),
        lane_text = one_line(&lane_text, 300),
        cap_text = one_line(&cap_text, 600),
    );
    let lanes: Vec<&str> = if lanes.is_empty() {
        vec!["default"]
    } else {
        lanes.iter().map(String::as_str).collect()
    };
    let fields = json!({
        "event": "worker_started",
        "worker": id,
        "lanes": lanes,
        "all_lanes": all,
        "capabilities": caps,
        "concurrency": concurrency,
    });
    emit(format, &text, fields);
}

/// The worker's last line: what it did, as `keel worker: 3 completed, 1 failed, 0
/// revoked`.
pub fn stopped(format: LogFormat, summary: &Summary) {
    let text = format!(
        "keel worker: {} completed, {} failed, {} revoked",
        summary.completed, summary.failed, summary.revoked
    );
    match format {
        LogFormat::Text => errln!("{text}"),
        LogFormat::Json => {
            let fields = json!({
                "event": "worker_stopped",
                "completed": summary.completed,
                "failed": summary.failed,
                "revoked": summary.revoked,
            });
            emit(format, &text, fields);
        }
    }
}

/// Why the worker stopped on an error.
pub fn failed(format: LogFormat, error: &str) {
    match format {
        LogFormat::Text => errln!("keel worker: {}", terminal_safe(error)),
        LogFormat::Json => emit(
            format,
            error,
            json!({ "event": "worker_failed", "error": error }),
        ),
    }
}

/// One task attempt's log: a line now, and one when it ends. Dropped without
/// [`TaskLog::ended`], it logs the attempt as revoked: its future was dropped because
/// the coordinator revoked the lease (a cancelled job, a timeout, a lost lease) or the
/// worker stopped.
pub struct TaskLog {
    format: LogFormat,
    job: u64,
    key: String,
    task: u64,
    attempt: u32,
    started: Instant,
    done: bool,
}

impl TaskLog {
    pub fn start(format: LogFormat, task: &Task) -> TaskLog {
        let log = TaskLog {
            format,
            job: task.job.get(),
            key: task.key.clone(),
            task: task.task.get(),
            attempt: task.attempt,
            started: Instant::now(),
            done: false,
        };
        let text = format!("{} started", log.name());
        emit(format, &text, log.fields("task_started"));
        log
    }

    fn name(&self) -> String {
        format!(
            "task j{}/{} (t{}) attempt {}",
            self.job,
            terminal_safe(&self.key),
            self.task,
            self.attempt
        )
    }

    fn fields(&self, event: &str) -> Value {
        json!({
            "event": event,
            "job": self.job,
            "key": self.key,
            "task": self.task,
            "attempt": self.attempt,
        })
    }

    fn finish(&mut self, outcome: &str, error: Option<&str>, permanent: Option<bool>) {
        self.done = true;
        let took = self.started.elapsed().as_millis() as u64;
        let word = match permanent {
            Some(true) => "failed permanently",
            _ => outcome,
        };
        let mut text = format!("{} {word} after {}", self.name(), short(took));
        if let Some(error) = error {
            text.push_str(&format!(": {}", one_line(error, MAX_ERROR)));
        }
        let mut fields = self.fields("task_finished");
        fields["outcome"] = json!(outcome);
        fields["duration_ms"] = json!(took);
        fields["error"] = json!(error);
        fields["permanent"] = json!(permanent);
        emit(self.format, &text, fields);
    }

    /// Logs how the attempt ended: succeeded, failed (with the error) or suspended.
    pub fn ended(mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Complete(_) => self.finish("succeeded", None, None),
            Outcome::Fail { error, permanent } => {
                self.finish("failed", Some(error), Some(*permanent))
            }
            Outcome::Suspend { waitpoint, .. } => {
                self.finish("suspended", Some(&format!("waiting for {waitpoint}")), None)
            }
        }
    }
}

impl Drop for TaskLog {
    fn drop(&mut self) {
        if !self.done {
            self.finish("revoked", None, None);
        }
    }
}
