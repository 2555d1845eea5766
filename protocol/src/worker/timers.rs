//! The machine's clock: what is due when (reconnects, lease trust, answers overdue,
//! heartbeats, renewals, the drain's deadline), and doing it.

use super::machine::{Link, Pending, Sent, WorkerMachine};
use super::types::*;
use keel_engine::Fence;

impl WorkerMachine {
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
}
