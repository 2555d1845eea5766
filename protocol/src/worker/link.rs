//! The machine's connection: asking for one, registering on it, giving it up, and
//! giving up an instance for the next one.

use super::machine::{Link, Sent, WorkerMachine};
use super::types::*;
use keel_engine::{Fence, GrantId, InstanceId};

impl WorkerMachine {
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

    pub(super) fn go_down(&mut self, now: Time) {
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

    /// Gives this instance up and registers the next one after a pause: handlers stop
    /// and unanswered outcomes are dropped (the coordinator requeues those attempts).
    pub fn new_instance(&mut self, now: Time, out: &mut Vec<Output>) {
        let next = InstanceId::new(self.instance.get().saturating_add(1));
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
}
