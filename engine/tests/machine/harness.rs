//! The engine under test, the inputs derived from generated operations, and what the
//! test learned from the engine's outputs so later operations can name real ids.

use super::gen::{job_spec, InstPick, Op, Sender, CAPS, WORKERS};
use super::oracle::Oracle;
use keel_engine::*;
use proptest::prelude::prop_assert_eq;
use proptest::test_runner::TestCaseError;

/// The engine under test plus what the test learned from its outputs.
pub(crate) struct Harness {
    pub engine: Engine,
    pub now: Time,
    pub log: Vec<(Time, Input)>,
    pub outs: Vec<Outputs>,
    /// Current instance number per worker name as this test believes it (0: never).
    instances: [u64; WORKERS.len()],
    grants: Vec<(GrantId, WorkerId)>,
    leases: Vec<(Fence, WorkerId, InstanceId)>,
    jobs: Vec<JobId>,
    suspended: Vec<(TaskId, String)>,
    /// Frames each lease has had appended, as its emits' answers said.
    emitted: std::collections::BTreeMap<Fence, u64>,
    oracle: Oracle,
}

/// Picks from `items` counting back from the newest, so small indices mean recent.
fn recent<T>(items: &[T], i: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[items.len() - 1 - i % items.len()])
}

impl Harness {
    pub(crate) fn new(config: Config) -> Harness {
        Harness {
            engine: Engine::new(config),
            now: 0,
            log: Vec::new(),
            outs: Vec::new(),
            instances: [0; WORKERS.len()],
            grants: Vec::new(),
            leases: Vec::new(),
            jobs: Vec::new(),
            suspended: Vec::new(),
            emitted: Default::default(),
            oracle: Oracle::default(),
        }
    }

    fn worker(&self, w: usize) -> WorkerId {
        WorkerId::new(WORKERS[w % WORKERS.len()])
    }

    fn instance(&self, w: usize, pick: InstPick) -> InstanceId {
        let current = self.instances[w % WORKERS.len()].max(1);
        match pick {
            InstPick::Current => InstanceId::new(current),
            InstPick::Older => InstanceId::new(current.saturating_sub(1)),
        }
    }

    fn to_worker(&self, w: usize, pick: InstPick, cmd: WorkerCommand) -> Input {
        Input::worker(&self.worker(w), self.instance(w, pick), cmd)
    }

    /// Turns an operation into a concrete input, or `None` when it names nothing yet.
    pub(crate) fn input(&mut self, op: &Op) -> Option<(Time, Input)> {
        let now = self.now;
        let cur = InstPick::Current;
        let input = match op {
            Op::Advance(dt) => {
                self.now += dt;
                return Some((self.now, Input::Tick));
            }
            Op::Register {
                w,
                caps,
                lanes,
                conc,
                next_instance,
            } => {
                let slot = w % WORKERS.len();
                if *next_instance || self.instances[slot] == 0 {
                    self.instances[slot] += 1;
                }
                let capabilities = (0..CAPS.len())
                    .filter(|b| caps & (1 << b) != 0)
                    .map(|b| CAPS[b].to_string())
                    .collect();
                let lanes = match lanes % 3 {
                    0 => vec![],
                    1 => vec!["fast".to_string()],
                    _ => vec!["fast".to_string(), "default".to_string()],
                };
                let reg = WorkerCommand::Register {
                    capabilities,
                    lanes,
                    max_concurrency: *conc,
                };
                self.to_worker(*w, cur, reg)
            }
            Op::Heartbeat { w, inst } => self.to_worker(*w, *inst, WorkerCommand::Heartbeat),
            Op::RequestWork { w, credits } => {
                let credits = *credits;
                self.to_worker(*w, cur, WorkerCommand::RequestWork { credits })
            }
            Op::Drain { w } => self.to_worker(*w, cur, WorkerCommand::Drain),
            Op::Deregister { w } => self.to_worker(*w, cur, WorkerCommand::Deregister),
            Op::Accept { grant, as_other } | Op::Release { grant, as_other } => {
                let (g, owner) = recent(&self.grants, *grant)?.clone();
                let cmd = match op {
                    Op::Accept { .. } => WorkerCommand::AcceptGrant { grant: g },
                    _ => WorkerCommand::ReleaseGrant { grant: g },
                };
                match as_other {
                    Some(o) => self.to_worker(*o, cur, cmd),
                    None => {
                        let slot = WORKERS
                            .iter()
                            .position(|n| *n == owner.as_str())
                            .unwrap_or(0);
                        self.to_worker(slot, cur, cmd)
                    }
                }
            }
            Op::Fenced { lease, sender, cmd } => {
                let (fence, holder, inst) = recent(&self.leases, *lease)?.clone();
                let emitted = self.emitted.get(&fence).copied().unwrap_or(0);
                let command = cmd.command(fence, emitted);
                match sender {
                    Sender::Holder => Input::worker(&holder, inst, command),
                    Sender::HolderCurrent => {
                        let slot = WORKERS
                            .iter()
                            .position(|n| *n == holder.as_str())
                            .unwrap_or(0);
                        self.to_worker(slot, cur, command)
                    }
                    Sender::Other(o) => self.to_worker(*o, cur, command),
                }
            }
            Op::Submit(job) => Input::Client(ClientCommand::SubmitJob(job_spec(job))),
            Op::Cancel { job } => {
                let job = recent(&self.jobs, *job).copied().unwrap_or(JobId::new(1));
                Input::Client(ClientCommand::CancelJob { job })
            }
            Op::Signal {
                task,
                right_waitpoint,
                key,
            } => {
                let (task, wp) = recent(&self.suspended, *task)?.clone();
                Input::Client(ClientCommand::Signal {
                    task,
                    waitpoint: if *right_waitpoint { wp } else { "nope".into() },
                    idempotency_key: format!("k{}", key % 3),
                    payload: Payload::from("sig"),
                })
            }
        };
        Some((now, input))
    }

