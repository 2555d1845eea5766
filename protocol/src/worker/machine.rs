//! The machine's state, its connection and its clock: connecting and registering,
//! timers (heartbeats, renewals, lease trust, answers overdue, reconnects, drain), and
//! the commands sent after each input.

use super::backoff::Backoff;
use super::types::*;
use keel_engine::{Fence, GrantId, InstanceId, TaskId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Fences of leases started lately, so a duplicated offer or answer cannot start an
/// attempt twice. A duplicate arrives within a network delay; this many is plenty.
const RECENT_STARTS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// No connection; ask for one at `retry_at`.
    Down {
        retry_at: Time,
    },
    /// The shell is connecting.
    Connecting,
    /// Connected; the registration awaits its answer.
    Registering,
    /// Registered.
    Up,
    Stopped,
}

/// What a sent command was, so its answer can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sent {
    Register,
    Accept(GrantId),
    Report(Fence),
    Renew(Fence),
    Deregister,
    /// Answered, but the answer changes nothing beyond the session's liveness.
    Other,
    /// Progress: answered, but advisory, so never waited for.
    Advisory,
}

impl Sent {
    /// Whether a missing answer means the connection is broken. A lost renewal only
    /// costs the lease's trust, which lapses by itself.
    fn awaited(self) -> bool {
        !matches!(self, Sent::Renew(_) | Sent::Advisory)
    }
}

pub(super) struct Pending {
    pub sent: Sent,
    pub at: Time,
}

pub(super) struct Accepting {
    pub offer: Offer,
    /// When the first accept was sent: a lease it started began no earlier.
    pub sent_at: Time,
}

pub(super) struct Running {
    pub grant: GrantId,
    pub fence: Fence,
    /// One TTL from when the accept or the last answered renewal was sent.
    pub lease_until: Time,
    pub renew_at: Time,
}

pub struct WorkerMachine {
    pub(super) config: Config,
    pub(super) instance: InstanceId,
    pub(super) link: Link,
    pub(super) backoff: Backoff,
    /// Learned at registration.
    pub(super) cadence: Registered,
    /// One liveness timeout from when the last answered command was sent.
    pub(super) session_until: Time,
    pub(super) next_seq: u64,
    pub(super) pending: BTreeMap<u64, Pending>,
    pub(super) accepting: BTreeMap<GrantId, Accepting>,
    pub(super) running: BTreeMap<TaskId, Running>,
    /// Outcomes not yet answered, by the attempt's fence: a resumed task's next
    /// outcome never replaces the one before it.
    pub(super) reports: BTreeMap<Fence, Outcome>,
    pub(super) started: BTreeSet<Fence>,
    pub(super) started_order: VecDeque<Fence>,
    pub(super) heartbeat_at: Time,
    pub(super) draining: bool,
    pub(super) drain_deadline: Option<Time>,
    /// Slots freed since the last work request; one request tops them up.
    pub(super) top_up: bool,
    pub(super) summary: Summary,
}

impl WorkerMachine {
    pub fn new(config: Config) -> WorkerMachine {
        let backoff = Backoff::new(
            config.backoff_min_ms,
            config.backoff_max_ms,
            config.jitter_seed,
        );
        WorkerMachine {
            instance: config.instance,
            config,
            link: Link::Down { retry_at: 0 },
            backoff,
            cadence: Registered {
                lease_ttl_ms: 3,
                liveness_timeout_ms: 3,
                frame_bytes: None,
            },
            session_until: 0,
            next_seq: 0,
            pending: BTreeMap::new(),
            accepting: BTreeMap::new(),
            running: BTreeMap::new(),
            reports: BTreeMap::new(),
            started: BTreeSet::new(),
            started_order: VecDeque::new(),
            heartbeat_at: 0,
            draining: false,
            drain_deadline: None,
            top_up: false,
            summary: Summary::default(),
        }
    }

    /// Starts the worker: it asks for a connection at once.
    pub fn start(&mut self, out: &mut Vec<Output>) {
        if matches!(self.link, Link::Down { .. }) {
            self.link = Link::Connecting;
            out.push(Output::Connect);
        }
    }

    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    pub fn summary(&self) -> Summary {
        self.summary
    }

