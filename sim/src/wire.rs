//! The worker machine's commands and events in the engine's terms: what a simulated
//! worker sends is an engine `WorkerCommand`, and what reaches it is an engine reply or
//! effect, as the coordinator's gRPC service would translate them.

use keel_engine::{Accepted, Effect, Payload, Rejection, WorkerCommand};
use keel_protocol::worker::{Answer, Command, Event, Offer, Refusal, Registered};

/// `command` as the engine takes it; `None` for progress, which never reaches the
/// engine.
pub(crate) fn command(command: Command) -> Option<WorkerCommand> {
    Some(match command {
        Command::Register {
            capabilities,
            lanes,
            max_concurrency,
            ..
        } => WorkerCommand::Register {
            capabilities,
            lanes,
            max_concurrency,
        },
        Command::Heartbeat => WorkerCommand::Heartbeat,
        Command::RequestWork { credits } => WorkerCommand::RequestWork { credits },
        Command::Drain => WorkerCommand::Drain,
        Command::Deregister => WorkerCommand::Deregister,
        Command::AcceptGrant { grant } => WorkerCommand::AcceptGrant { grant },
        Command::ReleaseGrant { grant } => WorkerCommand::ReleaseGrant { grant },
        Command::Renew { fence } => WorkerCommand::Renew { fence },
        Command::Complete { fence, output } => WorkerCommand::Complete {
            fence,
            output: Payload::from(output),
        },
        Command::Fail {
            fence,
            error,
            permanent,
        } => WorkerCommand::Fail {
            fence,
            error,
            permanent,
        },
        Command::Suspend {
            fence,
            waitpoint,
            timeout_ms,
            on_timeout,
        } => WorkerCommand::Suspend {
            fence,
            waitpoint,
            timeout_ms,
            on_timeout,
        },
        Command::Progress { .. } => return None,
    })
}

/// The engine's reply as the machine reads it; a registration carries the cadences
/// the coordinator announces.
pub(crate) fn answer(reply: &Result<Accepted, Rejection>, cadence: Registered) -> Answer {
    match reply {
        Ok(Accepted::Registered { .. }) => Answer::Registered(cadence),
        Ok(Accepted::LeaseStarted { fence, .. }) => Answer::LeaseStarted { fence: *fence },
        Ok(Accepted::Renewed { .. }) => Answer::Renewed,
        Ok(Accepted::Completed { .. }) => Answer::Completed,
        Ok(Accepted::Failed { .. }) => Answer::Failed,
        Ok(Accepted::Suspended { .. }) => Answer::Suspended,
        Ok(_) => Answer::Done,
        Err(r) => {
            let current = match r {
                Rejection::StaleInstance { current, .. } => Some(*current),
                _ => None,
            };
            Answer::Refused(Refusal::from_code(r.code(), r.to_string(), current))
        }
    }
}

/// An effect addressed to a worker as the machine reads it; `None` for what needs no
/// decision.
pub(crate) fn event(effect: &Effect) -> Option<Event> {
    Some(match effect {
        Effect::GrantOffered {
            grant,
            job,
            task,
            key,
            attempt,
            payload,
            inputs,
            signal,
            streams,
            ..
        } => Event::GrantOffered(Offer {
            grant: *grant,
            job: *job,
            task: *task,
            key: key.clone(),
            attempt: *attempt,
            payload: payload.as_bytes().to_vec(),
            inputs: inputs.clone(),
            signal: signal.as_ref().map(|p| p.as_bytes().to_vec()),
            streams: streams.clone(),
        }),
        Effect::GrantWithdrawn { grant, .. } => Event::GrantWithdrawn { grant: *grant },
        Effect::LeaseRevoked { fence, .. } => Event::LeaseRevoked { fence: *fence },
        Effect::WorkerLost { instance, .. } => Event::Lost {
            instance: Some(*instance),
        },
        Effect::WorkerReadmitted { .. } => Event::Readmitted,
        _ => return None,
    })
}
