//! What a client submits: a job as a DAG of tasks. These are plain data; `validate`
//! turns one into something the engine can admit, or a typed error naming the ids.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Opaque task input, shared between the task and the grants that carry it.
///
/// Serialized as bytes: postcard writes the same length-prefixed bytes it writes for
/// a sequence of `u8` (so logs and snapshots read either way), and JSON the same array
/// of numbers, but in one copy instead of one serializer call per byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Payload(pub Arc<Vec<u8>>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> serde::de::Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("payload bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
        Ok(Payload::from(bytes.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload::from(bytes))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Payload::from(bytes))
    }
}

impl Payload {
    /// Its size in bytes, which the payload limits are measured in.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The bytes, borrowed from the shared buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::from(s.as_bytes().to_vec())
    }
}

/// Takes the buffer over without copying it (payloads and outputs arrive as buffers
/// decoded from the network, up to megabytes each); a buffer with much spare room is
/// shrunk first, since the engine may keep it until its job is forgotten.
impl From<Vec<u8>> for Payload {
    fn from(mut v: Vec<u8>) -> Self {
        if v.capacity() - v.len() > v.len() / 8 {
            v.shrink_to_fit();
        }
        Payload(Arc::new(v))
    }
}

/// How many upstream tasks must succeed before a task is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupKind {
    /// Every upstream task.
    AllOf,
    /// At least one upstream task.
    AnyOf,
    /// At least this many upstream tasks (1 to the group's size).
    Quorum(u32),
}

impl GroupKind {
    /// Successes needed out of `n` upstream tasks.
    pub fn needed(self, n: u32) -> u32 {
        match self {
            GroupKind::AllOf => n,
            GroupKind::AnyOf => n.min(1),
            GroupKind::Quorum(k) => k,
        }
    }
}

/// What happens to a task whose dependency group can no longer be satisfied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnsatisfiedPolicy {
    /// The task is skipped; its own downstream sees a non-success.
    #[default]
    Skip,
    /// The task is cancelled and the job ends failed.
    Cancel,
}

/// The dependencies of one task, named by task key within the same job.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DepGroup {
    /// How many of `upstream` must succeed.
    pub kind: GroupKind,
    /// Keys of the tasks this one waits for.
    pub upstream: Vec<String>,
    /// What happens once too many of them did not succeed.
    pub on_unsatisfied: UnsatisfiedPolicy,
}

/// Retry with exponential backoff: delay = min(max, base * factor^(failures-1)), then
/// reduced by up to `jitter_pct` percent using deterministic randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts that may fail before the task fails; 1 means no retry.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub backoff_base_ms: u64,
    /// Multiplier per further failure, at least 1.
    pub backoff_factor: u32,
    /// Cap on the delay, at least `backoff_base_ms`.
    pub backoff_max_ms: u64,
    /// Up to this percentage (0 to 100) is taken off each delay, so retries spread out.
    pub jitter_pct: u8,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff_base_ms: 1_000,
            backoff_factor: 2,
            backoff_max_ms: 60_000,
            jitter_pct: 20,
        }
    }
}

/// One task of a job: what to run, where it may run, and when.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique within the job.
    pub key: String,
    /// The input handed to the worker with each grant.
    pub payload: Payload,
    /// Only a worker advertising every one of these is offered the task.
    pub capabilities: Vec<String>,
    /// The tasks it waits for; `None` makes it ready at submission.
    pub deps: Option<DepGroup>,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// A running attempt longer than this is revoked and counted as a failure.
    pub attempt_timeout_ms: Option<u64>,
    /// The task is not ready before submission time plus this delay.
    pub delay_ms: u64,
    /// Overrides the job's priority; higher runs first within a lane.
    pub priority: Option<i32>,
    /// A failure of this task does not fail the job (downstream groups still see it).
    pub allow_failure: bool,
    /// Used only by the planner.
    pub estimated_ms: Option<u64>,
    /// The rate key whose token bucket (`RatePolicy::keys`) paces this task's grants,
    /// e.g. the external API it calls; a key with no bucket configured is not paced.
    pub rate_key: Option<String>,
    /// How the task's output stream keeps the frames its attempts emit.
    pub stream: StreamMode,
    /// The tasks whose output streams this one reads while they run, each at most once
    /// and none also in `deps`.
    pub stream_from: Vec<crate::edge_spec::StreamEdge>,
}

impl TaskSpec {
    /// A task with defaults, for tests and generated workloads.
    pub fn new(key: impl Into<String>) -> Self {
        TaskSpec {
            key: key.into(),
            payload: Payload::default(),
            capabilities: Vec::new(),
            deps: None,
            retry: RetryPolicy::default(),
            attempt_timeout_ms: None,
            delay_ms: 0,
            priority: None,
            allow_failure: false,
            estimated_ms: None,
            rate_key: None,
            stream: StreamMode::Durable,
            stream_from: Vec::new(),
        }
    }

    /// The task waits for `upstream` under `kind`, skipped if that cannot be met.
    pub fn after(mut self, kind: GroupKind, upstream: &[&str]) -> Self {
        self.deps = Some(DepGroup {
            kind,
            upstream: upstream.iter().map(|s| s.to_string()).collect(),
            on_unsatisfied: UnsatisfiedPolicy::Skip,
        });
        self
    }

