//! What the coordinator says, and what the machine does about it: offers accepted or
//! released, leases started, renewed or revoked, outcomes answered, instances refused.

use super::machine::{cut, Accepting, Link, Running, Sent, WorkerMachine};
use super::types::*;
use keel_engine::{Fence, GrantId, InstanceId};

impl WorkerMachine {
    /// Handles one event from the coordinator.
    pub fn on_event(&mut self, now: Time, event: Event, out: &mut Vec<Output>) {
        if self.link == Link::Stopped {
            return;
        }
        match event {
            Event::Reply { seq, answer } => self.on_reply(now, seq, answer, out),
            Event::GrantOffered(offer) => self.offered(now, offer, out),
            Event::GrantWithdrawn { grant } => {
                if self.accepting.remove(&grant).is_some() {
                    self.top_up = true;
                }
            }
            Event::LeaseRevoked { fence } => self.stop_attempt(fence, out),
            Event::Lost { instance } => {
                if instance.is_none_or(|i| i == self.instance) {
                    self.instance_refused(now, None, out);
                }
            }
            Event::Readmitted => self.top_up = true,
        }
        self.flush(now, out);
    }

    /// Accepts an offer while there is a free slot; releases it otherwise. A repeated
    /// offer (a duplicated message) is ignored.
    fn offered(&mut self, now: Time, offer: Offer, out: &mut Vec<Output>) {
        let grant = offer.grant;
        let repeated = self.accepting.contains_key(&grant)
            || self
                .running
                .get(&offer.task)
                .is_some_and(|r| r.fence.attempt == offer.attempt && r.grant == grant);
        if repeated || !self.connected_link() {
            return;
        }
        if self.draining || self.credits() == 0 {
            self.send(now, Command::ReleaseGrant { grant }, Sent::Other, out);
            return;
        }
        let accepting = Accepting {
            offer,
            sent_at: now,
        };
        self.accepting.insert(grant, accepting);
        self.send(
            now,
            Command::AcceptGrant { grant },
            Sent::Accept(grant),
            out,
        );
    }

    fn on_reply(&mut self, now: Time, seq: u64, answer: Answer, out: &mut Vec<Output>) {
        let Some(pending) = self.pending.remove(&seq) else {
            return; // a duplicate, or an answer to a connection given up
        };
        let sent_at = pending.at;
        if let Answer::Refused(refusal) = &answer {
            match refusal.kind {
                RefusalKind::StaleInstance { current } => {
                    return self.instance_refused(now, current, out)
                }
                RefusalKind::Lost | RefusalKind::Conflict => {
                    return self.instance_refused(now, None, out)
                }
                _ => {}
            }
        } else {
            let until = sent_at.saturating_add(self.cadence.liveness_timeout_ms);
            if pending.sent != Sent::Register {
                self.extend_session(until, out);
            }
        }
        match (pending.sent, answer) {
            (Sent::Register, Answer::Registered(reg)) => self.registered(now, sent_at, reg, out),
            (Sent::Register, Answer::Refused(r)) if r.kind == RefusalKind::Invalid => {
                self.stop(Stop::Refused(r.message), out)
            }
            // Refused for now (a limit), or an answer that makes no sense: try later.
            (Sent::Register, _) => self.drop_connection(now, out),
            (Sent::Accept(grant), Answer::LeaseStarted { fence }) => {
                self.lease_started(now, grant, fence, out)
            }
            (Sent::Accept(grant), _) => {
                self.accepting.remove(&grant);
                self.top_up = true;
            }
            (Sent::Report(fence), answer) => self.report_answered(now, fence, answer, out),
            (Sent::Renew(fence), Answer::Renewed) => self.renewed(fence, sent_at, out),
            (Sent::Renew(fence), Answer::Refused(r)) if r.kind == RefusalKind::Fencing => {
                self.stop_attempt(fence, out)
            }
            (Sent::Deregister, _) if self.draining => self.stop(Stop::Finished, out),
            _ => {}
        }
    }

    /// This instance is refused or was declared lost: register the next one, past the
    /// coordinator's current instance when the refusal names it.
    fn instance_refused(&mut self, now: Time, current: Option<InstanceId>, out: &mut Vec<Output>) {
        self.summary.registrations_refused += 1;
        let past_current = current.map_or(0, |c| c.get().saturating_add(1));
        let next = self.instance.get().saturating_add(1).max(past_current);
        self.replace_instance(now, InstanceId::new(next), out);
    }

    /// An accept was answered with a lease: the handler starts, trusted for one TTL
    /// from when the accept was first sent.
    fn lease_started(&mut self, now: Time, grant: GrantId, fence: Fence, out: &mut Vec<Output>) {
        let Some(accepting) = self.accepting.remove(&grant) else {
            self.top_up = true;
            return;
        };
        if !self.first_start(fence) {
            self.top_up = true;
            return;
        }
        if let Some(old) = self.running.get(&fence.task).map(|r| r.fence) {
            self.stop_attempt(old, out);
        }
        let running = Running {
            grant,
            fence,
            lease_until: accepting.sent_at.saturating_add(self.cadence.lease_ttl_ms),
            renew_at: now.saturating_add(self.renew_every()),
        };
        let until = self.trusted_until(&running);
        self.running.insert(fence.task, running);
        out.push(Output::Start(Assignment {
            job: accepting.offer.job,
            key: accepting.offer.key,
            fence,
            payload: accepting.offer.payload,
            inputs: accepting.offer.inputs,
            signal: accepting.offer.signal,
            streams: accepting.offer.streams,
        }));
        out.push(Output::Trust {
            task: fence.task,
            until: Some((fence, until)),
        });
    }

