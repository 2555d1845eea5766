//! Keel's protocol decisions as sans-I/O machines.
//!
//! The engine decides what the cluster does; these machines decide what one process
//! does around it: a worker (register, credits, accept, renew, trust a lease, resend
//! outcomes, drain, reconnect) and the coordinator's commit pipeline (batching, one
//! append in flight, read barriers, refusals). Inputs and the current time go in;
//! commands and timer requests come out. The SDK, the coordinator runtime and the
//! simulator drive the same machines, so the simulator's seeds exercise the decisions
//! production makes.
pub mod commit;
pub mod worker;
