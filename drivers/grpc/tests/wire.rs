//! The protocol as a worker without the SDK sees it: fences are checked over the wire,
//! malformed commands are refused naming the field, replayed completions are answered
//! consistently.

mod support;

use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::coordinator_event::Event;
use keel_grpc::proto::worker_command::Command;
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use support::{submit, within, Cluster};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, Streaming};

struct RawSession {
    out: mpsc::UnboundedSender<WorkerFrame>,
    inbound: Streaming<CoordinatorFrame>,
    /// Events of a frame not yet looked at: a frame may batch several.
    received: std::collections::VecDeque<Event>,
    seq: u64,
}

impl RawSession {
    async fn open(cluster: &Cluster, first: Vec<Command>) -> Result<RawSession, tonic::Status> {
        let mut workers = cluster.client().workers().await.unwrap();
        let (out, rx) = mpsc::unbounded_channel();
        let mut session = RawSession {
            out,
            inbound: Streaming::new_empty(
                tonic_prost::ProstDecoder::default(),
                tonic::body::Body::empty(),
            ),
            received: Default::default(),
            seq: 0,
        };
        session.send(first);
        session.inbound = workers
            .session(UnboundedReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(session)
    }

    fn send(&mut self, commands: Vec<Command>) -> u64 {
        let commands = commands
            .into_iter()
            .map(|c| {
                self.seq += 1;
                WorkerCommand {
                    seq: self.seq,
                    command: Some(c),
                }
            })
            .collect();
        let _ = self.out.send(WorkerFrame { commands });
        self.seq
    }

    async fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.received.pop_front() {
                return event;
            }
            let frame = within("an event", self.inbound.message())
                .await
                .unwrap()
                .unwrap();
            self.received
                .extend(frame.events.into_iter().filter_map(|e| e.event));
        }
    }

    async fn reply(&mut self, seq: u64) -> reply::Result {
        loop {
            if let Event::Reply(r) = self.next_event().await {
                if r.seq == seq {
                    return r.result.unwrap();
                }
            }
        }
    }
}

fn register(name: &str) -> Command {
    Command::Register(Register {
        worker_id: name.into(),
        instance: 1,
        capabilities: vec![],
        lanes: vec![],
        max_concurrency: 1,
    })
}

