//! What readers see of task outputs. Simulated workers complete with an output that
//! names their attempt (`work::output_of`), so a check can tell whose data it reads. The
//! history gives each task's committed output (that of its accepted completion, as
//! released); the engine is then read as a client would read it:
//! - `job_result`: a finished job's result is the committed outputs of its result
//!   tasks (those the spec names, else its sinks: tasks neither depended on nor
//!   streamed from), in task order;
//! - `uncommitted_output`: no task's readable output is one no accepted completion
//!   committed (a zombie's, a losing duplicate's, a revoked lease's).
//!
//! Its tasks' output streams are read with it ([`StreamChecks`]).
//!
//! A job is read once its end is released, when all its completions have been, and
//! again when the run ends: a refused completion applied later must not change it.

use crate::check::{Check, CheckFailure};
use crate::durable::failure;
use crate::stream_checks::StreamChecks;
use keel_engine::{Engine, JobId, JobSpec, Payload, TaskId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// An admitted job's tasks, as ids.
struct JobTasks {
    tasks: Vec<TaskId>,
    /// The tasks whose outputs are its result, ascending.
    result: Vec<TaskId>,
}

#[derive(Default)]
pub(crate) struct ResultChecks {
    jobs: BTreeMap<JobId, JobTasks>,
    /// The output of each task's accepted completion.
    committed: BTreeMap<TaskId, Payload>,
    /// Jobs whose end was released, to read when the run ends.
    finished: BTreeSet<JobId>,
    /// Jobs whose end was released since the engine was last read.
    to_read: Vec<JobId>,
    /// What the tasks' output streams must hold.
    pub streams: StreamChecks,
}

impl ResultChecks {
    /// Job `job` was admitted from `spec`, its tasks numbered from `first`.
    pub(crate) fn admitted(&mut self, job: JobId, first: TaskId, spec: &JobSpec) {
        let id = |i: usize| TaskId::nth_after(first, i as u64);
        let tasks: Vec<TaskId> = (0..spec.tasks.len()).map(id).collect();
        let result = if spec.result.is_empty() {
            // Neither depended on nor streamed from.
            let finish = spec.tasks.iter().filter_map(|t| t.deps.as_ref());
            let streamed = spec.tasks.iter().flat_map(|t| &t.stream_from);
            let upstream: BTreeSet<&str> = finish
                .flat_map(|g| g.upstream.iter().map(String::as_str))
                .chain(streamed.map(|e| e.from.as_str()))
                .collect();
            let sinks = spec.tasks.iter().enumerate();
            sinks
                .filter(|(_, t)| !upstream.contains(t.key.as_str()))
                .map(|(i, _)| id(i))
                .collect()
        } else {
            let named = spec.tasks.iter().enumerate();
            named
                .filter(|(_, t)| spec.result.contains(&t.key))
                .map(|(i, _)| id(i))
                .collect()
        };
        self.jobs.insert(job, JobTasks { tasks, result });
        self.streams.admitted(first, spec);
    }

    /// A completion of `task` carrying `output` was accepted (not as a duplicate).
    pub(crate) fn committed(&mut self, task: TaskId, output: &Payload) {
        self.committed.insert(task, output.clone());
    }

    /// The end of job `job` was released.
    pub(crate) fn finished(&mut self, job: JobId) {
        if self.finished.insert(job) {
            self.to_read.push(job);
        }
    }

    /// Reads the jobs whose end was released since the last call.
    pub(crate) fn read_finished(&mut self, now: Time, engine: &Engine) -> Result<(), CheckFailure> {
        let jobs = std::mem::take(&mut self.to_read);
        jobs.into_iter()
            .try_for_each(|job| self.read_job(now, engine, job))
    }

    /// Reads every job whose end was released: what a client reading after the run
    /// would see.
    pub(crate) fn read_all(&self, now: Time, engine: &Engine) -> Result<(), CheckFailure> {
        self.finished
            .iter()
            .try_for_each(|&job| self.read_job(now, engine, job))
    }

    fn read_job(&self, now: Time, engine: &Engine, job: JobId) -> Result<(), CheckFailure> {
        let Some(tasks) = self.jobs.get(&job) else {
            return Ok(());
        };
        let fail = |check, detail| Err(failure(now, check, detail));
        for &task in &tasks.tasks {
            self.streams.read(now, engine, task)?;
            // A job past its retention is forgotten: nothing of it is readable.
            let Ok(read) = engine.task_output(task) else {
                continue;
            };
            let committed = self.committed.get(&task);
            if read.output.is_some() && read.output.as_ref() != committed {
                let detail = format!(
                    "task {task} of job {job} reads output {} but committed {}",
                    shown(read.output.as_ref()),
                    shown(committed)
                );
                return fail(Check::UncommittedOutput, detail);
            }
        }
        let Ok(result) = engine.job_result(job) else {
            return Ok(());
        };
        let read: Vec<(TaskId, Option<&Payload>)> = result
            .tasks
            .iter()
            .map(|t| (t.task, t.output.as_ref()))
            .collect();
        let expected: Vec<(TaskId, Option<&Payload>)> = tasks
            .result
            .iter()
            .map(|&t| (t, self.committed.get(&t)))
            .collect();
        if read != expected {
            let list = |l: &[(TaskId, Option<&Payload>)]| {
                let parts: Vec<String> = l
                    .iter()
                    .map(|(t, o)| format!("{t}={}", shown(*o)))
                    .collect();
                parts.join(", ")
            };
            let detail = format!(
                "job {job} result reads [{}] but its result tasks committed [{}]",
                list(&read),
                list(&expected)
            );
            return fail(Check::JobResult, detail);
        }
        Ok(())
    }
}

/// An output for a report: its text, or `none`.
fn shown(output: Option<&Payload>) -> String {
    match output {
        Some(p) => format!("{:?}", String::from_utf8_lossy(p.as_bytes())),
        None => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{
        Config, GroupKind, Input, InstanceId, Outputs, TaskSpec, WorkerCommand, WorkerId,
    };

    /// An engine with job "j" (a -> b, and c alone) and one registered worker.
    fn engine(result: &[&str]) -> (Engine, JobSpec) {
        let mut spec = JobSpec::new(
            "j",
            vec![
                TaskSpec::new("a"),
                TaskSpec::new("b").after(GroupKind::AllOf, &["a"]),
                TaskSpec::new("c"),
            ],
        );
        spec.result = result.iter().map(|k| k.to_string()).collect();
        let mut e = Engine::new(Config::default());
        e.apply(
            0,
            Input::Client(keel_engine::ClientCommand::SubmitJob(spec.clone())),
        );
        let reg = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 4,
        };
        e.apply(
            0,
            Input::worker(&WorkerId::new("w"), InstanceId::new(1), reg),
        );
        (e, spec)
    }

    fn send(e: &mut Engine, command: WorkerCommand) -> Outputs {
        e.apply(
            1,
            Input::worker(&WorkerId::new("w"), InstanceId::new(1), command),
        )
    }

    /// Runs every task to success; returns the checks fed with what was accepted.
    fn run(e: &mut Engine, spec: &JobSpec) -> ResultChecks {
        let mut c = ResultChecks::default();
        c.admitted(JobId::new(1), TaskId::new(1), spec);
        while e
            .job_result(JobId::new(1))
            .unwrap()
            .status
            .outcome
            .is_none()
        {
            let out = send(e, WorkerCommand::RequestWork { credits: 1 });
            let grant = out
                .effects
                .iter()
                .find_map(|f| match f {
                    keel_engine::Effect::GrantOffered { grant, .. } => Some(*grant),
                    _ => None,
                })
                .unwrap();
            let started = send(e, WorkerCommand::AcceptGrant { grant });
            let Some(Ok(keel_engine::Accepted::LeaseStarted { fence, .. })) = started.reply else {
                panic!("no lease: {started:?}");
            };
            let output = Payload::from(crate::work::output_of(fence));
            send(
                e,
                WorkerCommand::Complete {
                    fence,
                    output: output.clone(),
                },
            );
            c.committed(fence.task, &output);
        }
        c.finished(JobId::new(1));
        c
    }

    #[test]
    fn a_result_read_as_committed_passes_for_sinks_and_named_tasks() {
        for result in [&[][..], &["a", "c"][..]] {
            let (mut e, spec) = engine(result);
            let mut c = run(&mut e, &spec);
            assert_eq!(c.read_finished(5, &e), Ok(()));
            assert_eq!(c.read_all(5, &e), Ok(()));
        }
    }

    #[test]
    fn an_output_nobody_committed_is_flagged() {
        let (mut e, spec) = engine(&[]);
        let mut c = run(&mut e, &spec);
        // The history saw another output committed for task 2 than the engine holds.
        c.committed(TaskId::new(2), &Payload::from("t2#9.9"));
        let failure = c.read_finished(5, &e).unwrap_err();
        assert_eq!(failure.check, Check::UncommittedOutput, "{failure}");
        assert!(failure.detail.contains("task t2"), "{failure}");
        assert!(
            failure.detail.ends_with("but committed \"t2#9.9\""),
            "{failure}"
        );
        // Read again at the end of the run, every finished job is read once more.
        assert_eq!(c.read_finished(5, &e), Ok(()), "nothing new since");
        let again = c.read_all(5, &e).unwrap_err();
        assert_eq!(again, failure);
    }

    #[test]
    fn an_absent_output_shows_as_none() {
        assert_eq!(shown(None), "none");
        assert_eq!(shown(Some(&Payload::from("x"))), "\"x\"");
    }

    #[test]
    fn a_result_of_other_tasks_than_the_named_ones_is_flagged() {
        let (mut e, spec) = engine(&["a"]);
        let mut c = run(&mut e, &spec);
        // The checker expects the sinks; the engine returns the named task.
        let mut sinks = spec.clone();
        sinks.result.clear();
        c.admitted(JobId::new(1), TaskId::new(1), &sinks);
        let failure = c.read_finished(5, &e).unwrap_err();
        assert_eq!(failure.check, Check::JobResult, "{failure}");
    }
}
