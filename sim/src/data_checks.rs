//! Data checks: every grant's inputs are the committed outputs of its task's upstream
//! tasks, by key and in its group's order. An upstream task whose completion was
//! accepted must be present with exactly that completion's output; one that has not
//! succeeded must be absent; and no output of an attempt other than the committed one
//! may be handed on. Simulated outputs name the fence that made them
//! (`work::output_of`), so a check can tell whose data it sees.
//!
//! Signals too: a grant carries a signal only if it is the one the client sends that
//! task (`work::signal_for`), and once a signal resumed the task, every later grant of
//! it carries that signal, until a suspension times out into a resume without one.

use crate::work::{fence_of_output, signal_for};
use keel_engine::{Fence, JobSpec, TaskId, TaskInput};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(crate) struct DataChecker {
    /// Per task: its upstream tasks by key, in its group's order.
    upstream: BTreeMap<TaskId, Vec<(String, TaskId)>>,
    /// Per task: the fence whose completion was accepted, or that a grant's input
    /// showed first (a completion applied just before a crash is durable, and its
    /// reply never released).
    committed: BTreeMap<TaskId, Fence>,
    /// Tasks a signal resumed (seen accepted, or carried by a grant).
    signalled: BTreeSet<TaskId>,
}

impl DataChecker {
    /// A job was admitted with tasks numbered from `first` in spec order.
    pub(crate) fn submitted(&mut self, first: TaskId, spec: &JobSpec) {
        let index: BTreeMap<&str, u64> = spec
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.as_str(), i as u64))
            .collect();
        for (i, t) in spec.tasks.iter().enumerate() {
            let Some(group) = &t.deps else { continue };
            let ups = group
                .upstream
                .iter()
                .filter_map(|k| {
                    index
                        .get(k.as_str())
                        .map(|&u| (k.clone(), TaskId::nth_after(first, u)))
                })
                .collect();
            self.upstream
                .insert(TaskId::nth_after(first, i as u64), ups);
        }
    }

    /// A completion under `fence` was accepted (not as a duplicate) with `output`.
    pub(crate) fn completed(&mut self, fence: Fence, output: &[u8]) -> Option<String> {
        if fence_of_output(output) != Some(fence) {
            return Some(format!(
                "the completion of {fence} carried {:?}, not its own output",
                abbreviate(output)
            ));
        }
        match self.committed.insert(fence.task, fence) {
            Some(seen) if seen != fence => Some(format!(
                "{} committed {fence}, but a grant had already carried the output of {seen}",
                fence.task
            )),
            _ => None,
        }
    }

    /// `task` was offered with `inputs`.
    pub(crate) fn offered(&mut self, task: TaskId, inputs: &[TaskInput]) -> Option<String> {
        let expected = self.upstream.get(&task).cloned().unwrap_or_default();
        let keys: Vec<&str> = inputs.iter().map(|i| i.key.as_str()).collect();
        let wanted: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        if keys != wanted {
            return Some(format!(
                "the grant of {task} carries inputs {keys:?}, its upstream tasks are {wanted:?}"
            ));
        }
        for (input, (key, up)) in inputs.iter().zip(&expected) {
            if let Some(detail) = self.input(task, key, *up, input) {
                return Some(detail);
            }
        }
        None
    }

    /// `task` was resumed: by a signal, or by its suspension timing out.
    pub(crate) fn resumed(&mut self, task: TaskId, by_signal: bool) {
        if by_signal {
            self.signalled.insert(task);
        } else {
            self.signalled.remove(&task);
        }
    }

    /// `task` was offered carrying `signal`.
    pub(crate) fn offered_signal(&mut self, task: TaskId, signal: Option<&[u8]>) -> Option<String> {
        match signal {
            Some(bytes) if bytes != signal_for(task).as_slice() => Some(format!(
                "the grant of {task} carries signal {:?}, which was not sent to it",
                abbreviate(bytes)
            )),
            Some(_) => {
                // Its acceptance may have been durable without its reply released.
                self.signalled.insert(task);
                None
            }
            None if self.signalled.contains(&task) => Some(format!(
                "the grant of {task} carries no signal, but a signal resumed it"
            )),
            None => None,
        }
    }

    fn input(&mut self, task: TaskId, key: &str, up: TaskId, input: &TaskInput) -> Option<String> {
        let committed = self.committed.get(&up).copied();
        let Some(output) = &input.output else {
            return committed.map(|c| {
                format!("the grant of {task} carries input {key:?} ({up}) as absent, but {c} committed it")
            });
        };
        let Some(made_by) = fence_of_output(output.as_bytes()).filter(|f| f.task == up) else {
            return Some(format!(
                "the grant of {task} carries input {key:?} = {:?}, which is not an output of {up}",
                abbreviate(output.as_bytes())
            ));
        };
        match committed {
            Some(c) if c != made_by => Some(format!(
                "the grant of {task} carries input {key:?} made by {made_by}, but {c} is the committed attempt"
            )),
            Some(_) => None,
            None => {
                self.committed.insert(up, made_by);
                None
            }
        }
    }
}