fn complete(fence: Fence) -> Command {
    Command::Complete(Complete {
        fence: Some(fence),
        output: b"ok".to_vec(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fence_is_refused_over_the_wire() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (mut s, _, fence) = lease_one(&cluster).await;

    let stale = Fence {
        epoch: fence.epoch + 1,
        ..fence
    };
    let seq = s.send(vec![complete(stale)]);
    let reply::Result::Refused(refused) = s.reply(seq).await else {
        panic!("a stale fence was accepted");
    };
    assert_eq!(refused.status, Code::FailedPrecondition as i32);
    assert_eq!(refused.reason, "stale_fence");
    assert!(
        refused.message.starts_with("stale_fence: "),
        "{}",
        refused.message
    );

    let seq = s.send(vec![Command::Complete(Complete {
        fence: None,
        output: vec![],
    })]);
    let reply::Result::Refused(refused) = s.reply(seq).await else {
        panic!("a completion without a fence was accepted");
    };
    assert_eq!(refused.status, Code::InvalidArgument as i32);
    assert_eq!(refused.message, "complete.fence: is required");

    let seq = s.send(vec![complete(fence)]);
    let reply::Result::Completed(done) = s.reply(seq).await else {
        panic!("the current fence was refused");
    };
    assert!(!done.duplicate);
    let seq = s.send(vec![complete(fence)]);
    let reply::Result::Completed(again) = s.reply(seq).await else {
        panic!("a replayed completion was refused");
    };
    assert!(again.duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_must_register_first_and_register_validly() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let err = match RawSession::open(&cluster, vec![Command::Heartbeat(Heartbeat {})]).await {
        Ok(mut s) => s.inbound.message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("command:"), "{}", err.message());

    let bad = Command::Register(Register {
        worker_id: "w 1".into(),
        instance: 1,
        max_concurrency: 1,
        ..Default::default()
    });
    let err = match RawSession::open(&cluster, vec![bad]).await {
        Ok(mut s) => s.inbound.message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("register.worker_id"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_instance_is_refused_with_failed_precondition() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let newer = Command::Register(Register {
        worker_id: "w1".into(),
        instance: 5,
        max_concurrency: 1,
        ..Default::default()
    });
    let mut s = RawSession::open(&cluster, vec![newer]).await.unwrap();
    assert!(matches!(s.reply(1).await, reply::Result::Registered(_)));
    let err = match RawSession::open(&cluster, vec![register("w1")]).await {
        Ok(mut s) => s.inbound.message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().starts_with("stale_instance: "),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_invalid_argument_naming_the_problem() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let mut jobs = cluster.client().jobs().await.unwrap();
    let err = jobs
        .submit_job(SubmitJobRequest { spec: None })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "spec: is required")
    );
    let cycle = JobSpec::new(
        "cycle",
        vec![
            TaskSpec::new("a").after(keel_engine::GroupKind::AllOf, &["b"]),
            TaskSpec::new("b").after(keel_engine::GroupKind::AllOf, &["a"]),
        ],
    );
    let err = jobs
        .submit_job(SubmitJobRequest {
            spec: Some(job_spec_to_proto(&cycle)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("invalid_job: "),
        "{}",
        err.message()
    );
    let err = jobs
        .describe_job(DescribeJobRequest { job: 77 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn suspend(fence: Option<Fence>, waitpoint: &str) -> Command {
    Command::Suspend(Suspend {
        fence,
        waitpoint: waitpoint.into(),
        timeout_ms: None,
        on_timeout: SuspendTimeout::Unspecified as i32,
    })
}

/// Registers `w1`, takes the only task of a fresh one-task job and returns its fence.
async fn lease_one(cluster: &Cluster) -> (RawSession, u64, Fence) {
    let mut jobs = cluster.client().jobs().await.unwrap();
    let spec = JobSpec::new("one", vec![TaskSpec::new("t")]);
    let job = submit(&mut jobs, &spec).await.job;
    let mut s = RawSession::open(cluster, vec![register("w1")])
        .await
        .unwrap();
    assert!(matches!(s.reply(1).await, reply::Result::Registered(_)));
    s.send(vec![Command::RequestWork(RequestWork { credits: 1 })]);
    let offer = loop {
        if let Event::GrantOffered(offer) = s.next_event().await {
            break offer;
        }
    };
    let seq = s.send(vec![Command::AcceptGrant(AcceptGrant {
        grant: offer.grant,
    })]);
    let reply::Result::LeaseStarted(started) = s.reply(seq).await else {
        panic!("the accept was refused");
    };
    (s, job, started.fence.unwrap())
}

async fn refused(session: &mut RawSession, command: Command) -> Refusal {
    let seq = session.send(vec![command]);
    match session.reply(seq).await {
        reply::Result::Refused(refusal) => refusal,
        other => panic!("accepted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_checks_the_fence_and_names_bad_fields() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (mut s, _, fence) = lease_one(&cluster).await;

    let no_fence = refused(&mut s, suspend(None, "approval")).await;
    assert_eq!(no_fence.status, Code::InvalidArgument as i32);
    assert_eq!(no_fence.message, "suspend.fence: is required");
    let no_name = refused(&mut s, suspend(Some(fence), "")).await;
    assert_eq!(no_name.status, Code::InvalidArgument as i32);
    assert_eq!(no_name.message, "suspend.waitpoint: empty");
    let stale = Fence {
        epoch: fence.epoch + 1,
        ..fence
    };
    let stale = refused(&mut s, suspend(Some(stale), "approval")).await;
    assert_eq!(
        (stale.status, stale.reason.as_str()),
        (Code::FailedPrecondition as i32, "stale_fence")
    );

    let seq = s.send(vec![suspend(Some(fence), "approval")]);
    let reply::Result::Suspended(done) = s.reply(seq).await else {
        panic!("the suspension was refused");
    };
    assert!(!done.duplicate);
    let seq = s.send(vec![suspend(Some(fence), "approval")]);
    let reply::Result::Suspended(again) = s.reply(seq).await else {
        panic!("a replayed suspension was refused");
    };
    assert!(again.duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_are_checked_and_resume_the_task_with_a_new_grant() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (mut s, job, fence) = lease_one(&cluster).await;
    let seq = s.send(vec![
        suspend(Some(fence), "approval"),
        Command::RequestWork(RequestWork { credits: 1 }),
    ]);
    assert!(matches!(
        s.reply(seq - 1).await,
        reply::Result::Suspended(_)
    ));
    let mut jobs = cluster.client().jobs().await.unwrap();
    let signal = SignalTaskRequest {
        job,
        task: fence.task,
        waitpoint: "approval".into(),
        idempotency_key: "k1".into(),
        payload: b"approved".to_vec(),
    };
    let fails = [
        (
            SignalTaskRequest {
                idempotency_key: String::new(),
                ..signal.clone()
            },
            Code::InvalidArgument,
            "idempotency_key: empty",
        ),
        (
            SignalTaskRequest {
                task: 0,
                ..signal.clone()
            },
            Code::InvalidArgument,
            "task: is required",
        ),
        (
            SignalTaskRequest {
                job: job + 1,
                ..signal.clone()
            },
            Code::NotFound,
            "unknown_task: ",
        ),
        (
            SignalTaskRequest {
                waitpoint: "other".into(),
                ..signal.clone()
            },
            Code::FailedPrecondition,
            "not_waiting: ",
        ),
        (
            SignalTaskRequest {
                payload: vec![0; (1 << 20) + 1],
                ..signal.clone()
            },
            Code::ResourceExhausted,
            "too_large: ",
        ),
    ];
    for (request, code, message) in fails {
        let err = jobs.signal_task(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(err.message().starts_with(message), "{}", err.message());
    }

    let sent = jobs.signal_task(signal).await.unwrap().into_inner();
    assert!(sent.resumed && !sent.duplicate);
    let offer = loop {
        if let Event::GrantOffered(offer) = s.next_event().await {
            break offer;
        }
    };
    assert_eq!((offer.task, offer.attempt), (fence.task, fence.attempt));
}
