//! The worker's side of the worker protocol as a sans-I/O machine.
//!
//! One [`WorkerMachine`] makes every decision a worker process makes about the
//! coordinator: when to connect and register (and which instance to present), how
//! many credits to ask for, which grants to accept, when to renew each lease and how
//! long to trust it, which outcomes still wait for an answer (and resending them after
//! a reconnect), draining and when to give up on a silent coordinator. It performs no
//! I/O and reads no clock: a shell feeds it events from the coordinator, handler
//! results and the current time in milliseconds, and carries out the [`Output`]s it
//! returns, waking it again at [`WorkerMachine::next_timeout`]. The SDK (tokio and
//! tonic) and the simulator (virtual time, a lossy network) are two such shells.
//!
//! **Trusting a lease.** A lease is trusted for one TTL from when its accept or its
//! last answered renewal was *sent*: the coordinator's clock for the lease started
//! later than that, so the worker's deadline is never behind the coordinator's. It is
//! also trusted no longer than one liveness timeout from when the last answered
//! command was sent, since the coordinator may declare a silent worker lost and revoke
//! its leases. A handler whose lease is no longer trusted is cancelled: the task may
//! already run elsewhere.
//!
//! **Instances.** A registration presents the instance given at start. A refusal as
//! stale names the coordinator's current instance and the next registration presents
//! the one after it; a lost or conflicting instance is followed by the next one up.
//! Nothing depends on a clock. Every new instance and every reconnect waits its turn in
//! a jittered exponential backoff (the jitter is drawn from a seed the shell passes),
//! so a refused worker cannot flood the coordinator.
//!
//! **A silent coordinator.** Every command but renewals and progress expects an answer
//! within `answer_timeout_ms`; without one the connection is treated as broken
//! (dropped, and made again after the backoff), as a stream that lost one message is
//! broken. Outcomes survive reconnects and are sent again until answered.

mod backoff;
mod link;
mod machine;
mod replies;
mod timers;
mod types;

pub use machine::WorkerMachine;
pub use types::{
    Answer, Assignment, Command, Config, Event, Instead, Offer, Outcome, Output, Refusal,
    RefusalKind, Registered, Stop, Summary, Time,
};

#[cfg(test)]
mod tests;
