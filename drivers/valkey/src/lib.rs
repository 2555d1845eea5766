//! keel-valkey: Keel's durable log ([`keel_log::Log`]) on Valkey and Valkey Cluster,
//! for coordinators that share one store. See `README.md` beside this crate for the
//! Valkey persistence settings and what each one guarantees.
//!
//! ```text
//! let log = ValkeyLog::connect("redis://127.0.0.1:6379", ValkeyOptions::default()).await?;
//! let lease = log.acquire(partition, "coordinator-a", Duration::from_secs(10)).await?;
//! let end = log.append(partition, lease.epoch, start, &payloads).await?;
//! ```
//!
//! - Keys are hash-tagged per partition (`keel:{p7}:log`), so a cluster spreads
//!   partitions over its shards and every call touches one slot.
//! - Leadership is fenced per partition: [`keel_log::Log::acquire`] grants a strictly
//!   higher epoch; appends and snapshots are Valkey functions that check the caller's
//!   epoch and the log's end atomically with the write, so a deposed coordinator can
//!   never write.
//! - The function library is versioned; a server missing it or holding another
//!   version is reloaded on the spot.
//!
//! The client is redis-rs with its tokio and cluster features: maintained, speaks to
//! Valkey unchanged, and its connection manager and cluster client reconnect and follow
//! failovers by themselves.

mod classify;
mod cluster;
mod conn;
mod keys;
mod library;
mod options;
mod reply;
pub mod server;
mod valkey_log;

pub use cluster::ValkeyCluster;
pub use keys::PartitionKeys;
pub use library::{SOURCE as LIBRARY_SOURCE, VERSION as LIBRARY_VERSION};
pub use options::{ConnectError, ValkeyOptions, WaitReplicas};
pub use valkey_log::ValkeyLog;
