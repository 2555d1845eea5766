//! The engine's shared test harness: what every engine test checks after each input
//! (`verify`: the invariants hold and the snapshot restores to the same digest), and
//! the drivers built on it: [`Harness`] for behaviour tests with explicit times and a
//! replayable input log, [`FixedTime`] for limit tests that check a refusal changes
//! nothing. A library crate rather than a module each test file includes, so no test
//! binary has to allow the helpers it does not use.

use keel_engine::*;
use std::fmt::Display;

mod fixed_time;

pub use fixed_time::{chain, invalid, limits, numbered, submit, FixedTime, NOW};

/// What every driver checks after each input: the invariants hold, and a restore of
/// the snapshot gives an engine with the same digest.
pub fn verify(engine: &Engine) -> Result<(), String> {
    engine
        .check_invariants()
        .map_err(|v| format!("invariant broken: {v}"))?;
    let restored =
        Engine::restore(&engine.snapshot()).map_err(|e| format!("snapshot refused: {e}"))?;
    if restored.digest() != engine.digest() {
        return Err("snapshot round-trip changed the digest".into());
    }
    Ok(())
}

/// Applies `input` at `now` and panics, naming `what`, if `verify` fails after it.
pub fn apply_checked(engine: &mut Engine, now: Time, input: Input, what: impl Display) -> Outputs {
    let out = engine.apply(now, input);
    if let Err(why) = verify(engine) {
        panic!("after {what}: {why}");
    }
    out
}

/// A behaviour-test driver: explicit times, `verify` after every input, and the input
/// log kept for replay checks.
pub struct Harness {
    pub engine: Engine,
    pub now: Time,
    pub log: Vec<(Time, Input)>,
    config: Config,
}

pub fn inst(n: u64) -> InstanceId {
    InstanceId::new(n)
}

pub fn wid(name: &str) -> WorkerId {
    WorkerId::new(name)
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        Harness {
            engine: Engine::new(config.clone()),
            now: 0,
            log: Vec::new(),
            config,
        }
    }

    pub fn at(&mut self, t: Time) -> &mut Harness {
        self.now = t;
        self
    }

    pub fn apply(&mut self, input: Input) -> Outputs {
        self.log.push((self.now, input.clone()));
        let what = format!("input {}", self.log.len());
        apply_checked(&mut self.engine, self.now, input, what)
    }

    pub fn worker(&mut self, w: &str, i: u64, cmd: WorkerCommand) -> Outputs {
        self.apply(Input::worker(&wid(w), inst(i), cmd))
    }

    pub fn register(
        &mut self,
        w: &str,
        i: u64,
        caps: &[&str],
        max: u32,
    ) -> Result<Accepted, Rejection> {
        let cmd = WorkerCommand::Register {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            lanes: vec![],
            max_concurrency: max,
        };
        self.worker(w, i, cmd).reply.expect("register has a reply")
    }

    pub fn submit(&mut self, spec: JobSpec) -> Result<(JobId, TaskId), Rejection> {
        match self
            .apply(Input::Client(ClientCommand::SubmitJob(spec)))
            .reply
        {
            Some(Ok(Accepted::JobSubmitted {
                job, first_task, ..
            })) => Ok((job, first_task)),
            Some(Err(r)) => Err(r),
            other => panic!("unexpected submit reply {other:?}"),
        }
    }

    /// Asks for work and returns the grants offered to `w` by that input.
    pub fn request(&mut self, w: &str, i: u64, credits: u32) -> Vec<(GrantId, TaskId)> {
        let out = self.worker(w, i, WorkerCommand::RequestWork { credits });
        grants_for(&out.effects, w)
    }

    pub fn accept(&mut self, w: &str, i: u64, grant: GrantId) -> Result<Fence, Rejection> {
        match self
            .worker(w, i, WorkerCommand::AcceptGrant { grant })
            .reply
        {
            Some(Ok(Accepted::LeaseStarted { fence, .. })) => Ok(fence),
            Some(Err(r)) => Err(r),
            other => panic!("unexpected accept reply {other:?}"),
        }
    }

    /// Requests one grant, accepts it and returns the fence.
    pub fn take(&mut self, w: &str, i: u64) -> Fence {
        let grants = self.request(w, i, 1);
        assert_eq!(grants.len(), 1, "expected one grant for {w}");
        self.accept(w, i, grants[0].0).expect("accept")
    }

    pub fn complete(&mut self, w: &str, i: u64, fence: Fence) -> Outputs {
        self.worker(
            w,
            i,
            WorkerCommand::Complete {
                fence,
                output: Payload::default(),
            },
        )
    }

    pub fn fail(&mut self, w: &str, i: u64, fence: Fence, permanent: bool) -> Outputs {
        let cmd = WorkerCommand::Fail {
            fence,
            error: "boom".into(),
            permanent,
        };
        self.worker(w, i, cmd)
    }

    /// Emits one frame per text on attempt `fence`, starting at its frame `from`.
    pub fn emit(&mut self, w: &str, i: u64, fence: Fence, from: u64, texts: &[&str]) -> Outputs {
        let frames = texts.iter().map(|t| Payload::from(*t)).collect();
        let cmd = WorkerCommand::Emit {
            fence,
            from,
            frames,
        };
        self.worker(w, i, cmd)
    }

    pub fn tick(&mut self, t: Time) -> Vec<Effect> {
        self.now = t;
        self.apply(Input::Tick).effects
    }

    pub fn task(&self, t: TaskId) -> TaskView {
        self.engine.describe_task(t).expect("task exists")
    }

    pub fn job_outcome(&self, j: JobId) -> Option<JobOutcome> {
        self.engine
            .describe_job(j)
            .expect("job exists")
            .status
            .outcome
    }

    /// Replays the input log from scratch and checks the same digest comes out.
    pub fn check_replay(&self) {
        let mut fresh = Engine::new(self.config.clone());
        for (t, input) in &self.log {
            fresh.apply(*t, input.clone());
        }
        assert_eq!(fresh.digest(), self.engine.digest(), "replay diverged");
    }
}

pub fn grants_for(effects: &[Effect], w: &str) -> Vec<(GrantId, TaskId)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::GrantOffered {
                worker,
                grant,
                task,
                ..
            } if worker.as_str() == w => Some((*grant, *task)),
            _ => None,
        })
        .collect()
}

pub fn tasks(keys: &[&str]) -> Vec<TaskSpec> {
    keys.iter().map(|k| TaskSpec::new(*k)).collect()
}

pub fn job(name: &str, keys: &[&str]) -> JobSpec {
    JobSpec::new(name, tasks(keys))
}

pub fn rejection(out: &Outputs) -> &Rejection {
    match &out.reply {
        Some(Err(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn accepted(out: &Outputs) -> &Accepted {
    match &out.reply {
        Some(Ok(a)) => a,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

pub fn has(effects: &[Effect], pred: impl Fn(&Effect) -> bool) -> bool {
    effects.iter().any(pred)
}

/// A config with short, round timeouts so tests read easily.
pub fn config() -> Config {
    Config {
        grant_ttl_ms: 1_000,
        lease_ttl_ms: 10_000,
        liveness_timeout_ms: 5_000,
        max_losses: 3,
        ..Config::default()
    }
}
