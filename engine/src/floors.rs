//! The smallest configuration that keeps an engine useful, and `Config::validate`.
//!
//! A zero timeout breaks a cluster without any error: a grant that expires as it is
//! offered is never accepted, so every job stays queued; a lease or liveness timeout
//! of zero loses every attempt. The engine itself never panics on any configuration
//! (every sum saturates), so `Engine::new` takes any `Config`; drivers call
//! `Config::validate` (or `Engine::try_new`) first, and `Engine::restore` refuses a
//! snapshot whose configuration fails it. A floor is part of the snapshot format: it
//! only rises together with `SNAPSHOT_VERSION`, or snapshots taken under the old floor
//! could no longer be restored.

use crate::config::{Config, Limits, RatePolicy, TenantPolicy};
use thiserror::Error;

/// What a configuration value counts, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Bytes.
    Bytes,
    /// A plain number of things.
    Count,
}

/// A configuration value below its floor.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", self.message_for(&self.field))]
pub struct ConfigError {
    /// The field as spelled in `Config`, nested ones dotted: `grant_ttl_ms`,
    /// `limits.max_workers`, `tenants.caps.<tenant>`.
    pub field: String,
    /// The value given.
    pub value: u64,
    /// The smallest accepted value.
    pub floor: u64,
    /// How `value` and `floor` are printed.
    pub unit: Unit,
    /// The field the floor is read from, when the floor is another field's value.
    pub floor_from: Option<&'static str>,
}

impl ConfigError {
    /// The refusal with `name` in place of the field, so a driver can name its own flag
    /// or file key: `--grant-ttl-ms must be at least 100 ms`.
    pub fn message_for(&self, name: &str) -> String {
        let unit = match self.unit {
            Unit::Ms => " ms",
            Unit::Bytes => " bytes",
            Unit::Count => "",
        };
        let from = self
            .floor_from
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        format!("{name} must be at least {}{unit}{from}", self.floor)
    }
}

fn at_least(field: &str, value: u64, floor: u64, unit: Unit) -> Result<(), ConfigError> {
    if value >= floor {
        return Ok(());
    }
    Err(ConfigError {
        field: field.to_string(),
        value,
        floor,
        unit,
        floor_from: None,
    })
}

impl Config {
    /// A grant crosses the network to the worker and its acceptance comes back through
    /// one group commit (an fsync) before the offer lapses; below 100 ms a loaded
    /// cluster offers every task again and again and never starts one.
    pub const MIN_GRANT_TTL_MS: u64 = 100;
    /// Workers renew every third of the lease; each renewal needs a round trip and a
    /// group commit inside that third, so a third of a second is the least that holds
    /// on a loaded machine.
    pub const MIN_LEASE_TTL_MS: u64 = 1_000;
    /// Workers heartbeat every third of the liveness timeout; the same reasoning.
    pub const MIN_LIVENESS_TIMEOUT_MS: u64 = 1_000;
    /// A client whose submit reply was lost resubmits; the finished job must still be
    /// there to answer the resubmission as a duplicate rather than run it again.
    pub const MIN_RETENTION_MS: u64 = 1_000;
    /// Jobs default to the tenant and lane "default", which must fit.
    pub const MIN_NAME_LEN: u32 = "default".len() as u32;

    /// Checks every field against its floor. Limits whose zero would refuse every
    /// command of a kind (every job, every worker, every work request) must be at
    /// least 1; zero stays allowed where it switches a feature off (capabilities,
    /// lanes, dependencies, signals, the loss budget, blacklisting).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use Unit::Ms;
        at_least(
            "grant_ttl_ms",
            self.grant_ttl_ms,
            Self::MIN_GRANT_TTL_MS,
            Ms,
        )?;
        at_least(
            "lease_ttl_ms",
            self.lease_ttl_ms,
            Self::MIN_LEASE_TTL_MS,
            Ms,
        )?;
        let liveness = self.liveness_timeout_ms;
        at_least(
            "liveness_timeout_ms",
            liveness,
            Self::MIN_LIVENESS_TIMEOUT_MS,
            Ms,
        )?;
        at_least(
            "retention_ms",
            self.retention_ms,
            Self::MIN_RETENTION_MS,
            Ms,
        )?;
        check_limits(&self.limits)?;
        check_tenants(&self.tenants)?;
        check_rates(&self.rates)
    }
}

