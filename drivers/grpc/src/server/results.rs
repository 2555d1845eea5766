//! Reading outputs: one task's output in pages, and a job's result (its result tasks'
//! outputs) in one message as far as they fit. Both are reads of the engine's state;
//! the bytes are only ever the winning attempt's.

use crate::convert::job_status_to_proto;
use crate::proto::{GetJobResultResponse, GetTaskOutputRequest, TaskOutput};
use crate::status::rejection_status;
use crate::validate::invalid;
use keel_engine::{Engine, JobId, JobResult, TaskId};
use tonic::Status;

/// A page of `output` from `offset`, at most `max` bytes (0: `room`, and never more
/// than `room`).
fn page(out: &keel_engine::TaskOutput, offset: u64, max: u64, room: u64) -> TaskOutput {
    let bytes: &[u8] = out.output.as_ref().map_or(&[], |p| &p.0);
    let size = bytes.len() as u64;
    let take = if max == 0 { room } else { max.min(room) };
    let start = offset.min(size);
    let end = start.saturating_add(take).min(size);
    TaskOutput {
        task: out.task.get(),
        key: out.key.clone(),
        state: out.status.label().to_string(),
        has_output: out.output.is_some(),
        size,
        offset: start,
        data: bytes[start as usize..end as usize].to_vec(),
        complete: end == size,
    }
}

/// The task a request names by key or by id (`task`), checked to belong to `job`.
pub(crate) fn named_task(e: &Engine, job: u64, key: &str, task: u64) -> Result<TaskId, Status> {
    let (number, job) = (job, JobId::new(job));
    match (key.is_empty(), task) {
        (false, 0) => e
            .task_by_key(job, key)
            .map_err(|x| rejection_status(&x))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "unknown_task: job {number} has no task with key {key:?}"
                ))
            }),
        (true, 0) => Err(invalid("key", "or task is required")),
        (true, _) => {
            let owner = e
                .describe_task(TaskId::new(task))
                .map_err(|x| rejection_status(&x))?
                .job;
            if owner != job {
                return Err(Status::not_found(format!(
                    "unknown_task: task {task} is not in job {number}"
                )));
            }
            Ok(TaskId::new(task))
        }
        (false, _) => Err(invalid("task", "and key are exclusive; give one")),
    }
}

/// The page of a task's output a request asks for; `room` is what fits a message.
pub(crate) fn task_output(
    e: &Engine,
    r: &GetTaskOutputRequest,
    room: u64,
) -> Result<TaskOutput, Status> {
    let task = named_task(e, r.job, &r.key, r.task)?;
    let out = e.task_output(task).map_err(|x| rejection_status(&x))?;
    let size = out.output.as_ref().map_or(0, |p| p.len() as u64);
    if r.offset > size {
        return Err(invalid(
            "offset",
            &format!("{} is past the output's end ({size} bytes)", r.offset),
        ));
    }
    Ok(page(&out, r.offset, r.max_bytes, room))
}

/// A job's result: each result task's output whole while the total fits `room`; an
/// output that would not fit comes without data and `complete` unset.
pub(crate) fn job_result(result: &JobResult, room: u64) -> GetJobResultResponse {
    let mut left = room;
    let tasks = result
        .tasks
        .iter()
        .map(|t| {
            let size = t.output.as_ref().map_or(0, |p| p.len() as u64);
            if size <= left {
                left -= size;
                page(t, 0, 0, size.max(1))
            } else {
                page(t, 0, 0, 0)
            }
        })
        .collect();
    GetJobResultResponse {
        status: Some(job_status_to_proto(&result.status)),
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{Payload, TaskOutcome, TaskStatus};

    fn output(key: &str, data: Option<&[u8]>) -> keel_engine::TaskOutput {
        keel_engine::TaskOutput {
            job: JobId::new(1),
            task: TaskId::new(1),
            key: key.into(),
            status: TaskStatus::Done(TaskOutcome::Succeeded),
            output: data.map(|d| Payload::from(d.to_vec())),
        }
    }

    #[test]
    fn pages_cover_the_output_exactly() {
        let out = output("a", Some(b"0123456789"));
        let first = page(&out, 0, 4, 100);
        assert_eq!(
            (&first.data[..], first.complete, first.size),
            (&b"0123"[..], false, 10)
        );
        let last = page(&out, 8, 0, 100);
        assert_eq!(
            (&last.data[..], last.offset, last.complete),
            (&b"89"[..], 8, true)
        );
        let capped = page(&out, 0, 0, 3);
        assert_eq!((&capped.data[..], capped.complete), (&b"012"[..], false));
        let end = page(&out, 10, 5, 100);
        assert!(end.data.is_empty() && end.complete);
        let none = page(&output("b", None), 0, 0, 100);
        assert!(!none.has_output && none.complete && none.size == 0);
    }
}
