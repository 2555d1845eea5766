//! Criterion benches for Keel live in benches/; this library holds what several of
//! them set up the same way.

use keel_engine::{
    Accepted, ClientCommand, Config, Effect, Engine, Fence, Input, InstanceId, JobSpec, TaskSpec,
    WorkerCommand, WorkerId,
};

/// An engine configured by `config` whose one task, `task`, runs under worker w1:
/// the engine, the worker, its instance and the attempt's fence.
pub fn running_task(config: Config, task: TaskSpec) -> (Engine, WorkerId, InstanceId, Fence) {
    let mut engine = Engine::new(config);
    let (w, i) = (WorkerId::new("w1"), InstanceId::new(1));
    let reg = WorkerCommand::Register {
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    };
    engine.apply(0, Input::worker(&w, i, reg));
    let job = JobSpec::new("logs", vec![task]);
    engine.apply(1, Input::Client(ClientCommand::SubmitJob(job)));
    let ask = WorkerCommand::RequestWork { credits: 1 };
    let out = engine.apply(1, Input::worker(&w, i, ask));
    let Some(Effect::GrantOffered { grant, .. }) = out.effects.first().cloned() else {
        panic!("no grant: {out:?}");
    };
    let accept = WorkerCommand::AcceptGrant { grant };
    let out = engine.apply(1, Input::worker(&w, i, accept));
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = out.reply else {
        panic!("accept refused: {:?}", out.reply);
    };
    (engine, w, i, fence)
}