    /// The task runs only on workers advertising every one of `caps`.
    pub fn requires(mut self, caps: &[&str]) -> Self {
        self.capabilities = caps.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// A job as submitted: a named DAG of tasks with its tenant, lane and bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobSpec {
    /// Client-chosen name, unique among live jobs; a resubmission of the same spec under
    /// the same name is answered with the existing job (live or retained) instead of
    /// creating another. Once that job has finished, a different spec under its name
    /// makes a new job.
    pub name: String,
    /// Whose quota and fair share the job counts against.
    pub tenant: String,
    /// The queue its tasks wait on; only workers serving it get them.
    pub lane: String,
    /// Default priority of its tasks; higher runs first within a lane.
    pub priority: i32,
    /// The job fails if it has not finished this long after submission.
    pub deadline_ms: Option<u64>,
    /// At most this many of the job's tasks hold a grant or a lease at once.
    pub max_concurrency: Option<u32>,
    /// Its tasks; their order fixes their ids.
    pub tasks: Vec<TaskSpec>,
    /// Keys of the tasks whose outputs are the job's result, each once. Empty means the
    /// sink tasks (those no other task depends on or streams from), so a spec that does
    /// not name its result gets what its DAG ends in.
    pub result: Vec<String>,
    /// The job's budgets by name (at most [`crate::MAX_BUDGETS_PER_JOB`]); its tasks
    /// count against these and against its tenant's.
    pub budgets: std::collections::BTreeMap<String, crate::budget_spec::BudgetSpec>,
}

impl JobSpec {
    /// A job in the default tenant and lane, for tests and generated workloads.
    pub fn new(name: impl Into<String>, tasks: Vec<TaskSpec>) -> Self {
        JobSpec {
            name: name.into(),
            tenant: "default".into(),
            lane: "default".into(),
            priority: 0,
            deadline_ms: None,
            max_concurrency: None,
            tasks,
            result: Vec::new(),
            budgets: Default::default(),
        }
    }
}

/// How a task's stream keeps its frames, as its spec declares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamMode {
    /// Every frame is kept until the job is forgotten. The frames count against the
    /// job's `Limits::max_output_bytes_per_job`; an emit past it is refused.
    #[default]
    Durable,
    /// Only the last `frames` frames are kept; older ones are let go (and counted).
    Bounded {
        /// How many frames are kept; at least 1.
        frames: u32,
    },
    /// Only the latest frame is kept: a summary a reader polls.
    Newest,
}

impl StreamMode {
    /// The most frames the stream keeps; `None` keeps every one.
    pub fn keeps(self) -> Option<u64> {
        match self {
            StreamMode::Durable => None,
            StreamMode::Bounded { frames } => Some(u64::from(frames)),
            StreamMode::Newest => Some(1),
        }
    }
}

#[cfg(test)]
mod payload_tests {
    use super::Payload;

    #[test]
    fn a_payload_encodes_as_the_sequence_of_bytes_it_always_did() {
        let bytes: Vec<u8> = (0..=255).chain([0, 7, 255]).collect();
        let payload = Payload::from(bytes.clone());
        let as_bytes = postcard::to_allocvec(&payload).unwrap();
        assert_eq!(as_bytes, postcard::to_allocvec(&bytes).unwrap());
        let back: Payload = postcard::from_bytes(&as_bytes).unwrap();
        assert_eq!(back, payload);
        let json = serde_json::to_string(&payload).unwrap();
        assert_eq!(json, serde_json::to_string(&bytes).unwrap());
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), payload);
        assert!(
            postcard::from_bytes::<Payload>(&[5, 1, 2]).is_err(),
            "a truncated payload"
        );
    }

    #[test]
    fn a_buffer_is_taken_over_and_shrunk_only_when_mostly_spare() {
        let mut tight = Vec::with_capacity(1024);
        tight.extend_from_slice(&[b'x'; 1000]);
        let at = tight.as_ptr();
        let payload = Payload::from(tight);
        assert_eq!(payload.0.as_ptr(), at, "taken over without a copy");
        assert_eq!(payload.0.capacity(), 1024);
        let mut loose = Vec::with_capacity(1 << 20);
        loose.extend_from_slice(b"small");
        let payload = Payload::from(loose);
        assert_eq!(
            payload.0.capacity(),
            5,
            "a retained output keeps no spare megabyte"
        );
        assert_eq!(payload.as_bytes(), b"small");
    }

    /// The shrink threshold is spare room over an eighth of the length: a buffer twice
    /// its length is shrunk, one exactly an eighth over is not.
    #[test]
    fn the_shrink_threshold_is_an_eighth_of_the_length() {
        let buffer = |len: usize, capacity: usize| {
            let mut v = Vec::with_capacity(capacity);
            v.resize(len, 7u8);
            Payload::from(v).0.capacity()
        };
        assert_eq!(buffer(1000, 2000), 1000, "twice its length is shrunk");
        assert_eq!(
            buffer(1024, 1024 + 128),
            1024 + 128,
            "an eighth over is kept"
        );
        assert_eq!(
            buffer(1024, 1024 + 129),
            1024,
            "more than an eighth over is shrunk"
        );
    }

    #[test]
    fn emptiness_is_the_length_being_zero() {
        assert!(Payload::default().is_empty());
        assert!(!Payload::from("x").is_empty());
    }

    /// Deserializers that hand over an owned buffer (rather than borrowing) keep it, and
    /// a value of the wrong type is refused naming what was expected.
    #[test]
    fn an_owned_buffer_is_kept_and_a_wrong_type_names_payload_bytes() {
        use serde::de::Visitor;
        let owned = super::PayloadVisitor
            .visit_byte_buf::<serde::de::value::Error>(b"owned".to_vec())
            .unwrap();
        assert_eq!(owned.as_bytes(), b"owned");
        let e = serde_json::from_str::<Payload>("5").unwrap_err();
        assert!(e.to_string().contains("payload bytes"), "{e}");
    }
}
