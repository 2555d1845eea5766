//! The tokio shell around the worker machine: it keeps the machine's clock (milliseconds
//! since the worker started), turns frames, handler notes and shutdown into the
//! machine's inputs, and carries out its outputs: sessions opened and closed, commands
//! sent in frames under the coordinator's size limit, handlers spawned and cancelled.

use super::frames::split_frames;
use super::session::{self, Failed, Inbound, Session};
use super::side::SideReports;
use super::task::{Note, Task};
use super::{wire, Handler, Summary, WorkerConfig, WorkerError};
use crate::proto::{self, reply, CoordinatorEvent};
use crate::status::refusal_of;
use keel_engine::Fence;
use keel_protocol::worker::{Answer, Assignment, Event, Output, Refusal, Stop, WorkerMachine};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc::{self, OwnedPermit};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;

pub(crate) struct Shell<H> {
    config: WorkerConfig,
    machine: WorkerMachine,
    origin: Instant,
    handler: Arc<H>,
    notes: mpsc::Sender<Note>,
    handlers: BTreeMap<Fence, CancellationToken>,
    session: Option<Session>,
    /// The frame limit learned at registration; until then, the client's own.
    frame_bytes: u64,
    own_frame_bytes: u64,
    /// The registration waiting for the session call to be answered.
    registering: Option<u64>,
    /// Whether the current session's registration was accepted, so usage reports
    /// may be sent on it.
    registered: bool,
    sides: SideReports,
    stopped: Option<Stop>,
}

