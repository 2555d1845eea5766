//! What a coordinator is told at start.

use crate::error::CoordinatorError;
use keel_log::Partition;
use std::time::Duration;

/// Everything a coordinator needs besides its log.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Used when the log holds no snapshot; a snapshot carries the configuration (and
    /// the seed) it was taken with.
    pub engine: keel_engine::Config,
    /// The log partition this coordinator serves (one engine per partition).
    pub partition: Partition,
    /// Inputs per group commit: one log append carries at most this many.
    pub max_batch: usize,
    /// Entries between snapshots; storing one trims the log before it.
    pub snapshot_every: u64,
    /// Leadership lease in the log, renewed every third of it.
    pub lease_ttl: Duration,
    /// Who this coordinator is to the log. A coordinator re-acquiring under the same
    /// name takes over at once (a restart); one under another name waits for the
    /// lease to lapse (a standby). Defaults to host and process id, so two processes
    /// never share a name.
    pub holder: String,
    /// Whether a coordinator that lost its lease (the log was out of reach, the process
    /// was paused, another coordinator took over) stands by to take the partition back,
    /// as a standby would, instead of stopping. On by default.
    pub rejoin: bool,
    /// Runs on every engine this coordinator builds (started, taken back or rebuilt)
    /// before the log is replayed into it. For tests, such as injecting engine faults
    /// (keel-engine's `fault-injection` feature).
    pub prepare_engine: Option<fn(&mut keel_engine::Engine)>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            engine: keel_engine::Config::default(),
            partition: 0,
            max_batch: 1024,
            snapshot_every: 100_000,
            lease_ttl: Duration::from_secs(5),
            holder: default_holder(),
            rejoin: true,
            prepare_engine: None,
        }
    }
}

impl CoordinatorConfig {
    pub(crate) fn validate(&self) -> Result<(), CoordinatorError> {
        let invalid = |field, problem| Err(CoordinatorError::InvalidConfig { field, problem });
        if self.max_batch == 0 {
            return invalid("max_batch", "must be at least 1");
        }
        if self.snapshot_every == 0 {
            return invalid("snapshot_every", "must be at least 1");
        }
        if self.lease_ttl < Duration::from_millis(30) {
            return invalid("lease_ttl", "must be at least 30ms to be renewable");
        }
        if self.holder.is_empty() {
            return invalid("holder", "must not be empty");
        }
        self.engine.validate()?;
        Ok(())
    }
}

/// `keel@<host>/<pid>`: unique per process on a host.
pub fn default_holder() -> String {
    format!("keel@{}/{}", host_name(), std::process::id())
}

/// This machine's name from `HOSTNAME` or `/etc/hostname`, else `localhost`.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_config_below_its_floors_is_refused() {
        let mut config = CoordinatorConfig::default();
        assert!(config.validate().is_ok());
        config.engine.liveness_timeout_ms = 0;
        let e = config.validate().unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        assert_eq!(
            e.to_string(),
            "invalid engine config: liveness_timeout_ms must be at least 1000 ms"
        );
    }
}
