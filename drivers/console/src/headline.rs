//! The numbers at the top of every page: queue depth per lane, tasks finished per
//! second, claim-to-start latency, live jobs and workers.

use keel_coordinator::Histogram;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Throughput is averaged over this long.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Headline {
    /// Whether this coordinator leads its partition (a standby shows nothing live).
    pub leader: bool,
    pub queued: u64,
    /// Ready tasks per lane, lanes with none omitted.
    pub lanes: Vec<(String, u64)>,
    /// Tasks that finished (any outcome) per second over the last [`WINDOW`], or since
    /// the console started if that is shorter.
    pub finished_per_s: f64,
    pub window_s: u64,
    /// From a grant's offer to its acceptance: how many, and bucket bounds of the
    /// median and the 99th percentile ("≤ 5 ms", "> 30 s").
    pub claims: u64,
    pub claim_p50: Option<String>,
    pub claim_p99: Option<String>,
    pub jobs_active: usize,
    pub workers_live: usize,
    /// Whether cancel and retry are possible at all (a token file is configured).
    pub writable: bool,
}

fn seconds(secs: f64) -> String {
    if secs < 1.0 {
        format!("{} ms", (secs * 1000.0).round())
    } else {
        format!("{secs} s")
    }
}

/// The bucket bound holding quantile `q` of `h`: `≤ bound`, `> largest bound` when it
/// lies beyond every bucket, None when nothing was observed.
pub(crate) fn quantile(h: &Histogram, q: f64) -> Option<String> {
    if h.count == 0 {
        return None;
    }
    let rank = ((q * h.count as f64).ceil() as u64).max(1);
    let mut cumulative = 0;
    for (i, count) in h.counts.iter().enumerate() {
        cumulative += count;
        if cumulative >= rank {
            return Some(match h.bounds.get(i) {
                Some(bound) => format!("≤ {}", seconds(*bound)),
                None => format!("> {}", seconds(h.bounds.last().copied().unwrap_or(0.0))),
            });
        }
    }
    None
}

/// Finished-task counts sampled over time, summed over a sliding window.
#[derive(Debug)]
pub(crate) struct Throughput {
    started: Instant,
    samples: VecDeque<(Instant, u64)>,
}

impl Throughput {
    pub(crate) fn new(started: Instant) -> Throughput {
        Throughput {
            started,
            samples: VecDeque::new(),
        }
    }

    pub(crate) fn add(&mut self, at: Instant, finished: u64) {
        self.samples.push_back((at, finished));
        while let Some((first, _)) = self.samples.front() {
            if at.duration_since(*first) > WINDOW {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Per second over the window ending at `now`, rounded to hundredths.
    pub(crate) fn rate(&self, now: Instant) -> (f64, u64) {
        let span = now.duration_since(self.started).min(WINDOW);
        let total: u64 = self
            .samples
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, n)| n)
            .sum();
        let secs = span.as_secs_f64().max(1.0);
        (
            (total as f64 / secs * 100.0).round() / 100.0,
            span.as_secs(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_name_their_bucket_bound() {
        let mut h = Histogram::new(&[0.005, 0.1, 30.0]);
        assert_eq!(quantile(&h, 0.5), None);
        for v in [0.001, 0.002, 0.05, 60.0] {
            h.observe(v);
        }
        assert_eq!(quantile(&h, 0.5).as_deref(), Some("≤ 5 ms"));
        assert_eq!(quantile(&h, 0.75).as_deref(), Some("≤ 100 ms"));
        assert_eq!(quantile(&h, 0.99).as_deref(), Some("> 30 s"));
    }

    #[test]
    fn throughput_forgets_samples_older_than_the_window() {
        let t0 = Instant::now();
        let mut t = Throughput::new(t0);
        t.add(t0 + Duration::from_secs(5), 50);
        assert_eq!(t.rate(t0 + Duration::from_secs(10)), (5.0, 10));
        t.add(t0 + Duration::from_secs(70), 30);
        assert_eq!(t.rate(t0 + Duration::from_secs(70)), (0.5, 60));
        assert_eq!(t.rate(t0 + Duration::from_secs(200)).0, 0.0);
    }
}
