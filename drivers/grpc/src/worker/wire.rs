//! The worker machine's commands and events in `keel.v1` terms.

use super::task::Outcome;
use crate::convert::{fence_from_proto, fence_to_proto, suspend_timeout_to_proto};
use crate::proto::coordinator_event::Event as ProtoEvent;
use crate::proto::worker_command::Command as ProtoCommand;
use crate::proto::{self, reply, worker_notice};
use keel_engine::{Fence, GrantId, InstanceId, JobId, Payload, TaskId, TaskInput};
use keel_protocol::worker as machine;
use machine::{Answer, Command, Event, Offer, Refusal, Registered};

/// The frame limit assumed from a coordinator that does not announce one: tonic's
/// default for what a server decodes.
pub(crate) const DEFAULT_FRAME_BYTES: u64 = 4 << 20;

/// `command` as it goes on the wire, from worker `worker_id`.
pub(crate) fn command(seq: u64, command: Command, worker_id: &str) -> proto::WorkerCommand {
    let fence = |f: Fence| Some(fence_to_proto(f));
    let command = match command {
        Command::Register {
            instance,
            capabilities,
            lanes,
            max_concurrency,
        } => ProtoCommand::Register(proto::Register {
            worker_id: worker_id.to_string(),
            instance: instance.get(),
            capabilities,
            lanes,
            max_concurrency,
        }),
        Command::Heartbeat => ProtoCommand::Heartbeat(proto::Heartbeat {}),
        Command::RequestWork { credits } => {
            ProtoCommand::RequestWork(proto::RequestWork { credits })
        }
        Command::Drain => ProtoCommand::Drain(proto::Drain {}),
        Command::Deregister => ProtoCommand::Deregister(proto::Deregister {}),
        Command::AcceptGrant { grant } => {
            ProtoCommand::AcceptGrant(proto::AcceptGrant { grant: grant.get() })
        }
        Command::ReleaseGrant { grant } => {
            ProtoCommand::ReleaseGrant(proto::ReleaseGrant { grant: grant.get() })
        }
        Command::Renew { fence: f } => ProtoCommand::Renew(proto::Renew { fence: fence(f) }),
        Command::Complete { fence: f, output } => ProtoCommand::Complete(proto::Complete {
            fence: fence(f),
            output,
        }),
        Command::Fail {
            fence: f,
            error,
            permanent,
        } => ProtoCommand::Fail(proto::Fail {
            fence: fence(f),
            error,
            permanent,
        }),
        Command::Suspend {
            fence: f,
            waitpoint,
            timeout_ms,
            on_timeout,
        } => ProtoCommand::Suspend(proto::Suspend {
            fence: fence(f),
            waitpoint,
            timeout_ms,
            on_timeout: suspend_timeout_to_proto(on_timeout) as i32,
        }),
        Command::Progress {
            fence: f,
            per_mille,
            message,
        } => ProtoCommand::Progress(proto::Progress {
            fence: fence(f),
            done_per_mille: per_mille,
            message,
        }),
    };
    proto::WorkerCommand {
        seq,
        command: Some(command),
    }
}

/// A refusal as the machine reads it.
pub(crate) fn refusal(r: &proto::Refusal) -> Refusal {
    let current = r.current_instance.map(InstanceId::new);
    Refusal::from_code(&r.reason, r.message.clone(), current)
}

/// `event` as the machine reads it; `None` for what needs no decision. A registration's
/// frame limit is the smaller of the coordinator's (announced or assumed) and
/// `own_frame_bytes`.
pub(crate) fn event(event: proto::CoordinatorEvent, own_frame_bytes: u64) -> Option<Event> {
    Some(match event.event? {
        ProtoEvent::Reply(r) => Event::Reply {
            seq: r.seq,
            answer: answer(r.result, own_frame_bytes),
        },
        ProtoEvent::GrantOffered(o) => Event::GrantOffered(Offer {
            grant: GrantId::new(o.grant),
            job: JobId::new(o.job),
            task: TaskId::new(o.task),
            key: o.key,
            attempt: o.attempt,
            payload: o.payload,
            inputs: o
                .inputs
                .into_iter()
                .map(|i| TaskInput {
                    key: i.key,
                    output: i.output.map(Payload::from),
                })
                .collect(),
            signal: o.signal_payload,
            streams: o.stream_from,
        }),
        ProtoEvent::GrantWithdrawn(w) => Event::GrantWithdrawn {
            grant: GrantId::new(w.grant),
        },
        ProtoEvent::LeaseRevoked(r) => Event::LeaseRevoked {
            fence: fence_from_proto(r.fence.as_ref()?),
        },
        ProtoEvent::Notice(n) if n.kind == worker_notice::Kind::Lost as i32 => {
            Event::Lost { instance: None }
        }
        ProtoEvent::Notice(n) if n.kind == worker_notice::Kind::Readmitted as i32 => {
            Event::Readmitted
        }
        ProtoEvent::Notice(_) => return None,
    })
}

