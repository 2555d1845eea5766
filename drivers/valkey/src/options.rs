//! How to reach Valkey and how durable an acknowledged write must be.

use std::time::Duration;

/// How the Valkey log connects and what it waits for before acknowledging a write.
#[derive(Clone, Debug)]
pub struct ValkeyOptions {
    /// Prefix of every key; lets several Keel deployments share one Valkey.
    pub key_prefix: String,
    /// Wait for replicas to acknowledge each append and snapshot (Valkey `WAIT`).
    pub wait_replicas: Option<WaitReplicas>,
    /// Bound on one request, so a dead server turns into an error, not a hang.
    pub response_timeout: Duration,
    /// Bound on opening a connection.
    pub connection_timeout: Duration,
    /// The most bytes one stored record holds: an append is split into records of at
    /// most this size (an entry larger than it goes alone), so no argument nears
    /// Valkey's limit on one value (`proto-max-bulk-len`, 512 MB by default).
    pub record_bytes: usize,
}

impl Default for ValkeyOptions {
    fn default() -> Self {
        ValkeyOptions {
            key_prefix: "keel".into(),
            wait_replicas: None,
            response_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            record_bytes: 32 << 20,
        }
    }
}

/// An append or snapshot is acknowledged only after `replicas` replicas have received
/// it, or fails with [`keel_log::LogError::ReplicaTimeout`] after `timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitReplicas {
    /// How many replicas must have the write.
    pub replicas: usize,
    /// How long to wait for them.
    pub timeout: Duration,
}

/// Why `ValkeyLog::connect` failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server could not be reached or refused the connection.
    #[error("valkey at {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// What the client library reported.
        source: redis::RedisError,
    },
    /// The server would not load the `keel` function library.
    #[error("valkey: loading the keel function library failed: {0}")]
    Library(redis::RedisError),
}

impl ConnectError {
    /// The server could not be reached or refused service for now (down, restarting,
    /// loading its data, a replica): connecting again later may succeed, as opposed to
    /// a wrong URL or a server that rejects the function library.
    pub fn is_unavailable(&self) -> bool {
        let (ConnectError::Connect { source, .. } | ConnectError::Library(source)) = self;
        crate::classify::classify(0, "valkey", source).is_unavailable()
    }
}
