//! Counters and histograms of one coordinator, as plain data, and their Prometheus
//! text rendering. The engine task is the only writer; `Handle::metrics` copies them.

use keel_engine::{Accepted, Effect, EndReason, GrantId, Time};
use keel_log::{Epoch, Offset, Partition};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Buckets of a histogram: `counts[i]` observations were at most `bounds[i]` (and
/// above the bound before); the last count is above every bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Upper bounds of the buckets, increasing.
    pub bounds: Vec<f64>,
    /// Observations per bucket; one more than `bounds`.
    pub counts: Vec<u64>,
    /// Sum of every observation.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts `value` in its bucket.
    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        if let Some(count) = self.counts.get_mut(bucket) {
            *count += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// A coordinator's metrics at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// The partition served.
    pub partition: Partition,
    /// Whether this coordinator leads it now.
    pub leader: bool,
    /// Its leadership epoch (current or last).
    pub epoch: Epoch,
    /// Where the next append goes: every entry before it is durable.
    pub log_end: Offset,
    /// Ready tasks waiting for a grant. The engine keeps one ready index, so there is
    /// no split by lane.
    pub queued: u64,
    /// Inputs applied and made durable, ticks included.
    pub inputs: u64,
    /// Of those, timer ticks.
    pub ticks: u64,
    /// Commands the engine refused.
    pub rejections: u64,
    /// Grant offers made.
    pub grants: u64,
    /// Leases revoked because the worker stopped renewing.
    pub lease_expiries: u64,
    /// Attempts that ended without finishing their task and were requeued.
    pub requeues: u64,
    /// Workers set aside for failing too often.
    pub blacklisted: u64,
    /// Blacklisted workers given grants again.
    pub readmitted: u64,
    /// Worker instances declared lost.
    pub workers_lost: u64,
    /// Worker effects dropped because the worker had no session.
    pub effects_dropped: u64,
    /// Snapshots stored.
    pub snapshots: u64,
    /// Snapshots that failed to store (the log keeps growing until one succeeds).
    pub snapshot_failures: u64,
    /// Heartbeats answered without being applied or logged (a repeat within a window).
    pub heartbeats_absorbed: u64,
    /// Worker sessions whose effect route was dropped because they fell behind.
    pub sessions_dropped: u64,
    /// Appends that failed; each rebuilt the engine from the log.
    pub append_failures: u64,
    /// Terms of leadership begun (the first, and each time the partition was taken
    /// back).
    pub terms: u64,
    /// Inputs per group commit.
    pub append_batch_size: Histogram,
    /// Wall time of each log append.
    pub append_latency_seconds: Histogram,
    /// Engine time from a grant's offer to the worker's accepting it.
    pub claim_to_start_seconds: Histogram,
}

const SIZE_BOUNDS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
const APPEND_BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
const CLAIM_BOUNDS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
];

impl Metrics {
    /// Zeroed metrics of a coordinator that just began leading at `epoch`.
    pub fn new(partition: Partition, epoch: Epoch, log_end: Offset) -> Metrics {
        Metrics {
            partition,
            leader: true,
            epoch,
            log_end,
            queued: 0,
            inputs: 0,
            ticks: 0,
            rejections: 0,
            grants: 0,
            lease_expiries: 0,
            requeues: 0,
            blacklisted: 0,
            readmitted: 0,
            workers_lost: 0,
            effects_dropped: 0,
            snapshots: 0,
            snapshot_failures: 0,
            heartbeats_absorbed: 0,
            sessions_dropped: 0,
            append_failures: 0,
            terms: 0,
            append_batch_size: Histogram::new(&SIZE_BOUNDS),
            append_latency_seconds: Histogram::new(&APPEND_BOUNDS),
            claim_to_start_seconds: Histogram::new(&CLAIM_BOUNDS),
        }
    }

    pub(crate) fn count_effect(&mut self, effect: &Effect) {
        match effect {
            Effect::GrantOffered { .. } => self.grants += 1,
            Effect::LeaseRevoked {
                reason: EndReason::LeaseExpired,
                ..
            } => self.lease_expiries += 1,
            Effect::TaskRequeued { .. } => self.requeues += 1,
            Effect::WorkerBlacklisted { .. } => self.blacklisted += 1,
            Effect::WorkerReadmitted { .. } => self.readmitted += 1,
            Effect::WorkerLost { .. } => self.workers_lost += 1,
            _ => {}
        }
    }