impl<H: Handler> Shell<H> {
    pub(super) fn new(
        config: WorkerConfig,
        machine: WorkerMachine,
        handler: H,
        notes: mpsc::Sender<Note>,
    ) -> Self {
        let own = config
            .client
            .max_message_bytes
            .unwrap_or(crate::client::DEFAULT_MAX_MESSAGE_BYTES);
        let own_frame_bytes = u64::try_from(own).unwrap_or(u64::MAX);
        Shell {
            config,
            machine,
            origin: Instant::now(),
            handler: Arc::new(handler),
            notes,
            handlers: BTreeMap::new(),
            session: None,
            frame_bytes: own_frame_bytes,
            own_frame_bytes,
            registering: None,
            registered: false,
            sides: SideReports::default(),
            stopped: None,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs the machine until it stops: drained and deregistered, or refused for good.
    pub(super) async fn run<F: Future<Output = ()>>(
        mut self,
        notes: &mut mpsc::Receiver<Note>,
        mut shutdown: Pin<&mut F>,
    ) -> Result<Summary, WorkerError> {
        let mut out = Vec::new();
        self.machine.start(&mut out);
        loop {
            self.execute(&mut out);
            match self.stopped.take() {
                Some(Stop::Finished) => return Ok(self.machine.summary()),
                Some(Stop::Refused(why)) => {
                    self.cancel_handlers();
                    return Err(WorkerError::Refused(why));
                }
                None => {}
            }
            let deadline = self
                .machine
                .next_timeout()
                .map(|t| self.origin + Duration::from_millis(t));
            let draining = self.machine.is_draining();
            let waiting = self.session.as_ref().and_then(Session::waiting);
            tokio::select! {
                heard = next_on_session(&mut self.session) => {
                    if let Err(e) = self.on_session(heard, &mut out) {
                        self.cancel_handlers();
                        return Err(e);
                    }
                }
                Some(note) = notes.recv() => {
                    self.on_note(note, &mut out);
                    while let Ok(note) = notes.try_recv() {
                        self.on_note(note, &mut out);
                    }
                }
                permit = session::room(waiting) => self.send_waiting(permit, &mut out),
                _ = sleep_until(deadline) => {
                    let now = self.now();
                    self.machine.on_timer(now, &mut out);
                }
                _ = shutdown.as_mut(), if !draining => {
                    tracing::info!("draining");
                    let now = self.now();
                    self.machine.drain(now, &mut out);
                }
            }
        }
    }

    fn on_session(&mut self, heard: Heard, out: &mut Vec<Output>) -> Result<(), WorkerError> {
        let now = self.now();
        match heard {
            Heard::Frame(Ok(Some(frame))) => {
                for e in frame.events {
                    self.on_event(now, e, out);
                }
            }
            Heard::Frame(Ok(None)) => self.lost("the coordinator closed the session", out),
            Heard::Frame(Err(status)) => {
                self.lost(&format!("{:?}: {}", status.code(), status.message()), out)
            }
            Heard::Opened(opened) => self.on_opened(*opened, now, out)?,
        }
        Ok(())
    }

    fn on_opened(
        &mut self,
        opened: Result<Inbound, Failed>,
        now: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), WorkerError> {
        match opened {
            Ok(inbound) => {
                if let Some(session) = &mut self.session {
                    session.opening = None;
                    session.inbound = Some(inbound);
                }
            }
            Err(failed) => {
                self.session = None;
                match failed {
                    Failed::Fatal(e) => return Err(e),
                    Failed::Unreachable(why) => {
                        tracing::warn!(%why, "session lost");
                        self.machine.disconnected(now, out);
                    }
                    Failed::Refused(status) => self.refused(status, out)?,
                }
            }
        }
        Ok(())
    }

    fn on_event(&mut self, now: u64, event: CoordinatorEvent, out: &mut Vec<Output>) {
        let mut registered = false;
        if let Some(proto::coordinator_event::Event::Reply(r)) = &event.event {
            if SideReports::owns(r.seq) {
                self.sides.answered(r.seq, r.result.clone());
                return;
            }
            if let Some(reply::Result::Registered(_)) = &r.result {
                self.registering = None;
                registered = true;
            }
        }
        self.machine_event(now, event, out);
        if registered {
            self.registered = true;
            let resend = self.sides.unanswered();
            self.send(resend, out);
        }
    }

    fn machine_event(&mut self, now: u64, event: CoordinatorEvent, out: &mut Vec<Output>) {
        if let Some(event) = wire::event(event, self.own_frame_bytes) {
            if let Event::Reply {
                answer: Answer::Registered(reg),
                ..
            } = &event
            {
                self.frame_bytes = reg.frame_bytes.unwrap_or(self.own_frame_bytes);
                tracing::info!(instance = self.machine.instance().get(), "registered");
            }
            self.machine.on_event(now, event, out);
        }
    }

    fn on_note(&mut self, note: Note, out: &mut Vec<Output>) {
        let now = self.now();
        match note {
            Note::Done(fence, outcome) => {
                self.handlers.remove(&fence);
                let outcome = outcome.map(wire::outcome);
                self.machine.handler_finished(now, fence, outcome, out);
            }
            Note::Progress(fence, per_mille, message) => {
                self.machine.progress(now, fence, per_mille, message, out);
            }
            Note::Side(report) => {
                let command = self.sides.add(report);
                if self.registered {
                    self.send(vec![command], out);
                }
            }
        }
    }

    fn lost(&mut self, why: &str, out: &mut Vec<Output>) {
        tracing::warn!(%why, "session lost");
        self.session = None;
        self.registered = false;
        let now = self.now();
        self.machine.disconnected(now, out);
    }

    /// Carries out the machine's outputs, and those its answers lead to, until none
    /// is left.
    fn execute(&mut self, out: &mut Vec<Output>) {
        while !out.is_empty() {
            let batch = std::mem::take(out);
            let mut sends = Vec::new();
            for output in batch {
                match output {
                    Output::Send { seq, command } => {
                        sends.push(wire::command(seq, command, &self.config.worker_id));
                    }
                    Output::Connect => self.connect(out),
                    Output::Disconnect => {
                        self.registered = false;
                        if self.session.take().is_some() {
                            tracing::warn!("session given up: the coordinator did not answer in time, or this instance is replaced");
                        }
                        self.registering = None;
                    }
                    Output::Start(a) => self.start(a),
                    Output::Cancel(fence) => {
                        if let Some(token) = self.handlers.remove(&fence) {
                            tracing::warn!(task = %fence.task, attempt = fence.attempt, "stopping the handler: its lease is not this worker's anymore");
                            token.cancel();
                        }
                    }
                    Output::Trust { .. } => {}
                    Output::OutcomeRefused {
                        fence,
                        message,
                        instead,
                    } => {
                        tracing::warn!(task = %fence.task, attempt = fence.attempt, "the coordinator refused the attempt's outcome ({message}); {}", instead.words());
                    }
                    Output::Stopped(stop) => self.stopped = Some(stop),
                }
            }
            self.send(sends, out);
        }
    }

    /// Sends commands in frames under the coordinator's size limit, in order behind any
    /// still waiting for the transport.
    fn send(&mut self, commands: Vec<proto::WorkerCommand>, out: &mut Vec<Output>) {
        if commands.is_empty() {
            return;
        }
        let limit = self.frame_limit();
        let Some(session) = &mut self.session else {
            return;
        };
        if session.send(commands, limit).is_err() {
            self.lost("the session's sender closed", out);
        }
    }

    /// The transport has room for `permit`'s frame: sends what waits for it.
    fn send_waiting(
        &mut self,
        permit: Option<OwnedPermit<proto::WorkerFrame>>,
        out: &mut Vec<Output>,
    ) {
        let limit = self.frame_limit();
        let Some(session) = &mut self.session else {
            return;
        };
        let sent = match permit {
            Some(permit) => session.send_with(permit, limit),
            None => Err(session::Closed),
        };
        if sent.is_err() {
            self.lost("the session's sender closed", out);
        }
    }

    fn frame_limit(&self) -> usize {
        usize::try_from(self.frame_bytes).unwrap_or(usize::MAX)
    }

    /// Starts opening a session with the registration queued on it; the loop hears
    /// whether it opened. A refusal of the call itself is the registration's answer.
    fn connect(&mut self, out: &mut Vec<Output>) {
        self.registered = false;
        let now = self.now();
        let mut first = Vec::new();
        self.machine.connected(now, &mut first);
        let mut commands = Vec::new();
        for output in first {
            match output {
                Output::Send { seq, command } => {
                    self.registering = Some(seq);
                    commands.push(wire::command(seq, command, &self.config.worker_id));
                }
                other => out.push(other),
            }
        }
        let limit = usize::try_from(self.own_frame_bytes).unwrap_or(usize::MAX);
        self.session = Some(session::open(&self.config, split_frames(commands, limit)));
    }

    fn refused(&mut self, status: tonic::Status, out: &mut Vec<Output>) -> Result<(), WorkerError> {
        let now = self.now();
        let refusal = match (refusal_of(&status), status.code()) {
            (_, Code::Unauthenticated | Code::PermissionDenied) => {
                return Err(WorkerError::Refused(status.message().to_string()))
            }
            (Some(r), _) => Some(wire::refusal(&r)),
            (None, Code::InvalidArgument) => Some(Refusal::from_code(
                "invalid_argument",
                status.message().to_string(),
                None,
            )),
            (None, Code::FailedPrecondition) => Some(Refusal::from_code(
                "worker_lost",
                status.message().to_string(),
                None,
            )),
            (None, _) => None,
        };
        match (refusal, self.registering.take()) {
            (Some(refusal), Some(seq)) => {
                tracing::warn!(message = %refusal.message, "registration refused");
                let answer = Answer::Refused(refusal);
                self.machine
                    .on_event(now, Event::Reply { seq, answer }, out);
            }
            _ => {
                let why = format!("{:?}: {}", status.code(), status.message());
                tracing::warn!(%why, "session lost");
                self.machine.disconnected(now, out);
            }
        }
        Ok(())
    }

    fn start(&mut self, assignment: Assignment) {
        let Assignment {
            job,
            key,
            fence,
            payload,
            inputs,
            signal,
            streams,
        } = assignment;
        let cancel = CancellationToken::new();
        self.handlers.insert(fence, cancel.clone());
        let task = Task {
            job,
            key,
            task: fence.task,
            attempt: fence.attempt,
            fence,
            payload,
            inputs,
            signal,
            streams,
            client: self.config.client.clone(),
            cancel: cancel.clone(),
            notes: self.notes.clone(),
            emitted: tokio::sync::Mutex::new(0),
        };
        let handler = self.handler.clone();
        let span = tracing::info_span!("attempt", task = %fence.task, attempt = fence.attempt, epoch = fence.epoch);
        tokio::spawn(
            async move {
                let notes = task.notes.clone();
                let outcome = tokio::select! {
                    outcome = handler.run(task) => Some(outcome),
                    _ = cancel.cancelled() => None,
                };
                let _ = notes.send(Note::Done(fence, outcome)).await;
            }
            .instrument(span),
        );
    }

    fn cancel_handlers(&mut self) {
        for (_, token) in std::mem::take(&mut self.handlers) {
            token.cancel();
        }
    }
}

/// What the session said: a frame (or its end), or how opening it went.
enum Heard {
    Frame(Result<Option<proto::CoordinatorFrame>, tonic::Status>),
    Opened(Box<Result<Inbound, Failed>>),
}

/// The next thing the session has to say; never, without a session.
async fn next_on_session(session: &mut Option<Session>) -> Heard {
    match session {
        Some(Session {
            opening: Some(opening),
            ..
        }) => Heard::Opened(Box::new(opening.as_mut().await)),
        Some(Session {
            inbound: Some(inbound),
            ..
        }) => Heard::Frame(inbound.message().await),
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
