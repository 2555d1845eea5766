//! `--format json` documents. Their field names are an interface (cli/README.md lists
//! them): fields are added, never renamed or removed. Times come twice: `<name>` as
//! RFC 3339 in the local zone (`"forever"` for a saturated time, `null` when unset) and
//! `<name>_ms` as the coordinator's milliseconds since the Unix epoch.

use crate::clock::rfc3339;
use keel_grpc::proto::{
    AttemptView, DescribeJobResponse, JobStatus, TaskStateCount, TaskView, WorkerInfo,
};
use serde_json::{json, Map, Value};

fn time(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

/// The job's state word: its outcome, or "running".
pub fn state_word(status: &JobStatus) -> &str {
    if status.outcome.is_empty() {
        "running"
    } else {
        &status.outcome
    }
}

fn counts(states: &[TaskStateCount]) -> Value {
    let map: Map<String, Value> = states
        .iter()
        .map(|c| (c.state.clone(), json!(c.count)))
        .collect();
    Value::Object(map)
}

/// One job's summary; `task_states` counts its tasks by state.
pub fn job(s: &JobStatus, task_states: &[TaskStateCount]) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "tenant": s.tenant,
        "lane": s.lane,
        "state": state_word(s),
        "tasks": s.tasks,
        "remaining": s.remaining,
        "task_states": counts(task_states),
        "submitted_at": time(Some(s.submitted_at_ms)),
        "submitted_at_ms": s.submitted_at_ms,
        "finished_at": time(s.finished_at_ms),
        "finished_at_ms": s.finished_at_ms,
        "retry_of": keel_engine::retried_from(&s.name).map(|j| j.get()),
        "budget_notes": s.budget_notes,
    })
}

fn attempt(a: &AttemptView) -> Value {
    json!({
        "attempt": a.attempt,
        "epoch": a.epoch,
        "worker": a.worker,
        "started_at": time(Some(a.started_at_ms)),
        "started_at_ms": a.started_at_ms,
        "ended_at": time(a.ended_at_ms),
        "ended_at_ms": a.ended_at_ms,
        "duration_ms": a.ended_at_ms.map(|e| e.saturating_sub(a.started_at_ms)),
        "end": (!a.end.is_empty()).then_some(&a.end),
    })
}

/// The budget holding a task back: whose (`job` id or `tenant` name), which, and the
/// dimension whose hard limit was reached.
fn budget_stop(b: &keel_grpc::proto::BudgetStop) -> Value {
    let owner = b.owner.as_ref().and_then(keel_grpc::owner_from_proto);
    let (job, tenant) = match owner {
        Some(keel_engine::BudgetOwner::Job(j)) => (Some(j.get()), None),
        Some(keel_engine::BudgetOwner::Tenant(t)) => (None, Some(t)),
        None => (None, None),
    };
    json!({ "job": job, "tenant": tenant, "budget": b.budget, "dimension": b.dimension })
}

/// One task; `explanation` says why it waits, when it does.
pub fn task(t: &TaskView, explanation: Option<&str>) -> Value {
    let progress = t
        .progress_per_mille
        .map(|p| json!({ "per_mille": p, "message": t.progress_message }));
    json!({
        "key": t.key,
        "id": t.id,
        "state": t.state,
        "detail": t.detail,
        "explanation": explanation,
        "capabilities": t.capabilities,
        "attempt": t.attempt,
        "epoch": t.epoch,
        "failures": t.failures,
        "losses": t.losses,
        "worker": (!t.worker.is_empty()).then_some(&t.worker),
        "until": time(t.until_ms),
        "until_ms": t.until_ms,
        "waitpoint": (!t.waitpoint.is_empty()).then_some(&t.waitpoint),
        "budget_stop": t.budget_stop.as_ref().map(budget_stop),
        "progress": progress,
        "attempts": t.attempts.iter().map(attempt).collect::<Vec<_>>(),
    })
}

/// Task counts by state, from the tasks themselves.
pub fn task_states(view: &DescribeJobResponse) -> Vec<TaskStateCount> {
    let mut by_state = std::collections::BTreeMap::<&str, u32>::new();
    for t in &view.tasks {
        *by_state.entry(&t.state).or_default() += 1;
    }
    by_state
        .into_iter()
        .map(|(state, count)| TaskStateCount {
            state: state.to_string(),
            count,
        })
        .collect()
}

/// `keel status`: `{"job": {...}, "tasks": [...]}`, each task with its explanation.
pub fn status(view: &DescribeJobResponse, explanations: &[Option<String>]) -> Value {
    let tasks: Vec<Value> = view
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| task(t, explanations.get(i).and_then(|e| e.as_deref())))
        .collect();
    json!({
        "job": view.status.as_ref().map(|s| job(s, &task_states(view))),
        "tasks": tasks,
    })
}

/// One worker, with the tasks it runs.
pub fn worker(w: &WorkerInfo) -> Value {
    let leases: Vec<Value> = w
        .leases
        .iter()
        .map(|l| {
            json!({
                "job": l.job,
                "task": l.task,
                "key": l.key,
                "attempt": l.attempt,
                "started_at": time(Some(l.started_at_ms)),
                "started_at_ms": l.started_at_ms,
            })
        })
        .collect();
    json!({
        "id": w.id,
        "instance": w.instance,
        "status": w.status,
        "lanes": w.lanes,
        "all_lanes": w.lanes.iter().any(|l| l == keel_engine::ALL_LANES),
        "capabilities": w.capabilities,
        "max_concurrency": w.max_concurrency,
        "running": w.leases.len(),
        "grants": w.grants,
        "credits": w.credits,
        "blacklisted_until": time(w.blacklisted_until_ms),
        "blacklisted_until_ms": w.blacklisted_until_ms,
        "last_seen": time(Some(w.last_seen_ms)),
        "last_seen_ms": w.last_seen_ms,
        "leases": leases,
    })
}

/// A document as indented JSON, ending with a newline. Every character outside ASCII
/// is written as a `\u` escape: the values are unchanged for a JSON reader, and a
/// name holding bidirectional-text controls cannot rearrange a terminal showing it
/// (serde_json already escapes control characters).
pub fn document(value: &Value) -> String {
    ascii(&serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string()))
}

/// [`document`] on one line (for logs), without the newline.
pub fn document_line(value: &Value) -> String {
    let mut text = ascii(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_string()));
    text.pop();
    text
}

fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_ascii_and_read_back_unchanged() {
        let hostile = "x\u{1b}[2J\u{202e}gpj.exe é 🦀";
        let doc = document(&json!({ "name": hostile }));
        assert!(doc.is_ascii(), "{doc}");
        let back: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(back["name"], hostile);
    }

    #[test]
    fn a_job_names_its_retry_source_and_times_twice() {
        let s = JobStatus {
            id: 9,
            name: "etl [retry of job 7]".into(),
            submitted_at_ms: 1_000,
            finished_at_ms: Some(u64::MAX),
            outcome: "failed".into(),
            ..Default::default()
        };
        let v = job(
            &s,
            &[TaskStateCount {
                state: "failed".into(),
                count: 2,
            }],
        );
        assert_eq!(v["retry_of"], 7);
        assert_eq!(v["state"], "failed");
        assert_eq!(v["finished_at"], "forever");
        assert_eq!(v["finished_at_ms"], u64::MAX);
        assert_eq!(v["task_states"]["failed"], 2);
        let plain = job(&JobStatus::default(), &[]);
        assert_eq!(plain["state"], "running");
        assert!(plain["retry_of"].is_null() && plain["finished_at"].is_null());
    }
}
