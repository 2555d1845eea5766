//! The machine's state, sending, and what every input ends with (work requests to top
//! up freed slots, a deregistration once a drain has nothing left); handlers' results,
//! drains and stopping. The connection is in `link.rs`, the clock in `timers.rs`, the
//! coordinator's answers in `replies.rs`.

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
    pub(super) fn awaited(self) -> bool {
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

/// The worker's side of the worker protocol, sans I/O: the SDK and the simulator feed
/// it events and times and carry out the outputs it returns.
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
    /// A machine that does nothing until `start`.
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

    /// The instance it registers as now; a new one replaces it after this one was lost or
    /// found stale.
    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    /// What it has done so far.
    pub fn summary(&self) -> Summary {
        self.summary
    }

    /// `Output::Stopped` was emitted; nothing more comes out.
    pub fn is_stopped(&self) -> bool {
        self.link == Link::Stopped
    }

    /// A drain was asked for: no new work is requested.
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

    pub(super) fn heartbeat_every(&self) -> u64 {
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
