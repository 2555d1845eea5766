//! What the `grpc_requests` fuzz target checks for one input, shared with the in-tree
//! replay (`tests/fuzz_replay.rs`) through `#[path]` so both run exactly the same code.
//!
//! The first byte picks a request message, the rest is its protobuf encoding: a worker
//! session's frame (the first command must register, the rest go through the session's
//! checks), or a submit, cancel, describe, watch, list or signal request. Every message is decoded,
//! converted as the service converts it and applied to an engine that already holds a
//! worker and a job. Nothing may panic; invariants hold after every input; a refused
//! client command leaves the engine exactly as it was; and a job spec that converts
//! comes back unchanged through the wire form.

use keel_engine::{
    Accepted, ClientCommand, Config, Effect, Engine, Input, InstanceId, JobId, JobSpec, Limits,
    SuspendTimeout, TaskId, TaskSpec, WorkerCommand, WorkerId,
};
use keel_grpc::proto;
use keel_grpc::validate::{command, registration, signal, Checked};
use keel_grpc::{job_spec_from_proto, job_spec_to_proto};
use prost::Message;

pub(crate) fn check(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let mut engine = engine();
    let mut now = 10;
    let client = match kind % 7 {
        0 => return session(&mut engine, body, &limits),
        1 => match proto::SubmitJobRequest::decode(body)
            .ok()
            .and_then(|r| r.spec)
        {
            Some(spec) => match spec_round_trips(spec) {
                Some(spec) => ClientCommand::SubmitJob(spec),
                None => return,
            },
            None => return,
        },
        2 => match proto::CancelJobRequest::decode(body) {
            Ok(r) => ClientCommand::CancelJob {
                job: JobId::new(r.job),
            },
            Err(_) => return,
        },
        3 => {
            if let Ok(r) = proto::DescribeJobRequest::decode(body) {
                let _ = engine.describe_job(JobId::new(r.job));
            }
            return;
        }
        4 => {
            if let Ok(r) = proto::WatchJobRequest::decode(body) {
                let _ = engine.describe_job(JobId::new(r.job));
            }
            return;
        }
        5 => {
            if proto::ListJobsRequest::decode(body).is_ok() {
                let _ = engine.jobs();
            }
            return;
        }
        _ => match proto::SignalTaskRequest::decode(body).map(|r| signal(r, &limits)) {
            Ok(Ok(signal)) => {
                // The service refuses a task of another job before the engine sees it.
                match engine.describe_task(signal.task) {
                    Ok(task) if task.job == signal.job => signal.command,
                    _ => return,
                }
            }
            Ok(Err(status)) => {
                assert!(!status.message().is_empty(), "a refusal names no field");
                return;
            }
            Err(_) => return,
        },
    };
    now += 1;
    engine.apply(now, Input::Tick);
    let before = engine.digest();
    let out = engine.apply(now, Input::Client(client));
    invariants(&engine, "a client request");
    if let Some(Err(r)) = out.reply {
        assert_eq!(engine.digest(), before, "refusal {r:?} changed the engine");
        assert!(out.effects.is_empty(), "refusal {r:?} had effects");
    }
}

/// An engine with one registered worker and one job in flight (task 1 offered, task 2
/// suspended on waitpoint "w"), so requests naming small ids reach real state.
fn engine() -> Engine {
    let mut e = Engine::new(Config::default());
    let w = WorkerId::new("w1");
    let reg = WorkerCommand::Register {
        capabilities: vec!["gpu".into()],
        lanes: vec![],
        max_concurrency: 2,
    };
    e.apply(0, Input::worker(&w, InstanceId::new(1), reg));
    let job = JobSpec::new("j", vec![TaskSpec::new("a"), TaskSpec::new("b")]);
    e.apply(1, Input::Client(ClientCommand::SubmitJob(job)));
    let offers = e.apply(
        2,
        Input::worker(
            &w,
            InstanceId::new(1),
            WorkerCommand::RequestWork { credits: 2 },
        ),
    );
    let grant = offers.effects.iter().find_map(|effect| match effect {
        Effect::GrantOffered { grant, task, .. } if *task == TaskId::new(2) => Some(*grant),
        _ => None,
    });
    let accept = WorkerCommand::AcceptGrant {
        grant: grant.expect("task 2 is offered"),
    };
    let started = e.apply(3, Input::worker(&w, InstanceId::new(1), accept));
    let Some(Ok(Accepted::LeaseStarted { fence, .. })) = started.reply else {
        panic!("the accept was refused: {:?}", started.reply);
    };
    let suspend = WorkerCommand::Suspend {
        fence,
        waitpoint: "w".into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Fail,
    };
    e.apply(4, Input::worker(&w, InstanceId::new(1), suspend));
    e
}

/// A worker session: one frame, whose first command must register.
fn session(engine: &mut Engine, body: &[u8], limits: &Limits) {
    let Ok(frame) = proto::WorkerFrame::decode(body) else {
        return;
    };
    let mut commands = frame.commands.into_iter();
    let Some(first) = commands.next() else {
        return;
    };
    let Ok(reg) = registration(&first, limits) else {
        return;
    };
    let mut now = 10;
    engine.apply(now, Input::worker(&reg.worker, reg.instance, reg.command));
    invariants(engine, "a registration");
    for cmd in commands {
        now += 1;
        match command(cmd, limits) {
            Ok(Checked::Engine(cmd)) => {
                engine.apply(now, Input::worker(&reg.worker, reg.instance, cmd));
                invariants(engine, "a session command");
            }
            Ok(Checked::Progress { per_mille, .. }) => assert!(per_mille <= 1000),
            Err(status) => assert!(!status.message().is_empty(), "a refusal names no field"),
        }
    }
}

/// Converts a wire spec; one that converts must survive a trip through the wire form.
fn spec_round_trips(wire: proto::JobSpec) -> Option<JobSpec> {
    let spec = job_spec_from_proto(wire).ok()?;
    let again = job_spec_from_proto(job_spec_to_proto(&spec));
    assert_eq!(
        again.as_ref().ok(),
        Some(&spec),
        "the spec changes on the wire"
    );
    Some(spec)
}

fn invariants(engine: &Engine, after: &str) {
    if let Err(v) = engine.check_invariants() {
        panic!("invariant broken after {after}: {v}");
    }
}
