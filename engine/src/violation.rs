//! What the invariant checker reports: the kind of invariant broken and a sentence
//! about what broke it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The first invariant found broken: which kind of invariant, and what broke it,
/// described for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which invariant broke.
    pub kind: InvariantKind,
    /// What broke it, naming the ids involved.
    pub detail: String,
}

/// The kinds of safety invariant the checker recomputes, so a caller can tell a broken
/// count from a broken fence without reading the sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InvariantKind {
    /// An id names nothing (a job, worker, lane, tenant or capability set), or a record
    /// is stored under another id.
    Reference,
    /// A grant or lease and the task, worker and grant records that hold it disagree.
    Holding,
    /// A count kept as things change (per job, tenant or capability set) differs from
    /// a recount.
    Count,
    /// A worker, job or tenant holds more than its concurrency cap.
    ConcurrencyCap,
    /// A task went to a worker without its capabilities, or is blocked while covered.
    Capability,
    /// A blacklisted worker was offered a grant.
    Blacklist,
    /// A deadline has no timer, or a lease outlived its expiry.
    Timer,
    /// The ready index or a parked or blocked set disagrees with a task's state.
    ReadyIndex,
    /// A task's attempt history is out of order or disagrees with its state.
    History,
    /// A worker waits for work without credits.
    Credits,
    /// A global limit, an id ceiling or a configuration floor is exceeded.
    Limit,
    /// A task's stream holds frames out of order, miscounts them, keeps more than its
    /// mode allows, or holds a frame of an attempt the task never ran.
    Stream,
    /// A waiting worker could be offered a ready task that dispatch left unoffered.
    Dispatch,
}

impl InvariantKind {
    /// Every kind, in declaration order.
    pub const ALL: [InvariantKind; 13] = [
        InvariantKind::Reference,
        InvariantKind::Holding,
        InvariantKind::Count,
        InvariantKind::ConcurrencyCap,
        InvariantKind::Capability,
        InvariantKind::Blacklist,
        InvariantKind::Timer,
        InvariantKind::ReadyIndex,
        InvariantKind::History,
        InvariantKind::Credits,
        InvariantKind::Limit,
        InvariantKind::Stream,
        InvariantKind::Dispatch,
    ];

    /// A stable snake_case name.
    pub fn label(self) -> &'static str {
        match self {
            InvariantKind::Reference => "reference",
            InvariantKind::Holding => "holding",
            InvariantKind::Count => "count",
            InvariantKind::ConcurrencyCap => "concurrency_cap",
            InvariantKind::Capability => "capability",
            InvariantKind::Blacklist => "blacklist",
            InvariantKind::Timer => "timer",
            InvariantKind::ReadyIndex => "ready_index",
            InvariantKind::History => "history",
            InvariantKind::Credits => "credits",
            InvariantKind::Limit => "limit",
            InvariantKind::Stream => "stream",
            InvariantKind::Dispatch => "dispatch",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.detail)
    }
}

impl std::error::Error for Violation {}