/// At most 24 characters of an output, for messages and traces.
pub(crate) fn abbreviate(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().count() <= 24 => text.to_string(),
        Ok(text) => format!("{}…", text.chars().take(23).collect::<String>()),
        Err(_) => format!("<{} bytes>", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::output_of;
    use keel_engine::{GroupKind, Payload, TaskSpec};

    fn fence(task: u64, attempt: u32, epoch: u64) -> Fence {
        Fence {
            task: TaskId::new(task),
            attempt,
            epoch,
        }
    }

    fn input(key: &str, output: Option<Fence>) -> TaskInput {
        TaskInput {
            key: key.into(),
            output: output.map(|f| Payload::from(output_of(f))),
        }
    }

    fn checker() -> DataChecker {
        let mut c = DataChecker::default();
        let spec = JobSpec::new(
            "j",
            vec![
                TaskSpec::new("a"),
                TaskSpec::new("b"),
                TaskSpec::new("c").after(GroupKind::AnyOf, &["b", "a"]),
            ],
        );
        c.submitted(TaskId::new(1), &spec);
        c
    }

    #[test]
    fn inputs_must_be_the_committed_outputs_of_the_upstream_tasks() {
        let mut c = checker();
        let winner = fence(1, 2, 2);
        assert_eq!(c.completed(winner, &output_of(winner)), None);
        let good = [input("b", None), input("a", Some(winner))];
        assert_eq!(c.offered(TaskId::new(3), &good), None);
        // A zombie's output, a lost one, another task's, and the wrong keys.
        let zombie = [input("b", None), input("a", Some(fence(1, 1, 1)))];
        assert!(c
            .offered(TaskId::new(3), &zombie)
            .unwrap()
            .contains("committed attempt"));
        let lost = [input("b", None), input("a", None)];
        assert!(c
            .offered(TaskId::new(3), &lost)
            .unwrap()
            .contains("as absent"));
        let theirs = [input("b", None), input("a", Some(fence(2, 1, 1)))];
        assert!(c
            .offered(TaskId::new(3), &theirs)
            .unwrap()
            .contains("not an output of t1"));
        let order = [input("a", Some(winner)), input("b", None)];
        assert!(c
            .offered(TaskId::new(3), &order)
            .unwrap()
            .contains("upstream tasks are"));
        assert!(
            c.offered(TaskId::new(1), &[]).is_none(),
            "a root has no inputs"
        );
    }

    #[test]
    fn an_output_seen_before_its_commit_must_agree_with_it() {
        let mut c = checker();
        let seen = fence(2, 1, 1);
        assert_eq!(
            c.offered(TaskId::new(3), &[input("b", Some(seen)), input("a", None)]),
            None
        );
        assert_eq!(c.completed(seen, &output_of(seen)), None);
        let other = fence(2, 2, 2);
        assert!(c.completed(other, &output_of(other)).is_some());
        assert!(c.completed(fence(1, 1, 1), b"ok").is_some());
        assert_eq!(abbreviate(&[0xff]), "<1 bytes>");
        assert_eq!(abbreviate(&[b'x'; 30]).chars().count(), 24);
    }

    #[test]
    fn a_grant_carries_the_signal_sent_to_its_task_once_one_resumed_it() {
        let mut c = DataChecker::default();
        let (t, other) = (TaskId::new(3), TaskId::new(4));
        assert_eq!(c.offered_signal(t, None), None, "never signalled");
        let theirs = c.offered_signal(t, Some(&signal_for(other))).unwrap();
        assert!(theirs.contains("was not sent to it"), "{theirs}");
        c.resumed(t, true);
        let missing = c.offered_signal(t, None).unwrap();
        assert!(missing.contains("carries no signal"), "{missing}");
        assert_eq!(c.offered_signal(t, Some(&signal_for(t))), None);
        c.resumed(t, false);
        assert_eq!(c.offered_signal(t, None), None, "resumed by its timeout");
        // A grant that carries the signal shows it resumed the task, reply or not.
        assert_eq!(c.offered_signal(other, Some(&signal_for(other))), None);
        assert!(c.offered_signal(other, None).is_some());
    }
}
