//! Turning ops into engine inputs: names drawn from small pools so collisions and
//! invalid names are common, and grants, leases, jobs and waitpoints picked from what
//! the run has seen so far.

use super::{Fenced, Inst, JobOp, Op, Sender};
use keel_engine::*;

/// Four valid worker names, one empty and one with a control character.
const WORKERS: [&str; 6] = ["w0", "w1", "w2", "w3", "", "w\u{7}"];
/// Valid tokens, then a duplicate, one with a space, an empty one and an overlong one.
const CAPS: [&str; 8] = ["gpu", "ssd", "arm", "tpu", "gpu", "a b", "", "toolongtoken"];
const NAMES: [&str; 6] = ["default", "t1", "t2", "batch", "", "n\u{0}"];

fn pick<T: Copy>(items: &[T], i: u8) -> T {
    items[i as usize % items.len()]
}

fn subset(items: &[&str], mask: u8) -> Vec<String> {
    (0..items.len().min(8))
        .filter(|i| mask >> i & 1 == 1)
        .map(|i| items[i].to_string())
        .collect()
}

fn payload(len: u8) -> Payload {
    Payload::from(vec![b'p'; len as usize % 48])
}

/// The run's view of what exists, learnt from replies and effects.
#[derive(Default)]
pub(super) struct Seen {
    /// The newest instance each worker name registered with.
    instances: [u64; WORKERS.len()],
    grants: Vec<(GrantId, WorkerId, InstanceId)>,
    leases: Vec<(Fence, WorkerId, InstanceId)>,
    jobs: Vec<JobId>,
    tasks: Vec<TaskId>,
    waitpoints: Vec<(TaskId, String)>,
}

fn recent<T: Clone>(items: &[T], i: u8) -> Option<T> {
    let back = i as usize % 8;
    (back < items.len()).then(|| items[items.len() - 1 - back].clone())
}

impl Seen {
    fn worker(&self, i: u8) -> (WorkerId, InstanceId) {
        let w = i as usize % WORKERS.len();
        (
            WorkerId::new(WORKERS[w]),
            InstanceId::new(self.instances[w]),
        )
    }

    fn sender(&self, owner: &WorkerId, inst: InstanceId, s: Sender) -> (WorkerId, InstanceId) {
        match s {
            Sender::Owner => (owner.clone(), inst),
            Sender::OwnerOlder => (owner.clone(), InstanceId::new(inst.get().saturating_sub(1))),
            Sender::Other(i) => self.worker(i),
        }
    }

    pub(super) fn learn(&mut self, input: &Input, out: &Outputs) {
        match (&out.reply, input) {
            (
                Some(Ok(Accepted::JobSubmitted {
                    job,
                    first_task,
                    tasks,
                    ..
                })),
                _,
            ) => {
                self.jobs.push(*job);
                self.tasks
                    .extend((0..*tasks as u64).map(|i| TaskId::new(first_task.get() + i)));
            }
            (
                Some(Ok(Accepted::LeaseStarted { fence, .. })),
                Input::Worker {
                    worker, instance, ..
                },
            ) => {
                self.leases.push((*fence, worker.clone(), *instance));
            }
            _ => {}
        }
        for effects in &out.effects {
            match effects {
                Effect::GrantOffered { worker, grant, .. } => {
                    let w = WORKERS
                        .iter()
                        .position(|n| *n == worker.as_str())
                        .unwrap_or(0);
                    self.grants
                        .push((*grant, worker.clone(), InstanceId::new(self.instances[w])));
                }
                Effect::TaskSuspended {
                    task, waitpoint, ..
                } => self.waitpoints.push((*task, waitpoint.clone())),
                _ => {}
            }
        }
    }

