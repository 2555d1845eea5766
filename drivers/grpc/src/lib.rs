//! keel-grpc: Keel over gRPC.
//!
//! - [`proto`]: the versioned `keel.v1` protocol (`proto/keel/v1/keel.proto`).
//! - [`server`]: the coordinator's tonic services on top of a `keel_coordinator::Handle`:
//!   worker sessions, job submission and queries, bearer-token auth, TLS, size limits.
//! - [`worker`]: the worker SDK: register, receive grants, run a handler per task,
//!   renew leases in the background, complete or fail, obey revocations, reconnect,
//!   drain on shutdown.
//! - [`client`]: connecting to a coordinator as a client or a worker.
//!
//! Jobs travel as a `keel.v1.JobSpec` mirroring `keel_engine::JobSpec`: clients parse
//! their TOML with keel-jobs and the coordinator validates what arrives with the
//! engine's own rules, so no TOML parser sits on the server's request path.
//!
//! Per-command refusals on a worker session come back as a `Reply` carrying the gRPC
//! code they map to (the `status` module), so one stale fence does not end a session
//! that holds other leases; a malformed frame ends the session with INVALID_ARGUMENT.
//!
//! Feature `fuzz` makes `status` and `validate` public for the fuzz target and its
//! replay test; nothing else outside the crate needs them.

pub mod auth;
mod backoff;
mod budget_spec;
pub mod client;
mod convert;
mod edge_spec;
mod job_spec;
pub mod metrics;
mod schedule_spec;
pub mod server;
#[cfg(feature = "fuzz")]
pub mod status;
// Their items are `pub` for the fuzz target; without the feature they stay inside.
#[cfg(not(feature = "fuzz"))]
#[allow(unreachable_pub)]
mod status;
#[cfg(feature = "fuzz")]
pub mod validate;
#[cfg(not(feature = "fuzz"))]
#[allow(unreachable_pub)]
mod validate;
pub mod worker;

/// Generated `keel.v1` messages and services.
// Generated code; proto/keel/v1/keel.proto documents the protocol.
#[allow(missing_docs)]
pub mod proto {
    tonic::include_proto!("keel.v1");
}

pub use budget_spec::{on_hard_label, owner_from_proto};
pub use job_spec::{job_spec_from_proto, job_spec_to_proto};
pub use schedule_spec::{
    misfire_label, overlap_label, parse_misfire, parse_overlap, schedule_from_proto,
    schedule_to_proto, schedule_view_to_proto,
};
