//! Where each part of a job file sits, so a refusal can point at the key it is about.

use std::ops::Range;

/// Where each part of the job sits in the file, indexed like `JobSpec::tasks`.
pub(crate) struct Spans {
    pub(crate) job: Range<usize>,
    pub(crate) name: Range<usize>,
    pub(crate) tenant: Option<Range<usize>>,
    pub(crate) lane: Option<Range<usize>>,
    pub(crate) defaults_retry: Option<Range<usize>>,
    pub(crate) deadline: Option<Range<usize>>,
    /// Spans of the result task ids, in the order of `JobSpec::result`.
    pub(crate) result: Vec<Range<usize>>,
    pub(crate) tasks: Vec<TaskSpans>,
    pub(crate) budgets: crate::budget_load::BudgetSpans,
}

pub(crate) struct TaskSpans {
    pub(crate) id: Range<usize>,
    /// Spans of the upstream ids, in the order of `DepGroup::upstream`.
    pub(crate) deps: Option<(Range<usize>, Vec<Range<usize>>)>,
    pub(crate) quorum: Option<Range<usize>>,
    /// Spans of the `stream_from` entries, in the order of `TaskSpec::stream_from`.
    pub(crate) stream_from: Option<(Range<usize>, Vec<Range<usize>>)>,
    /// Spans of the capability tokens, in the order of `TaskSpec::capabilities`.
    pub(crate) capabilities: Option<(Range<usize>, Vec<Range<usize>>)>,
    pub(crate) payload: Option<Range<usize>>,
    pub(crate) retry: Option<Range<usize>>,
    /// The task's own `attempt_timeout`, else the one in `[defaults]`.
    pub(crate) attempt_timeout: Option<Range<usize>>,
}

pub(crate) type Located = (Range<usize>, String);
