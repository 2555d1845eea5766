//! Engine configuration: the timeouts that drive every timer, and the limits that keep
//! any single input or tenant from growing state without bound.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The lane a worker registers (alone) to serve every lane, including lanes first used
/// after it registered.
pub const ALL_LANES: &str = "*";

/// Everything that tunes an engine. Part of its snapshot, so a restored engine keeps
/// the timeouts and limits it ran with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Seed for deterministic randomness (retry jitter).
    pub seed: u64,
    /// How long a grant offer waits for the worker to accept it.
    pub grant_ttl_ms: u64,
    /// How long a lease lasts without renewal.
    pub lease_ttl_ms: u64,
    /// A worker silent this long is declared lost.
    pub liveness_timeout_ms: u64,
    /// Times a task may be requeued because its worker was lost or its lease expired,
    /// separate from its retry budget, so a task that kills workers still terminates.
    pub max_losses: u32,
    /// How long a finished job stays queryable by id (and answers resubmissions of its
    /// spec under its name as duplicates).
    pub retention_ms: u64,
    /// When a failing worker stops getting grants.
    pub blacklist: BlacklistPolicy,
    /// Per-tenant caps and fair-share weights.
    pub tenants: TenantPolicy,
    /// Token buckets pacing grants per tenant, lane and rate key.
    pub rates: RatePolicy,
    /// Budgets per tenant: every task of the tenant counts against them.
    pub budgets: crate::budget_spec::TenantBudgets,
    /// Bounds on every input and on the engine as a whole.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            grant_ttl_ms: 5_000,
            lease_ttl_ms: 30_000,
            liveness_timeout_ms: 15_000,
            max_losses: 5,
            retention_ms: 3_600_000,
            blacklist: BlacklistPolicy::default(),
            tenants: TenantPolicy::default(),
            rates: RatePolicy::default(),
            budgets: Default::default(),
            limits: Limits::default(),
        }
    }
}

/// A worker with `threshold` failed attempts within `window_ms` gets no new grants for
/// `cooldown_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistPolicy {
    /// Failed attempts that set a worker aside.
    pub threshold: u32,
    /// How far back failures count.
    pub window_ms: u64,
    /// How long it gets no grants.
    pub cooldown_ms: u64,
}

impl Default for BlacklistPolicy {
    fn default() -> Self {
        BlacklistPolicy {
            threshold: 5,
            window_ms: 60_000,
            cooldown_ms: 30_000,
        }
    }
}

/// Per-tenant concurrency caps and fair-share weights.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantPolicy {
    /// Cap for tenants not listed in `caps`; `None` means uncapped.
    pub default_cap: Option<u32>,
    /// Tasks a named tenant may hold grants or leases for at once.
    pub caps: BTreeMap<String, u32>,
    /// Fair-share weight (default 1): a tenant with weight 2 gets twice the slots of a
    /// tenant with weight 1 when workers are scarce.
    pub weights: BTreeMap<String, u32>,
}

impl TenantPolicy {
    /// The tenant's concurrency cap, its own or the default; `None` is uncapped.
    pub fn cap(&self, tenant: &str) -> Option<u32> {
        self.caps.get(tenant).copied().or(self.default_cap)
    }
    /// The tenant's fair-share weight, at least 1 (a listed 0 counts as 1).
    pub fn weight(&self, tenant: &str) -> u32 {
        self.weights.get(tenant).copied().unwrap_or(1).max(1)
    }
}

/// Token buckets that pace grants: each grant of a task takes one token from the
/// bucket of its tenant, of its lane and of the rate key it names, where one is
/// configured, and a task waits while any of them is empty. Names without an entry are
/// not paced. A token is taken when the grant is offered, accepted or not, so a rate
/// bounds offers as well as attempts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatePolicy {
    /// Buckets per tenant name.
    pub tenants: BTreeMap<String, Rate>,
    /// Buckets per lane name.
    pub lanes: BTreeMap<String, Rate>,
    /// Buckets per rate key (`rate_key` in a task spec), e.g. one per external API.
    pub keys: BTreeMap<String, Rate>,
}

impl RatePolicy {
    /// Whether no bucket is configured (nothing is paced).
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.lanes.is_empty() && self.keys.is_empty()
    }

    /// The bucket configured for a name in one scope.
    pub fn get(&self, scope: RateScope, name: &str) -> Option<&Rate> {
        match scope {
            RateScope::Tenant => self.tenants.get(name),
            RateScope::Lane => self.lanes.get(name),
            RateScope::Key => self.keys.get(name),
        }
    }
}

/// What a token bucket is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RateScope {
    /// A tenant's tasks.
    Tenant,
    /// A lane's tasks.
    Lane,
    /// The tasks naming one rate key.
    Key,
}

impl RateScope {
    /// The scope as written in configuration and status: `tenant`, `lane`, `key`.
    pub fn as_str(self) -> &'static str {
        match self {
            RateScope::Tenant => "tenant",
            RateScope::Lane => "lane",
            RateScope::Key => "key",
        }
    }
}

