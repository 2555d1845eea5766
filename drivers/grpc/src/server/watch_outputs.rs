//! Outputs on a job's watch stream, for watchers that ask (`include_outputs`): a
//! succeeded task's `task_finished` event carries its output when it is at most the
//! server's per-event cap, and only its size otherwise, so one event never grows past
//! the cap however large outputs are; the whole output stays readable with
//! `GetTaskOutput`.

use crate::proto::JobEvent;
use keel_coordinator::Handle;
use keel_engine::{TaskId, TaskOutput};

/// Where a watch reads outputs from, and how many bytes an event may carry.
#[derive(Clone)]
pub(crate) struct WatchOutputs {
    pub handle: Handle,
    pub cap: usize,
}

impl WatchOutputs {
    /// Adds the finished task's output to `event` when it is a success. A read that
    /// fails (leadership lost, the job forgotten) leaves the event as it was: the
    /// output stays readable elsewhere, and the event itself is not lost.
    pub(super) async fn attach(&self, event: &mut JobEvent) {
        if event.kind != "task_finished" || event.detail != "succeeded" {
            return;
        }
        let task = TaskId::new(event.task);
        if let Ok(Ok(out)) = self.handle.read(move |e| e.task_output(task)).await {
            fill(event, &out, self.cap);
        }
    }
}

/// Sets the output fields of `event` from `out`, within `cap` bytes.
fn fill(event: &mut JobEvent, out: &TaskOutput, cap: usize) {
    let Some(output) = &out.output else {
        return;
    };
    event.output_size = output.len() as u64;
    if output.len() <= cap {
        event.output = output.as_bytes().to_vec();
    } else {
        event.output_omitted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{JobId, Payload, TaskStatus};

    fn output(bytes: Option<&str>) -> TaskOutput {
        TaskOutput {
            job: JobId::new(1),
            task: TaskId::new(2),
            key: "a".into(),
            status: TaskStatus::Waiting,
            output: bytes.map(Payload::from),
        }
    }

    #[test]
    fn an_output_within_the_cap_is_carried_and_a_larger_one_only_sized() {
        let mut event = JobEvent::default();
        fill(&mut event, &output(Some("four")), 4);
        assert_eq!(
            (
                event.output.as_slice(),
                event.output_size,
                event.output_omitted
            ),
            (&b"four"[..], 4, false)
        );
        let mut event = JobEvent::default();
        fill(&mut event, &output(Some("fives")), 4);
        assert_eq!(
            (
                event.output.as_slice(),
                event.output_size,
                event.output_omitted
            ),
            (&b""[..], 5, true)
        );
        let mut event = JobEvent::default();
        fill(&mut event, &output(None), 4);
        assert_eq!(event, JobEvent::default());
    }
}
