//! Deliberate defects the simulator injects to prove its checkers catch a broken
//! engine; compiled only with the `fault-injection` feature.

/// Deliberate defects, compiled only for tests that prove the checkers catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Accept completions and failures whatever fence they carry.
    pub ignore_fencing: bool,
    /// Panic on a submission of a job named [`INJECTED_PANIC_JOB`], to drive a
    /// driver's handling of an engine panic.
    pub panic_on_injected_job: bool,
    /// Panic on a timer tick at or after this time that fires a timer, to drive a
    /// driver's naming of a tick that panics the engine.
    pub panic_on_tick_from: Option<crate::ids::Time>,
    /// Store the output of a completion refused for its stale fence (a zombie's or a
    /// losing duplicate's) over the task's committed output, where downstream grants
    /// and result reads see it. Control flow is untouched: the completion is still
    /// refused and the counts stay exact, so only a check on the data can tell.
    pub leak_stale_outputs: bool,
    /// Refill rate buckets twice as fast as configured: a burst after a quiet spell
    /// still looks right, so only a check over longer windows can tell.
    pub fast_refill: bool,
    /// A schedule's catch-up after downtime starts from the last due time it already
    /// ran instead of the first one missed, so that one runs a second time.
    pub schedule_refire: bool,
    /// A usage report whose dedup key was already counted is counted again while its
    /// attempt still runs (a resend after the attempt ended is still a duplicate), so
    /// only duplicated or resent reports show it.
    pub recount_usage: bool,
    /// Dispatch passes over a queue whose head task is on a second or later attempt, so
    /// a retried task (and whatever queues behind it) waits for ever while the engine's
    /// state stays consistent: only the check that every job ends can tell.
    pub starve_retries: bool,
    /// A resumed task's signal is handed only to its first attempt, so a retry after
    /// the resume runs without what it waited for: the task is otherwise sound, and
    /// only a check on what each grant carries can tell.
    pub signal_first_attempt_only: bool,
    /// An emit resent from a position already appended appends its frames again
    /// instead of skipping those it holds, so a resend duplicates frames in the stream.
    /// Every count stays consistent; only a reader of the stream can tell.
    pub reappend_resent_frames: bool,
    /// A consumer's read through its streaming edge ignores the cursor it acknowledged,
    /// so a retried consumer is given again the frames it processed. Every count stays
    /// consistent; only a check of what each consumer reads can tell.
    pub ignore_acked_cursor: bool,
}

/// The job name [`Faults::panic_on_injected_job`] panics on.
pub const INJECTED_PANIC_JOB: &str = "keel-injected-panic";