fn check_limits(l: &Limits) -> Result<(), ConfigError> {
    use Unit::{Bytes, Count};
    let counts = [
        ("limits.max_tasks_per_job", l.max_tasks_per_job),
        ("limits.max_dag_depth", l.max_dag_depth),
        ("limits.max_payload_bytes", l.max_payload_bytes),
        (
            "limits.max_jobs_in_flight_per_tenant",
            l.max_jobs_in_flight_per_tenant,
        ),
        ("limits.max_workers", l.max_workers),
        (
            "limits.max_concurrency_per_worker",
            l.max_concurrency_per_worker,
        ),
        (
            "limits.max_pending_grants_per_worker",
            l.max_pending_grants_per_worker,
        ),
        ("limits.max_live_jobs", l.max_live_jobs),
        ("limits.max_live_tasks", l.max_live_tasks),
        ("limits.max_tenants", l.max_tenants),
    ];
    for (field, value) in counts {
        let unit = if field.ends_with("bytes") {
            Bytes
        } else {
            Count
        };
        at_least(field, u64::from(value), 1, unit)?;
    }
    let name_len = u64::from(l.max_name_len);
    at_least(
        "limits.max_name_len",
        name_len,
        u64::from(Config::MIN_NAME_LEN),
        Bytes,
    )?;
    // One payload (or output, or emit) at the limit must fit in the store, in a job's
    // outputs and streams, and in a task's inputs.
    for (field, value) in [
        ("limits.max_stored_bytes", l.max_stored_bytes),
        (
            "limits.max_input_bytes_per_task",
            l.max_input_bytes_per_task,
        ),
        (
            "limits.max_output_bytes_per_job",
            l.max_output_bytes_per_job,
        ),
        (
            "limits.max_stream_bytes_per_job",
            l.max_stream_bytes_per_job,
        ),
    ] {
        at_least(field, value, u64::from(l.max_payload_bytes), Bytes).map_err(|e| ConfigError {
            floor_from: Some("limits.max_payload_bytes"),
            ..e
        })?;
    }
    Ok(())
}

fn check_tenants(t: &TenantPolicy) -> Result<(), ConfigError> {
    use Unit::Count;
    // A cap of 0 would queue a tenant's jobs until their deadline; a weight of 0
    // would give it no share.
    if let Some(cap) = t.default_cap {
        at_least("tenants.default_cap", u64::from(cap), 1, Count)?;
    }
    for (tenant, &cap) in &t.caps {
        at_least(&format!("tenants.caps.{tenant}"), u64::from(cap), 1, Count)?;
    }
    for (tenant, &weight) in &t.weights {
        at_least(
            &format!("tenants.weights.{tenant}"),
            u64::from(weight),
            1,
            Count,
        )?;
    }
    Ok(())
}

/// A bucket with no tokens, no period or no room would never grant.
fn check_rates(r: &RatePolicy) -> Result<(), ConfigError> {
    let scopes = [
        ("tenants", &r.tenants),
        ("lanes", &r.lanes),
        ("keys", &r.keys),
    ];
    for (scope, buckets) in scopes {
        for (name, rate) in buckets {
            for (field, value) in [
                ("rate", rate.rate),
                ("per_ms", rate.per_ms),
                ("burst", rate.burst),
            ] {
                let field = format!("rates.{scope}.{name}.{field}");
                at_least(&field, u64::from(value), 1, Unit::Count)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn zero_timeouts_are_refused_naming_the_field_and_the_floor() {
        let mut c = Config {
            grant_ttl_ms: 0,
            ..Config::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.to_string(), "grant_ttl_ms must be at least 100 ms");
        assert_eq!(
            e.message_for("--grant-ttl-ms"),
            "--grant-ttl-ms must be at least 100 ms"
        );
        c.grant_ttl_ms = 100;
        for (field, set) in [
            (
                "lease_ttl_ms",
                (|c: &mut Config| c.lease_ttl_ms = 999) as fn(&mut Config),
            ),
            ("liveness_timeout_ms", |c| c.liveness_timeout_ms = 0),
            ("retention_ms", |c| c.retention_ms = 0),
            ("limits.max_workers", |c| c.limits.max_workers = 0),
            ("limits.max_name_len", |c| c.limits.max_name_len = 6),
            ("limits.max_tenants", |c| c.limits.max_tenants = 0),
            ("tenants.caps.t", |c| {
                c.tenants.caps.insert("t".into(), 0);
            }),
            ("tenants.weights.t", |c| {
                c.tenants.weights.insert("t".into(), 0);
            }),
            ("tenants.default_cap", |c| c.tenants.default_cap = Some(0)),
        ] {
            let mut bad = c.clone();
            set(&mut bad);
            assert_eq!(bad.validate().map_err(|e| e.field), Err(field.to_string()));
        }
    }

    #[test]
    fn the_store_holds_at_least_one_payload() {
        let mut c = Config::default();
        c.limits.max_payload_bytes = 1_000;
        c.limits.max_stored_bytes = 999;
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "limits.max_stored_bytes must be at least 1000 bytes (limits.max_payload_bytes)"
        );
        c.limits.max_stored_bytes = 1_000;
        assert_eq!(c.validate(), Ok(()));
        for (field, set) in [
            (
                "limits.max_input_bytes_per_task",
                (|l: &mut Limits| l.max_input_bytes_per_task = 999) as fn(&mut Limits),
            ),
            ("limits.max_output_bytes_per_job", |l| {
                l.max_output_bytes_per_job = 999
            }),
        ] {
            let mut bad = c.clone();
            set(&mut bad.limits);
            let e = bad.validate().unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{field} must be at least 1000 bytes (limits.max_payload_bytes)")
            );
        }
    }
}