    /// The Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let label = format!("partition=\"{}\"", self.partition);
        for (name, help, value) in self.gauges() {
            metric_header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "keel_coordinator_{name}{{{label}}} {value}");
        }
        for (name, help, value) in self.counters() {
            metric_header(&mut out, name, help, "counter");
            let _ = writeln!(out, "keel_coordinator_{name}{{{label}}} {value}");
        }
        for (name, help, histogram) in self.histograms() {
            metric_header(&mut out, name, help, "histogram");
            render_histogram(&mut out, name, &label, histogram);
        }
        out
    }

    /// Gauges as (name, help, value), in exposition order.
    fn gauges(&self) -> [(&'static str, &'static str, u64); 4] {
        [
            (
                "leader",
                "1 while this coordinator leads the partition",
                u64::from(self.leader),
            ),
            (
                "epoch",
                "The leadership epoch this coordinator holds or held",
                self.epoch,
            ),
            (
                "log_end",
                "Offset of the next append; all before it is durable",
                self.log_end,
            ),
            (
                "queued_tasks",
                "Ready tasks waiting for a grant",
                self.queued,
            ),
        ]
    }

    /// Counters as (name, help, value), in exposition order.
    fn counters(&self) -> [(&'static str, &'static str, u64); 17] {
        [
            (
                "inputs_total",
                "Inputs applied and made durable",
                self.inputs,
            ),
            ("ticks_total", "Timer ticks applied", self.ticks),
            (
                "rejections_total",
                "Inputs the engine rejected",
                self.rejections,
            ),
            ("grants_total", "Grant offers made", self.grants),
            (
                "lease_expiries_total",
                "Leases revoked on expiry",
                self.lease_expiries,
            ),
            (
                "requeues_total",
                "Tasks requeued as a new attempt",
                self.requeues,
            ),
            ("blacklisted_total", "Workers blacklisted", self.blacklisted),
            (
                "readmitted_total",
                "Workers readmitted after a cooldown",
                self.readmitted,
            ),
            (
                "workers_lost_total",
                "Workers declared lost",
                self.workers_lost,
            ),
            (
                "effects_dropped_total",
                "Worker effects with no session to go to",
                self.effects_dropped,
            ),
            ("snapshots_total", "Snapshots stored", self.snapshots),
            (
                "snapshot_failures_total",
                "Snapshots the log failed to store",
                self.snapshot_failures,
            ),
            (
                "batches_total",
                "Group commits appended",
                self.append_batch_size.count,
            ),
            (
                "heartbeats_absorbed_total",
                "Repeated heartbeats answered without being logged",
                self.heartbeats_absorbed,
            ),
            (
                "sessions_dropped_total",
                "Worker sessions ended because they fell behind their effects",
                self.sessions_dropped,
            ),
            (
                "append_failures_total",
                "Appends that failed and rebuilt the engine from the log",
                self.append_failures,
            ),
            ("terms_total", "Terms of leadership begun", self.terms),
        ]
    }

    /// Histograms as (name, help, histogram), in exposition order.
    fn histograms(&self) -> [(&'static str, &'static str, &Histogram); 3] {
        [
            (
                "append_batch_size",
                "Inputs per group commit",
                &self.append_batch_size,
            ),
            (
                "append_latency_seconds",
                "Time to append one group commit",
                &self.append_latency_seconds,
            ),
            (
                "claim_to_start_seconds",
                "From a grant's offer to its acceptance",
                &self.claim_to_start_seconds,
            ),
        ]
    }
}

fn metric_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP keel_coordinator_{name} {help}");
    let _ = writeln!(out, "# TYPE keel_coordinator_{name} {kind}");
}

fn render_histogram(out: &mut String, name: &str, label: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        cumulative += count;
        let _ = writeln!(
            out,
            "keel_coordinator_{name}_bucket{{{label},le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "keel_coordinator_{name}_bucket{{{label},le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "keel_coordinator_{name}_sum{{{label}}} {}", h.sum);
    let _ = writeln!(out, "keel_coordinator_{name}_count{{{label}}} {}", h.count);
}

/// Offers still open, to time how long workers take to accept them. Offers made before
/// a restart are unknown, so their acceptances are not timed.
#[derive(Default)]
pub(crate) struct OpenOffers {
    offered_at: BTreeMap<GrantId, Time>,
}

/// Offers remembered at most; the oldest are forgotten first.
const MAX_OPEN_OFFERS: usize = 100_000;

impl OpenOffers {
    pub(crate) fn see(&mut self, now: Time, effect: &Effect) {
        match effect {
            Effect::GrantOffered { grant, .. } => {
                self.offered_at.insert(*grant, now);
                if self.offered_at.len() > MAX_OPEN_OFFERS {
                    self.offered_at.pop_first();
                }
            }
            Effect::GrantWithdrawn { grant, .. } => {
                self.offered_at.remove(grant);
            }
            _ => {}
        }
    }

    /// Seconds from the offer of `grant` to `now`, if this accepted it.
    pub(crate) fn accepted(&mut self, grant: GrantId, now: Time, reply: &Accepted) -> Option<f64> {
        match reply {
            Accepted::LeaseStarted {
                duplicate: false, ..
            } => {
                let offered = self.offered_at.remove(&grant)?;
                Some(now.saturating_sub(offered) as f64 / 1000.0)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_bounds_and_render_cumulatively() {
        let mut m = Metrics::new(3, 2, 10);
        for size in [1.0, 2.0, 3.0, 5000.0] {
            m.append_batch_size.observe(size);
        }
        assert_eq!(&m.append_batch_size.counts[..3], &[1, 1, 1]);
        assert_eq!(m.append_batch_size.counts.last(), Some(&1));
        let text = m.render_prometheus();
        assert!(
            text.contains(
                "keel_coordinator_append_batch_size_bucket{partition=\"3\",le=\"4\"} 3\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "keel_coordinator_append_batch_size_bucket{partition=\"3\",le=\"+Inf\"} 4\n"
        ));
        assert!(text.contains("keel_coordinator_append_batch_size_sum{partition=\"3\"} 5006\n"));
        assert!(text.contains("keel_coordinator_batches_total{partition=\"3\"} 4\n"));
        assert!(text.contains("keel_coordinator_log_end{partition=\"3\"} 10\n"));
    }
}