fn answer(result: Option<reply::Result>, own_frame_bytes: u64) -> Answer {
    let Some(result) = result else {
        return Answer::Done;
    };
    match result {
        reply::Result::Refused(r) => Answer::Refused(refusal(&r)),
        reply::Result::Registered(r) => {
            let announced = match r.max_message_bytes {
                0 => DEFAULT_FRAME_BYTES,
                n => n,
            };
            Answer::Registered(Registered {
                lease_ttl_ms: r.lease_ttl_ms.max(30),
                liveness_timeout_ms: r.liveness_timeout_ms.max(30),
                frame_bytes: Some(announced.min(own_frame_bytes)),
            })
        }
        reply::Result::Ok(_) => Answer::Done,
        // A lease without a fence cannot be presented again: it is refused as such.
        reply::Result::LeaseStarted(s) => match s.fence.as_ref().map(fence_from_proto) {
            Some(fence) => Answer::LeaseStarted { fence },
            None => Answer::Refused(Refusal::from_code(
                "invalid_argument",
                "a lease without a fence".into(),
                None,
            )),
        },
        reply::Result::Renewed(_) => Answer::Renewed,
        reply::Result::Completed(_) => Answer::Completed,
        reply::Result::Failed(_) => Answer::Failed,
        reply::Result::Suspended(_) => Answer::Suspended,
        // Usage reports are the shell's own (`worker::usage`): it takes their replies
        // before the machine hears anything, so this one answers nothing it sent.
        reply::Result::UsageRecorded(_) => Answer::Done,
        // Emits are the shell's own too (`worker::emits`).
        reply::Result::Emitted(_) => Answer::Done,
        // And acknowledgements of streaming edges (`worker::acks`).
        reply::Result::Acked(_) => Answer::Done,
    }
}

/// A handler's outcome as the machine keeps it.
pub(crate) fn outcome(o: Outcome) -> machine::Outcome {
    match o {
        Outcome::Complete(output) => machine::Outcome::Complete(output),
        Outcome::Fail { error, permanent } => machine::Outcome::Fail { error, permanent },
        Outcome::Suspend {
            waitpoint,
            timeout,
            on_timeout,
        } => machine::Outcome::Suspend {
            waitpoint,
            timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            on_timeout,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{Effect, WorkerId};

    fn offer_through_the_wire(effect: Effect) -> Offer {
        let event = crate::convert::worker_event(effect).expect("a worker event");
        let event = proto::CoordinatorEvent { event: Some(event) };
        match super::event(event, u64::MAX) {
            Some(Event::GrantOffered(offer)) => offer,
            other => panic!("expected an offer, got {other:?}"),
        }
    }

    #[test]
    fn a_grant_keeps_its_inputs_and_signal_payload_across_the_wire() {
        let inputs = vec![
            TaskInput {
                key: "full".into(),
                output: Some(Payload::from("data")),
            },
            TaskInput {
                key: "empty".into(),
                output: Some(Payload::from("")),
            },
            TaskInput {
                key: "absent".into(),
                output: None,
            },
        ];
        let offer = offer_through_the_wire(Effect::GrantOffered {
            worker: WorkerId::new("w"),
            grant: GrantId::new(1),
            job: JobId::new(2),
            task: TaskId::new(3),
            key: "t".into(),
            attempt: 1,
            payload: Payload::from("p"),
            inputs: inputs.clone(),
            signal: Some(Payload::from("")),
            streams: vec!["log".into()],
            expires_at: 9,
        });
        assert_eq!(
            offer.inputs, inputs,
            "empty stays empty, absent stays absent"
        );
        assert_eq!(offer.signal, Some(Vec::new()));
        assert_eq!(offer.streams, ["log"]);
    }

    #[test]
    fn a_grant_from_a_coordinator_without_inputs_carries_none() {
        let old = proto::GrantOffered {
            grant: 1,
            job: 2,
            task: 3,
            attempt: 1,
            key: "t".into(),
            ..proto::GrantOffered::default()
        };
        let event = proto::CoordinatorEvent {
            event: Some(ProtoEvent::GrantOffered(old)),
        };
        let Some(Event::GrantOffered(offer)) = super::event(event, u64::MAX) else {
            panic!("expected an offer");
        };
        assert_eq!((offer.inputs, offer.signal), (vec![], None));
    }
}
