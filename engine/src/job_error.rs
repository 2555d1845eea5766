//! Why a job spec was refused: each variant names the tasks, groups or fields at
//! fault, so a user can fix the file without guessing.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a job spec was refused, naming the tasks involved.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum JobError {
    /// A job must have at least one task.
    #[error("the job has no tasks")]
    Empty,
    /// A budget the job declares breaks a rule; the text names the budget and field.
    #[error("{0}")]
    InvalidBudget(String),
    /// A name in the spec (job, tenant, lane, task key) is empty, too long or unsafe.
    #[error("{field} is invalid: {why}")]
    BadName {
        /// Which spec field held the name.
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// The job has more tasks than `Limits::max_tasks_per_job`.
    #[error("{count} tasks, limit {limit}")]
    TooManyTasks {
        /// How many tasks the spec lists.
        count: u64,
        /// The limit in force.
        limit: u32,
    },
    /// Task keys must be unique within a job, since dependencies name them.
    #[error("task key {key:?} appears more than once")]
    DuplicateTask {
        /// The repeated key.
        key: String,
    },
    /// A dependency names a key no task in the job has.
    #[error("task {task:?} depends on unknown task {dep:?}")]
    UnknownDependency {
        /// The task whose dependency list is wrong.
        task: String,
        /// The key it names.
        dep: String,
    },
    /// A dependency is listed twice for the same task.
    #[error("task {task:?} lists dependency {dep:?} twice")]
    DuplicateDependency {
        /// The task whose dependency list repeats.
        task: String,
        /// The repeated key.
        dep: String,
    },
    /// The job's result names a task the job does not have.
    #[error("the job's result names unknown task {key:?}")]
    UnknownResultTask {
        /// The unknown key.
        key: String,
    },
    /// The job's result names a task twice.
    #[error("the job's result names task {key:?} twice")]
    DuplicateResultTask {
        /// The repeated key.
        key: String,
    },
    /// The dependencies form a cycle, so no task on it could ever start.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The task keys around the cycle, in dependency order.
        cycle: Vec<String>,
    },
    /// A streaming edge the engine could not run as declared.
    #[error("task {task:?} streams from {from:?}: {why}")]
    BadStreamEdge {
        /// The consuming task.
        task: String,
        /// The producer it names.
        from: String,
        /// What is wrong with the edge.
        why: String,
    },
    /// A dependency group lists no upstream task.
    #[error("task {task:?} has an empty dependency group")]
    EmptyGroup {
        /// The task with the empty group.
        task: String,
    },
    /// A quorum group asks for more upstream tasks than it lists, or for none.
    #[error("task {task:?} needs a quorum of {k} out of {n} upstream tasks")]
    QuorumOutOfRange {
        /// The task with the quorum group.
        task: String,
        /// How many must succeed.
        k: u32,
        /// How many the group lists.
        n: u32,
    },
    /// A task has more dependencies than `Limits::max_deps_per_task`.
    #[error("task {task:?} has {count} dependencies, limit {limit}")]
    TooManyDependencies {
        /// The task with too many dependencies.
        task: String,
        /// How many it lists.
        count: u64,
        /// The limit in force.
        limit: u32,
    },
    /// The longest dependency chain exceeds `Limits::max_dag_depth`.
    #[error("the dependency chain through {task:?} is {depth} deep, limit {limit}")]
    TooDeep {
        /// A task on the too-deep chain.
        task: String,
        /// The chain's depth at that task.
        depth: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A payload exceeds `Limits::max_payload_bytes`.
    #[error("task {task:?} payload is {bytes} bytes, limit {limit}")]
    PayloadTooLarge {
        /// The task with the payload.
        task: String,
        /// The payload's size.
        bytes: u64,
        /// The limit in bytes.
        limit: u32,
    },
    /// A task requires more capabilities than `Limits::max_caps_per_task`.
    #[error("task {task:?} requires {count} capabilities, limit {limit}")]
    TooManyCapabilities {
        /// The task requiring them.
        task: String,
        /// How many it requires.
        count: u64,
        /// The limit in force.
        limit: u32,
    },
    /// A required capability is malformed.
    #[error("task {task:?} capability {token:?}: {why}")]
    Capability {
        /// The task requiring it.
        task: String,
        /// The offending token.
        token: String,
        /// What is wrong with it.
        why: CapabilityIssue,
    },
    /// The retry policy cannot be run (zero attempts, inverted backoff bounds).
    #[error("task {task:?} retry policy: {why}")]
    BadRetry {
        /// The task with the policy.
        task: String,
        /// What is wrong with it.
        why: String,
    },
    /// Any other field out of range; `task` is `None` for a job-level field.
    #[error("{}{field}: {why}", task.as_ref().map(|t| format!("task {t:?} ")).unwrap_or_default())]
    BadField {
        /// The task holding the field, if it is a task field.
        task: Option<String>,
        /// The field's name.
        field: String,
        /// What is wrong with it.
        why: String,
    },
}

/// What is wrong with one capability token (worker-advertised or task-required).
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum CapabilityIssue {
    /// The token is the empty string.
    #[error("empty")]
    Empty,
    /// The token is longer than `Limits::max_cap_token_len`.
    #[error("longer than {limit} bytes")]
    TooLong {
        /// The limit in bytes.
        limit: u32,
    },
    /// Tokens are matched verbatim; whitespace would make two look alike.
    #[error("contains whitespace")]
    Whitespace,
    /// Control characters would corrupt logs and terminals that print the token.
    #[error("contains a control character")]
    Control,
    /// The same token appears twice in one list.
    #[error("listed twice")]
    Duplicate,
}