/// A token bucket: `rate` grants per `per_ms` milliseconds on average, and at most
/// `burst` in a row after a quiet spell (the bucket starts full). Over any window of
/// `w` ms, at most `burst + rate * w / per_ms` grants are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per `per_ms`.
    pub rate: u32,
    /// The period `rate` is counted over, in milliseconds.
    pub per_ms: u32,
    /// Tokens the bucket holds when full.
    pub burst: u32,
}

/// Bounds on everything that arrives from outside. Each refusal is a typed rejection.
///
/// The `max_live_*`, `max_tenants` and `max_stored_bytes` limits bound the engine as a
/// whole, whatever tenant names clients choose: a command that would take the engine
/// past one is refused with `Rejection::LimitReached` (retryable: room comes back as
/// jobs finish and are forgotten). The defaults keep the engine's state within a few
/// hundred MiB, for a coordinator process of 1 to 2 GiB (a snapshot briefly needs a
/// second copy of the state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Tasks in one job spec.
    pub max_tasks_per_job: u32,
    /// Upstream tasks one task may name.
    pub max_deps_per_task: u32,
    /// Longest dependency chain in a job.
    pub max_dag_depth: u32,
    /// Bytes in a task payload, a signal payload, a task output or an error message.
    pub max_payload_bytes: u32,
    /// Capabilities one worker may advertise.
    pub max_caps_per_worker: u32,
    /// Capabilities one task may require.
    pub max_caps_per_task: u32,
    /// Bytes in one capability token.
    pub max_cap_token_len: u32,
    /// Bytes in any name: job, tenant, lane, task key, worker id, waitpoint, signal key.
    pub max_name_len: u32,
    /// Unfinished jobs one tenant may have.
    pub max_jobs_in_flight_per_tenant: u32,
    /// Workers registered at once.
    pub max_workers: u32,
    /// Highest `max_concurrency` a worker may register with.
    pub max_concurrency_per_worker: u32,
    /// Credits one work request may ask for, which bounds a worker's pending offers.
    pub max_pending_grants_per_worker: u32,
    /// Lanes one worker may serve.
    pub max_lanes_per_worker: u32,
    /// Signals stored for one task (each idempotency key once).
    pub max_signals_per_task: u32,
    /// Jobs the engine holds: in flight, or finished and kept for `retention_ms`.
    pub max_live_jobs: u32,
    /// Tasks of the jobs the engine holds; each costs a few hundred bytes.
    pub max_live_tasks: u32,
    /// Distinct tenant names of the jobs the engine holds. A tenant name no held job
    /// uses is forgotten, so a client inventing names cannot grow the tenant table, and
    /// fair share looks at no more tenants than this.
    pub max_tenants: u32,
    /// Bytes of task payloads, signal payloads and outputs the engine holds. A task's
    /// signal payloads are let go when it ends; its payload and output stay until its
    /// job is forgotten (a retained job's spec can be read back and retried). Refused
    /// past it: a submit, a signal, and a completion whose output would not fit after
    /// its task lets go of its signal payloads.
    pub max_stored_bytes: u64,
    /// Bytes of upstream outputs one task's grant carries as its inputs. A completion
    /// whose output would take a downstream task's inputs past it is refused and its
    /// attempt failed, so every grant stays deliverable in one frame.
    pub max_input_bytes_per_task: u64,
    /// Bytes of outputs one job holds (stream frames are counted apart). A completion
    /// whose output would take its job past it is refused and its attempt failed, so
    /// no one job fills the store.
    pub max_output_bytes_per_job: u64,
    /// Bytes of stream frames one job's durable streams keep (each frame counted at its
    /// size plus `FRAME_OVERHEAD`). An emit past it is refused and the attempt runs on.
    /// Kept apart from `max_output_bytes_per_job`, so a task that streams a lot can
    /// still complete with its output.
    pub max_stream_bytes_per_job: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tasks_per_job: 100_000,
            max_deps_per_task: 1_000,
            max_dag_depth: 1_000,
            max_payload_bytes: 1 << 20,
            max_caps_per_worker: 64,
            max_caps_per_task: 16,
            max_cap_token_len: 64,
            max_name_len: 256,
            max_jobs_in_flight_per_tenant: 10_000,
            max_workers: 10_000,
            max_concurrency_per_worker: 4_096,
            max_pending_grants_per_worker: 1_024,
            max_lanes_per_worker: 16,
            max_signals_per_task: 64,
            max_live_jobs: 100_000,
            max_live_tasks: 1_000_000,
            max_tenants: 1_000,
            max_stored_bytes: 512 << 20,
            max_input_bytes_per_task: 8 << 20,
            max_output_bytes_per_job: 64 << 20,
            max_stream_bytes_per_job: 64 << 20,
        }
    }
}