    pub(super) fn input(&mut self, op: &Op) -> Option<Input> {
        let worker = |seen: &Seen, i: u8, cmd| {
            let (w, inst) = seen.worker(i);
            Some(Input::worker(&w, inst, cmd))
        };
        match op {
            Op::Register {
                worker: i,
                instance,
                caps,
                lanes,
                max_concurrency,
            } => {
                let w = *i as usize % WORKERS.len();
                let inst = self.instances[w];
                let inst = match instance {
                    Inst::Current => inst.max(1),
                    Inst::Next => inst + 1,
                    Inst::Older => inst.saturating_sub(1),
                };
                self.instances[w] = self.instances[w].max(inst);
                let cmd = WorkerCommand::Register {
                    capabilities: subset(&CAPS, *caps),
                    lanes: subset(&NAMES, *lanes & 0x1f),
                    max_concurrency: u32::from(*max_concurrency % 6),
                };
                Some(Input::worker(
                    &WorkerId::new(WORKERS[w]),
                    InstanceId::new(inst),
                    cmd,
                ))
            }
            Op::Heartbeat {
                worker: i,
                instance,
            } => {
                let (w, inst) = self.worker(*i);
                let inst = match instance {
                    Inst::Current => inst,
                    Inst::Next => InstanceId::new(inst.get() + 1),
                    Inst::Older => InstanceId::new(inst.get().saturating_sub(1)),
                };
                Some(Input::worker(&w, inst, WorkerCommand::Heartbeat))
            }
            Op::RequestWork { worker: i, credits } => worker(
                self,
                *i,
                WorkerCommand::RequestWork {
                    credits: u32::from(*credits % 8),
                },
            ),
            Op::Drain { worker: i } => worker(self, *i, WorkerCommand::Drain),
            Op::Deregister { worker: i } => worker(self, *i, WorkerCommand::Deregister),
            Op::Accept { grant, sender } | Op::Release { grant, sender } => {
                let (g, owner, inst) = recent(&self.grants, *grant)?;
                let (w, inst) = self.sender(&owner, inst, *sender);
                let cmd = match op {
                    Op::Accept { .. } => WorkerCommand::AcceptGrant { grant: g },
                    _ => WorkerCommand::ReleaseGrant { grant: g },
                };
                Some(Input::worker(&w, inst, cmd))
            }
            Op::Fenced {
                lease,
                sender,
                stale_epoch,
                cmd,
            } => {
                let (mut fence, owner, inst) = recent(&self.leases, *lease)?;
                let (w, inst) = self.sender(&owner, inst, *sender);
                if *stale_epoch {
                    fence.epoch = fence.epoch.saturating_sub(1);
                }
                let cmd = match cmd {
                    Fenced::Renew => WorkerCommand::Renew { fence },
                    Fenced::Complete { output } => WorkerCommand::Complete {
                        fence,
                        output: payload(*output),
                    },
                    Fenced::Fail { permanent, error } => WorkerCommand::Fail {
                        fence,
                        error: "e".repeat(*error as usize % 40),
                        permanent: *permanent,
                    },
                    Fenced::Suspend {
                        waitpoint,
                        timeout_ms,
                        resume,
                    } => WorkerCommand::Suspend {
                        fence,
                        waitpoint: pick(&NAMES, *waitpoint).to_string(),
                        timeout_ms: timeout_ms.map(u64::from),
                        on_timeout: if *resume {
                            SuspendTimeout::Resume
                        } else {
                            SuspendTimeout::Fail
                        },
                    },
                };
                Some(Input::worker(&w, inst, cmd))
            }
            Op::Submit(job) => Some(Input::Client(ClientCommand::SubmitJob(job_spec(job)))),
            Op::Cancel { job } => {
                let job = recent(&self.jobs, *job).unwrap_or(JobId::new(u64::from(*job)));
                Some(Input::Client(ClientCommand::CancelJob { job }))
            }
            Op::Signal {
                task,
                waitpoint,
                key,
                payload: len,
            } => {
                let (task, wp) = match recent(&self.waitpoints, *task) {
                    Some((t, wp)) if *waitpoint % 4 != 0 => (t, wp),
                    _ => (
                        recent(&self.tasks, *task)?,
                        pick(&NAMES, *waitpoint).to_string(),
                    ),
                };
                let idempotency_key = format!("k{}", key % 4);
                let cmd = ClientCommand::Signal {
                    task,
                    waitpoint: wp,
                    idempotency_key,
                    payload: payload(*len),
                };
                Some(Input::Client(cmd))
            }
            Op::Advance { .. } | Op::Jump { .. } | Op::Restart => None,
        }
    }
}

fn job_spec(op: &JobOp) -> JobSpec {
    let key = |k: u8| format!("t{}", k % 8);
    let tasks = op.tasks.iter().take(10).map(|t| {
        let mut spec = TaskSpec::new(key(t.key));
        spec.payload = payload(t.payload);
        spec.capabilities = subset(&CAPS, t.caps & 0x3f);
        if !t.deps.is_empty() {
            let kind = match t.group {
                0 => GroupKind::AllOf,
                1 => GroupKind::AnyOf,
                g => GroupKind::Quorum(u32::from(g % 4)),
            };
            let upstream = t.deps.iter().take(5).map(|&d| key(d)).collect();
            let on_unsatisfied = if t.cancel_on_unsatisfied {
                UnsatisfiedPolicy::Cancel
            } else {
                UnsatisfiedPolicy::Skip
            };
            spec.deps = Some(DepGroup {
                kind,
                upstream,
                on_unsatisfied,
            });
        }
        spec.retry = RetryPolicy {
            max_attempts: u32::from(t.max_attempts % 5),
            backoff_base_ms: u64::from(t.backoff_ms % 500),
            backoff_factor: 2,
            backoff_max_ms: u64::from(t.backoff_ms),
            jitter_pct: t.jitter_pct % 120,
        };
        spec.attempt_timeout_ms = t.attempt_timeout_ms.map(u64::from);
        spec.delay_ms = u64::from(t.delay_ms % 1_000);
        spec.priority = t.priority.map(i32::from);
        spec.allow_failure = t.allow_failure;
        spec
    });
    JobSpec {
        name: format!("j{}", op.name % 6),
        tenant: pick(&NAMES, op.tenant).to_string(),
        lane: pick(&NAMES, op.lane).to_string(),
        priority: i32::from(op.priority),
        deadline_ms: op.deadline_ms.map(u64::from),
        max_concurrency: op.max_concurrency.map(|c| u32::from(c % 4)),
        tasks: tasks.collect(),
        result: Vec::new(),
        budgets: Default::default(),
    }
}