    pub(crate) fn apply(&mut self, at: Time, input: Input) -> Result<(), TestCaseError> {
        let out = self.engine.apply(at, input.clone());
        if let Err(why) = keel_engine_harness::verify(&self.engine) {
            return Err(TestCaseError::fail(format!(
                "{why} after {input:?} at t={at}\noutputs: {out:?}"
            )));
        }
        self.oracle
            .observe(&input, &out)
            .map_err(|e| TestCaseError::fail(format!("{e}\ninput at t={at}: {input:?}")))?;
        self.check_stream(&input, &out)?;
        self.learn(&input, &out);
        self.log.push((at, input));
        self.outs.push(out);
        Ok(())
    }

    /// After an accepted emit, the task's stream reads back exactly what the oracle
    /// recorded: every appended frame, once, in order.
    fn check_stream(&self, input: &Input, out: &Outputs) -> Result<(), TestCaseError> {
        let Some(Ok(Accepted::Emitted { fence, .. })) = &out.reply else {
            return Ok(());
        };
        let read = StreamRead {
            from: 0,
            limit: u32::MAX,
            attempts: Attempts::All,
        };
        let page = self.engine.read_stream(fence.task, read).map_err(|e| {
            TestCaseError::fail(format!("the stream of {} is unreadable: {e}", fence.task))
        })?;
        let got: Vec<String> = page
            .frames
            .iter()
            .map(|f| String::from_utf8_lossy(f.data.as_bytes()).into_owned())
            .collect();
        prop_assert_eq!(
            got.as_slice(),
            self.oracle.stream(fence.task),
            "stream of {} after {:?}",
            fence.task,
            input
        );
        Ok(())
    }

    pub(crate) fn restore(bytes: &[u8]) -> Result<Engine, TestCaseError> {
        Engine::restore(bytes).map_err(|e| TestCaseError::fail(format!("restore failed: {e}")))
    }

    /// Remembers ids from the outputs so later operations can name them.
    fn learn(&mut self, input: &Input, out: &Outputs) {
        match &out.reply {
            Some(Ok(Accepted::LeaseStarted {
                fence,
                duplicate: false,
                ..
            })) => {
                if let Input::Worker {
                    worker, instance, ..
                } = input
                {
                    self.leases.push((*fence, worker.clone(), *instance));
                }
            }
            Some(Ok(Accepted::JobSubmitted {
                job,
                duplicate: false,
                ..
            })) => self.jobs.push(*job),
            Some(Ok(Accepted::Emitted { fence, next, .. })) => {
                self.emitted.insert(*fence, *next);
            }
            _ => {}
        }
        for e in &out.effects {
            match e {
                Effect::GrantOffered { worker, grant, .. } => {
                    self.grants.push((*grant, worker.clone()))
                }
                Effect::TaskSuspended {
                    task, waitpoint, ..
                } => self.suspended.push((*task, waitpoint.clone())),
                _ => {}
            }
        }
    }
}