    pub fn is_stopped(&self) -> bool {
        self.link == Link::Stopped
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Registered with the coordinator.
    pub fn is_registered(&self) -> bool {
        self.link == Link::Up
    }

    /// Nothing runs, nothing is being accepted and every outcome was answered.
    pub fn idle(&self) -> bool {
        self.running.is_empty() && self.reports.is_empty() && self.accepting.is_empty()
    }

    /// Free slots not already promised to an offer being accepted.
    pub fn credits(&self) -> u32 {
        if self.draining {
            return 0;
        }
        let busy = self.running.len().saturating_add(self.accepting.len());
        let busy = u32::try_from(busy).unwrap_or(u32::MAX);
        self.config.concurrency.saturating_sub(busy)
    }

    pub(super) fn connected_link(&self) -> bool {
        matches!(self.link, Link::Registering | Link::Up)
    }

    /// The shell opened a connection: register on it.
    pub fn connected(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.link != Link::Connecting {
            return;
        }
        self.link = Link::Registering;
        self.pending.clear();
        let register = Command::Register {
            instance: self.instance,
            capabilities: self.config.capabilities.clone(),
            lanes: self.config.lanes.clone(),
            max_concurrency: self.config.concurrency,
        };
        self.send(now, register, Sent::Register, out);
    }

    /// The connection broke, or could not be made: try again after a pause. Running
    /// handlers go on; their leases stay trusted only as long as they were.
    pub fn disconnected(&mut self, now: Time, out: &mut Vec<Output>) {
        if matches!(self.link, Link::Down { .. } | Link::Stopped) {
            return;
        }
        self.summary.reconnects += 1;
        self.go_down(now);
        self.flush(now, out);
    }

    /// Drops the connection from this side (the coordinator went silent, or refused
    /// the registration for now).
    pub(super) fn drop_connection(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.connected_link() || self.link == Link::Connecting {
            out.push(Output::Disconnect);
        }
        self.summary.reconnects += 1;
        self.go_down(now);
    }

    fn go_down(&mut self, now: Time) {
        self.pending.clear();
        let pause = self.backoff.next_pause();
        self.link = Link::Down {
            retry_at: now.saturating_add(pause),
        };
    }

    /// The answer to a registration: the cadences are known; send what waited for a
    /// connection (outcomes, accepts), then ask for work or say this worker drains.
    pub(super) fn registered(
        &mut self,
        now: Time,
        sent_at: Time,
        reg: Registered,
        out: &mut Vec<Output>,
    ) {
        self.link = Link::Up;
        self.backoff.reset();
        self.cadence = Registered {
            lease_ttl_ms: reg.lease_ttl_ms.max(3),
            liveness_timeout_ms: reg.liveness_timeout_ms.max(3),
            frame_bytes: reg.frame_bytes,
        };
        self.heartbeat_at = now.saturating_add(self.heartbeat_every());
        let liveness = self.cadence.liveness_timeout_ms;
        self.extend_session(sent_at.saturating_add(liveness), out);
        let reports: Vec<(Fence, Outcome)> =
            self.reports.iter().map(|(f, o)| (*f, o.clone())).collect();
        for (fence, outcome) in reports {
            self.send_report(now, fence, outcome, out);
        }
        let grants: Vec<GrantId> = self.accepting.keys().copied().collect();
        for grant in grants {
            self.send(
                now,
                Command::AcceptGrant { grant },
                Sent::Accept(grant),
                out,
            );
        }
        if self.draining {
            self.send(now, Command::Drain, Sent::Other, out);
        } else {
            self.top_up = true;
        }
    }

    fn heartbeat_every(&self) -> u64 {
        (self.cadence.liveness_timeout_ms / 3).max(1)
    }

    pub(super) fn renew_every(&self) -> u64 {
        (self.cadence.lease_ttl_ms / 3).max(1)
    }

    /// Sends `command` if connected; returns its seq.
    pub(super) fn send(
        &mut self,
        now: Time,
        command: Command,
        sent: Sent,
        out: &mut Vec<Output>,
    ) -> Option<u64> {
        if !self.connected_link() {
            return None;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.pending.insert(seq, Pending { sent, at: now });
        out.push(Output::Send { seq, command });
        Some(seq)
    }

    /// How long `r` is trusted: its lease's deadline or the session's, the earlier.
    pub(super) fn trusted_until(&self, r: &Running) -> Time {
        r.lease_until.min(self.session_until)
    }

    pub(super) fn extend_session(&mut self, until: Time, out: &mut Vec<Output>) {
        if until <= self.session_until {
            return;
        }
        self.session_until = until;
        for r in self.running.values() {
            let until = Some((r.fence, self.trusted_until(r)));
            out.push(Output::Trust {
                task: r.fence.task,
                until,
            });
        }
    }

    /// When the machine next needs `on_timer`, if ever.
    pub fn next_timeout(&self) -> Option<Time> {
        let mut next: Option<Time> = None;
        let mut at = |t: Time| next = Some(next.map_or(t, |n| n.min(t)));
        match self.link {
            Link::Stopped => return None,
            Link::Down { retry_at } => at(retry_at),
            _ => {}
        }
        for r in self.running.values() {
            at(self.trusted_until(r));
            if self.link == Link::Up {
                at(r.renew_at);
            }
        }
        if let Some(p) = self.pending.values().find(|p| p.sent.awaited()) {
            at(p.at.saturating_add(self.config.answer_timeout_ms));
        }
        if self.link == Link::Up {
            at(self.heartbeat_at);
        }
        if let Some(d) = self.drain_deadline {
            at(d);
        }
        next
    }

    /// Does what is due at `now`.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.link == Link::Stopped {
            return;
        }
        self.expire_trust(now, out);
        if self.drain_deadline.is_some_and(|d| d <= now) {
            self.drain_deadline = None;
            self.cancel_running(true, out);
            if !self.connected_link() {
                return self.stop(Stop::Finished, out);
            }
        }
        if let Link::Down { retry_at } = self.link {
            if retry_at <= now {
                self.link = Link::Connecting;
                out.push(Output::Connect);
            }
        }
        self.overdue_answers(now, out);
        if self.link == Link::Up {
            if self.heartbeat_at <= now {
                self.heartbeat_at = now.saturating_add(self.heartbeat_every());
                self.send(now, Command::Heartbeat, Sent::Other, out);
                // Free slots are asked for again with every heartbeat: an offer that
                // never arrived (or a request that was lost) would otherwise hold the
                // worker's credits at the coordinator for ever.
                if self.credits() > 0 {
                    self.top_up = true;
                }
            }
            self.renew_due(now, out);
        }
        self.flush(now, out);
    }

