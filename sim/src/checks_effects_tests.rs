//! The checker fed by a real engine: each effect that ends a lease draws its bar with
//! its own reason, and the effects that change what a worker may be offered reach the
//! routing rules.

use super::*;
use keel_engine::{Config, Engine, InstanceId, JobSpec, TaskSpec, WorkerCommand, WorkerId};

/// An engine and a checker that sees every input the engine applies, released as soon
/// as it is applied.
struct Fed {
    engine: Engine,
    checker: Checker,
    position: u64,
}

impl Fed {
    fn new() -> Fed {
        Fed::counting(&[])
    }

    /// A checker that also counts what `counts` expect.
    fn counting(counts: &[&str]) -> Fed {
        let counts: Vec<CountExpect> = counts
            .iter()
            .map(|c| toml::from_str(c).expect("a count expectation"))
            .collect();
        Fed {
            engine: Engine::new(Config::default()),
            checker: Checker::new(&[10_000], BTreeMap::new(), &counts),
            position: 0,
        }
    }

    fn apply(&mut self, now: Time, input: Input) -> Vec<Effect> {
        let out = self.engine.apply(now, input.clone());
        self.position += 1;
        let at = (self.position, self.position);
        self.checker
            .released(now, &input, out.reply.as_ref(), &out.effects, at);
        out.effects
    }

    fn worker(&mut self, now: Time, command: WorkerCommand) -> Vec<Effect> {
        self.apply(
            now,
            Input::worker(&WorkerId::new("w"), InstanceId::new(1), command),
        )
    }

    /// Registers `w`, submits a one-task job and starts its lease at time 10.
    fn leased() -> Fed {
        Fed::new().lease()
    }

    fn lease(mut self) -> Fed {
        let f = &mut self;
        let register = WorkerCommand::Register {
            capabilities: vec![],
            lanes: vec![],
            max_concurrency: 2,
        };
        f.worker(0, register);
        let spec = JobSpec::new("j", vec![TaskSpec::new("a")]);
        f.apply(0, Input::Client(ClientCommand::SubmitJob(spec)));
        let offered = f.worker(0, WorkerCommand::RequestWork { credits: 1 });
        let grant = offered
            .iter()
            .find_map(|e| match e {
                Effect::GrantOffered { grant, .. } => Some(*grant),
                _ => None,
            })
            .expect("a grant");
        f.worker(10, WorkerCommand::AcceptGrant { grant });
        self
    }

    fn outcomes(&self) -> Vec<&'static str> {
        self.checker.bars.iter().map(|b| b.outcome).collect()
    }
}

#[test]
fn a_cancelled_job_draws_its_lease_ended_by_the_revocation() {
    let mut f = Fed::leased();
    let cancel = ClientCommand::CancelJob { job: JobId::new(1) };
    f.apply(50, Input::Client(cancel));
    assert_eq!(f.outcomes(), ["job_cancelled"]);
    assert_eq!((f.checker.bars[0].start, f.checker.bars[0].end), (10, 50));
    assert!(f.checker.failures.is_empty(), "{:?}", f.checker.failures);
}

#[test]
fn a_lost_worker_draws_its_lease_ended_as_lost() {
    let mut f = Fed::leased();
    let effects = f.apply(10_000_000, Input::Tick);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::WorkerLost { .. })),
        "{effects:?}"
    );
    assert_eq!(f.outcomes(), ["worker_lost"]);
}

#[test]
fn a_completed_task_draws_a_succeeded_bar_and_a_second_end_is_flagged() {
    let mut f = Fed::leased();
    let fence = Fence {
        task: TaskId::new(1),
        attempt: 1,
        epoch: 1,
    };
    let output = keel_engine::Payload::from(crate::work::output_of(fence));
    let effects = f.worker(40, WorkerCommand::Complete { fence, output });
    assert_eq!(f.outcomes(), ["succeeded"]);
    assert!(f.checker.failures.is_empty(), "{:?}", f.checker.failures);
    let finished: Vec<Effect> = effects
        .into_iter()
        .filter(|e| matches!(e, Effect::TaskFinished { .. }))
        .collect();
    f.checker
        .released(41, &Input::Tick, None, &finished, (99, 99));
    assert_eq!(f.checker.failures[0].check, Check::DoubleFinish);
}

#[test]
fn a_grant_to_a_worker_the_engine_blacklisted_is_flagged() {
    let mut f = Fed::leased();
    let blacklisted = Effect::WorkerBlacklisted {
        worker: WorkerId::new("w"),
        until: 1_000,
    };
    f.checker
        .released(20, &Input::Tick, None, &[blacklisted], (50, 50));
    let spec = JobSpec::new("k", vec![TaskSpec::new("b")]);
    f.apply(30, Input::Client(ClientCommand::SubmitJob(spec)));
    f.worker(30, WorkerCommand::RequestWork { credits: 1 });
    assert_eq!(f.checker.failures[0].check, Check::BlacklistedGrant);
}

/// Refusals are counted against the task and attempt the command named, through its
/// fence or its grant, so a scenario can bound them per task.
#[test]
fn refusals_count_against_the_task_and_attempt_the_command_named() {
    let on_task =
        |kind: &str| format!("what = \"{kind}\"\njob = \"j\"\ntask = \"a\"\nattempt = 1\nmin = 1");
    let counts = [
        on_task("reject:stale_fence"),
        on_task("reject:unknown_grant"),
    ];
    let counts: Vec<&str> = counts.iter().map(String::as_str).collect();
    let mut f = Fed::counting(&counts).lease();
    let stale = Fence {
        task: TaskId::new(1),
        attempt: 1,
        epoch: 9,
    };
    let error = "late".to_string();
    f.worker(
        20,
        WorkerCommand::Fail {
            fence: stale,
            error,
            permanent: false,
        },
    );
    let unmet = f.checker.stats.unmet();
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    assert!(unmet[0].starts_with("reject:unknown_grant"), "{unmet:?}");
}

#[test]
fn the_first_failures_are_kept_and_each_is_counted() {
    let mut f = Fed::counting(&["what = \"check:double_grant\"\nmin = 20\nmax = 20"]);
    for at in 0..20 {
        f.checker.flag(CheckFailure {
            at,
            check: Check::DoubleGrant,
            detail: format!("number {at}"),
        });
    }
    assert_eq!(f.checker.failures.len(), KEPT);
    assert_eq!(
        f.checker.failures[KEPT - 1].detail,
        format!("number {}", KEPT - 1)
    );
    assert_eq!(f.checker.stats.unmet(), Vec::<String>::new());
}