    /// A renewal sent at `sent_at` was answered: the lease is trusted for one TTL
    /// from then (never less than it already was).
    fn renewed(&mut self, fence: Fence, sent_at: Time, out: &mut Vec<Output>) {
        let ttl = self.cadence.lease_ttl_ms;
        let session_until = self.session_until;
        let Some(r) = self
            .running
            .get_mut(&fence.task)
            .filter(|r| r.fence == fence)
        else {
            return;
        };
        r.lease_until = r.lease_until.max(sent_at.saturating_add(ttl));
        let until = r.lease_until.min(session_until);
        out.push(Output::Trust {
            task: fence.task,
            until: Some((fence, until)),
        });
    }

    /// Keeps `outcome` until answered and sends it (as it can be sent under the
    /// coordinator's frame limit).
    pub(super) fn send_report(
        &mut self,
        now: Time,
        fence: Fence,
        outcome: Outcome,
        out: &mut Vec<Output>,
    ) {
        let outcome = self.reportable(outcome);
        self.reports.insert(fence, outcome.clone());
        let command = match outcome {
            Outcome::Complete(output) => Command::Complete { fence, output },
            Outcome::Fail { error, permanent } => Command::Fail {
                fence,
                error,
                permanent,
            },
            Outcome::Suspend {
                waitpoint,
                timeout_ms,
                on_timeout,
            } => Command::Suspend {
                fence,
                waitpoint,
                // At least 1 ms: the coordinator refuses a zero timeout.
                timeout_ms: timeout_ms.map(|t| t.max(1)),
                on_timeout,
            },
        };
        self.send(now, command, Sent::Report(fence), out);
    }

    /// `outcome` as it can be reported: an output that cannot fit any frame becomes a
    /// permanent failure naming the limit (rather than being refused after every
    /// reconnect), and a failure's message is cut to what the coordinator accepts.
    fn reportable(&self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Complete(output) => {
                let Some(frame) = self.cadence.frame_bytes else {
                    return Outcome::Complete(output);
                };
                let room = frame.saturating_sub(self.config.frame_overhead_bytes);
                if output.len() as u64 <= room {
                    return Outcome::Complete(output);
                }
                let error = format!(
                    "the task's output of {} bytes does not fit the coordinator's max_message_bytes ({frame} bytes)",
                    output.len()
                );
                Outcome::Fail {
                    error: cut(error, self.config.max_error_bytes),
                    permanent: true,
                }
            }
            Outcome::Fail { error, permanent } => Outcome::Fail {
                error: cut(error, self.config.max_error_bytes),
                permanent,
            },
            other => other,
        }
    }

    fn report_answered(&mut self, now: Time, fence: Fence, answer: Answer, out: &mut Vec<Output>) {
        let Answer::Refused(r) = answer else {
            if self.reports.remove(&fence).is_some() {
                match answer {
                    Answer::Failed => self.summary.failed += 1,
                    Answer::Suspended => self.summary.suspended += 1,
                    _ => self.summary.completed += 1,
                }
            }
            return;
        };
        let reported = match self.reports.get(&fence) {
            Some(Outcome::Complete(_)) => "output",
            Some(Outcome::Suspend { .. }) => "suspension",
            Some(Outcome::Fail { .. }) => "failure",
            None => return,
        };
        let instead = match r.kind {
            // The output is over a limit, or the outcome is one the coordinator cannot
            // take: the attempt fails for good instead of being dropped, its lease
            // running out and the task run again with the same result.
            RefusalKind::TooLarge | RefusalKind::Invalid if reported != "failure" => {
                let failed = Outcome::Fail {
                    error: format!("the task's {reported} was refused: {}", r.message),
                    permanent: true,
                };
                self.send_report(now, fence, failed, out);
                Instead::FailedForGood
            }
            // The coordinator cannot store the output now (its store is full) and
            // leaves the attempt running: the attempt fails, not for good, naming the
            // limit, so the task is retried by its policy (and in the end fails naming
            // it) instead of running on unrenewed until its lease runs out.
            RefusalKind::Full if reported == "output" => {
                let failed = Outcome::Fail {
                    error: format!("the task's output was refused: {}", r.message),
                    permanent: false,
                };
                self.send_report(now, fence, failed, out);
                Instead::FailedToRetry
            }
            // The coordinator failed the attempt itself: nothing more to report.
            RefusalKind::OutputRefused => {
                self.reports.remove(&fence);
                self.summary.failed += 1;
                Instead::FailedForGood
            }
            _ => {
                self.reports.remove(&fence);
                self.summary.stale += 1;
                Instead::Dropped
            }
        };
        out.push(Output::OutcomeRefused {
            fence,
            message: r.message,
            instead,
        });
    }
}