    /// Stops every handler whose lease is no longer trusted at `now`.
    fn expire_trust(&mut self, now: Time, out: &mut Vec<Output>) {
        let expired: Vec<Fence> = self
            .running
            .values()
            .filter(|r| self.trusted_until(r) <= now)
            .map(|r| r.fence)
            .collect();
        for fence in expired {
            self.stop_attempt(fence, out);
        }
    }

    /// A command unanswered for the answer timeout means the connection is broken
    /// (a deregistration while draining: the coordinator is gone, so the worker is
    /// done). Renewals unanswered that long are forgotten.
    fn overdue_answers(&mut self, now: Time, out: &mut Vec<Output>) {
        let timeout = self.config.answer_timeout_ms;
        let overdue = |p: &Pending| p.at.saturating_add(timeout) <= now;
        self.pending.retain(|_, p| p.sent.awaited() || !overdue(p));
        let Some(first) = self.pending.values().find(|p| p.sent.awaited()) else {
            return;
        };
        if !overdue(first) {
            return;
        }
        if self.draining && self.pending.values().any(|p| p.sent == Sent::Deregister) {
            return self.stop(Stop::Finished, out);
        }
        self.drop_connection(now, out);
    }

    fn renew_due(&mut self, now: Time, out: &mut Vec<Output>) {
        let every = self.renew_every();
        let due: Vec<Fence> = self
            .running
            .values_mut()
            .filter(|r| r.renew_at <= now)
            .map(|r| {
                r.renew_at = now.saturating_add(every);
                r.fence
            })
            .collect();
        for fence in due {
            self.send(now, Command::Renew { fence }, Sent::Renew(fence), out);
        }
    }

    /// Stops accepting work; running handlers finish (up to the drain timeout) and
    /// report, and then the worker deregisters.
    pub fn drain(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.draining || self.link == Link::Stopped {
            return;
        }
        self.draining = true;
        self.drain_deadline = Some(now.saturating_add(self.config.drain_timeout_ms));
        self.send(now, Command::Drain, Sent::Other, out);
        self.flush(now, out);
    }

