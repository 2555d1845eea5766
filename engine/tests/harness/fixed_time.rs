//! The limit tests' driver: an engine driven at one fixed logical time, with checks
//! that a refusal is typed and changes nothing.

use crate::apply_checked;
use keel_engine::*;

pub const NOW: Time = 10;

pub fn limits(f: impl FnOnce(&mut Limits)) -> Config {
    let mut config = Config::default();
    f(&mut config.limits);
    config
}

/// An engine every input reaches at time [`NOW`], verified after each.
pub struct FixedTime {
    pub engine: Engine,
}

impl FixedTime {
    pub fn new(config: Config) -> FixedTime {
        let mut engine = Engine::new(config);
        engine.apply(NOW, Input::Tick);
        FixedTime { engine }
    }

    pub fn apply(&mut self, input: Input) -> Outputs {
        apply_checked(&mut self.engine, NOW, input, "an input")
    }

    /// Applies an input that must be refused, and checks it changed nothing.
    pub fn refused(&mut self, input: Input) -> Rejection {
        let before = self.engine.digest();
        let out = self.apply(input);
        assert!(
            out.effects.is_empty(),
            "a refusal had effects: {:?}",
            out.effects
        );
        assert_eq!(self.engine.digest(), before, "a refusal changed the state");
        match out.reply {
            Some(Err(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    pub fn accepted(&mut self, input: Input) -> (Accepted, Vec<Effect>) {
        let out = self.apply(input);
        match out.reply {
            Some(Ok(a)) => (a, out.effects),
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    pub fn register(&mut self, w: &str, caps: &[&str], max: u32) -> Input {
        let cmd = WorkerCommand::Register {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            lanes: vec![],
            max_concurrency: max,
        };
        Input::worker(&WorkerId::new(w), InstanceId::new(1), cmd)
    }

    pub fn cmd(&self, w: &str, cmd: WorkerCommand) -> Input {
        Input::worker(&WorkerId::new(w), InstanceId::new(1), cmd)
    }

    /// Registers `w`, gets one grant for the next ready task and starts its lease.
    pub fn lease(&mut self, w: &str) -> Fence {
        let reg = self.register(w, &[], 4);
        self.accepted(reg);
        let ask = self.cmd(w, WorkerCommand::RequestWork { credits: 1 });
        let (_, effects) = self.accepted(ask);
        let grant = effects
            .iter()
            .find_map(|f| match f {
                Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            })
            .expect("a grant is offered");
        let accept = self.cmd(w, WorkerCommand::AcceptGrant { grant });
        match self.accepted(accept).0 {
            Accepted::LeaseStarted { fence, .. } => fence,
            other => panic!("expected a lease, got {other:?}"),
        }
    }
}

pub fn submit(spec: JobSpec) -> Input {
    Input::Client(ClientCommand::SubmitJob(spec))
}

/// `n` independent tasks named t0, t1, ...
pub fn numbered(n: usize) -> Vec<TaskSpec> {
    (0..n).map(|i| TaskSpec::new(format!("t{i}"))).collect()
}

pub fn chain(n: usize) -> Vec<TaskSpec> {
    let mut out = vec![TaskSpec::new("t0")];
    for i in 1..n {
        let up = format!("t{}", i - 1);
        out.push(TaskSpec::new(format!("t{i}")).after(GroupKind::AllOf, &[&up]));
    }
    out
}

pub fn invalid(r: Rejection) -> JobError {
    match r {
        Rejection::InvalidJob(e) => e,
        other => panic!("expected an invalid job, got {other:?}"),
    }
}