    /// What every input ends with: top up credits freed meanwhile, and deregister (or
    /// stop) once a drain has nothing left.
    pub(super) fn flush(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.link == Link::Stopped {
            return;
        }
        if self.draining && self.idle() {
            if self.link == Link::Up {
                if !self.pending.values().any(|p| p.sent == Sent::Deregister) {
                    self.send(now, Command::Deregister, Sent::Deregister, out);
                }
            } else if matches!(self.link, Link::Down { .. }) {
                self.stop(Stop::Finished, out);
            }
            return;
        }
        if self.link == Link::Up && std::mem::take(&mut self.top_up) && !self.draining {
            let credits = self.credits();
            self.send(now, Command::RequestWork { credits }, Sent::Other, out);
        }
    }

    pub(super) fn stop(&mut self, why: Stop, out: &mut Vec<Output>) {
        self.cancel_running(false, out);
        if self.connected_link() || self.link == Link::Connecting {
            out.push(Output::Disconnect);
        }
        self.link = Link::Stopped;
        self.pending.clear();
        out.push(Output::Stopped(why));
    }

    /// Cancels every handler; `revoked` counts them as stopped for want of a lease.
    pub(super) fn cancel_running(&mut self, revoked: bool, out: &mut Vec<Output>) {
        for (task, r) in std::mem::take(&mut self.running) {
            out.push(Output::Cancel(r.fence));
            out.push(Output::Trust { task, until: None });
            if revoked {
                self.summary.revoked += 1;
            }
        }
    }

    /// Stops the handler running `fence`, if it still is.
    pub(super) fn stop_attempt(&mut self, fence: Fence, out: &mut Vec<Output>) {
        if self
            .running
            .get(&fence.task)
            .is_some_and(|r| r.fence == fence)
        {
            self.running.remove(&fence.task);
            out.push(Output::Cancel(fence));
            out.push(Output::Trust {
                task: fence.task,
                until: None,
            });
            self.summary.revoked += 1;
            self.top_up = true;
        }
    }

    /// Gives this instance up and registers the next one after a pause: handlers stop
    /// and unanswered outcomes are dropped (the coordinator requeues those attempts).
    pub fn new_instance(&mut self, now: Time, out: &mut Vec<Output>) {
        let next = InstanceId(self.instance.0.saturating_add(1));
        self.replace_instance(now, next, out);
    }

    pub(super) fn replace_instance(&mut self, now: Time, next: InstanceId, out: &mut Vec<Output>) {
        if self.link == Link::Stopped {
            return;
        }
        self.cancel_running(false, out);
        self.reports.clear();
        self.accepting.clear();
        self.top_up = false;
        self.session_until = 0;
        self.instance = next;
        if self.connected_link() || self.link == Link::Connecting {
            out.push(Output::Disconnect);
        }
        self.go_down(now);
        self.flush(now, out);
    }

    /// A handler ended: with its outcome, or `None` if it was cancelled.
    pub fn handler_finished(
        &mut self,
        now: Time,
        fence: Fence,
        outcome: Option<Outcome>,
        out: &mut Vec<Output>,
    ) {
        if self
            .running
            .get(&fence.task)
            .is_none_or(|r| r.fence != fence)
        {
            return;
        }
        self.running.remove(&fence.task);
        out.push(Output::Trust {
            task: fence.task,
            until: None,
        });
        self.top_up = true;
        if let Some(outcome) = outcome {
            self.send_report(now, fence, outcome, out);
        }
        self.flush(now, out);
    }

    /// A running handler's progress, for the job's watchers; dropped while not
    /// connected (it is advisory).
    pub fn progress(
        &mut self,
        now: Time,
        fence: Fence,
        per_mille: u32,
        message: String,
        out: &mut Vec<Output>,
    ) {
        if self
            .running
            .get(&fence.task)
            .is_some_and(|r| r.fence == fence)
        {
            let message = cut(message, self.config.max_progress_bytes);
            let per_mille = per_mille.min(1000);
            let command = Command::Progress {
                fence,
                per_mille,
                message,
            };
            self.send(now, command, Sent::Advisory, out);
        }
    }

    /// Remembers that `fence` started; false if it already had.
    pub(super) fn first_start(&mut self, fence: Fence) -> bool {
        if !self.started.insert(fence) {
            return false;
        }
        self.started_order.push_back(fence);
        if self.started_order.len() > RECENT_STARTS {
            if let Some(old) = self.started_order.pop_front() {
                self.started.remove(&old);
            }
        }
        true
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(super) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
