//! Swarm profiles: each seed draws its own mix of faults and workload from many knobs,
//! so thousands of seeds explore very different worlds instead of one average one. The
//! profile then generates a full scenario (workers, jobs, fault schedule) from the same
//! seed, which is what gets run, printed and shrunk.

use crate::budget_knobs::BudgetKnobs;
use crate::rng::{SimRng, Stream};
use crate::scenario::{EngineKnobs, Expect, NetworkSpec, Scenario};
use keel_engine::{Rate, RatePolicy};
use std::fmt;

/// Which way network partitions cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// No partitions.
    None,
    /// Both directions cut at once.
    Symmetric,
    /// One direction cut: to or from the coordinator.
    Asymmetric,
    /// Each partition picks its direction.
    Mixed,
}

/// The dependency structure of generated jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobShape {
    /// No dependencies.
    Independent,
    /// Each task after the one before.
    Chain,
    /// One root, a fan of tasks after it, and one sink after them all.
    FanOutIn,
    /// Any-of and quorum groups over earlier tasks.
    Groups,
    /// Each job picks its shape.
    Mixed,
}

/// The knobs one seed turned.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// The seed the knobs and the scenario are drawn from.
    pub seed: u64,
    /// Workers in the pool.
    pub workers: u32,
    /// Tasks each worker runs at once.
    pub max_concurrency: u32,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Probability a message is delayed past later ones.
    pub reorder: f64,
    /// Longest one-way network delay.
    pub latency_max_ms: u64,
    /// How partitions cut.
    pub partition: PartitionMode,
    /// Partitions during the fault phase.
    pub partitions: u32,
    /// Worker crashes.
    pub crashes: u32,
    /// Probability a crashed worker restarts.
    pub restart: f64,
    /// Worker pauses (a stalled process that wakes as a zombie).
    pub pauses: u32,
    /// Longest pause; pauses last half of it to all of it.
    pub pause_ms: u64,
    /// Bound on each worker's clock drift, in parts per million (its sign is the drift's).
    pub drift_ppm: i64,
    /// Sudden worker clock jumps, each up to a lease TTL either way.
    pub clock_steps: u32,
    /// Fraction of workers whose handlers sometimes fail.
    pub flaky_fraction: f64,
    /// How often a flaky worker's handler fails.
    pub flaky_rate: f64,
    /// Fraction of workers that run tasks 1 to 10 times slower.
    pub slow_fraction: f64,
    /// How many of the capability names (gpu, ssd, arm) are in play.
    pub capabilities: u32,
    /// Dependency structure of the jobs.
    pub shape: JobShape,
    /// Jobs submitted.
    pub jobs: u32,
    /// Tasks in each job.
    pub tasks_per_job: u32,
    /// Fraction of tasks whose first 1 to 5 attempts fail.
    pub poison_rate: f64,
    /// Probability each job is cancelled while it runs.
    pub cancel_rate: f64,
    /// Coordinator crashes (each recovers from its log).
    pub coordinator_crashes: u32,
    /// The engine's grant TTL.
    pub grant_ttl_ms: u64,
    /// The engine's lease TTL.
    pub lease_ttl_ms: u64,
    /// The engine's liveness timeout.
    pub liveness_timeout_ms: u64,
    /// Whether jobs carry a concurrency cap.
    pub job_caps: bool,
    /// Workers that join during the fault phase instead of at the start.
    pub late_workers: u32,
    /// Length of the fault phase; the network heals after it.
    pub fault_ms: u64,
    /// Coordinator appends that fail.
    pub append_failures: u32,
    /// Coordinator appends that tear (part of the batch reaches the disk).
    pub torn_appends: u32,
    /// Bytes that flip on the coordinator's disk.
    pub corruptions: u32,
    /// Windows of slow fsync, each append taking `fsync_ms`.
    pub slow_fsyncs: u32,
    /// How long each append takes inside a slow-fsync window.
    pub fsync_ms: u64,
    /// How often a client reads a job's status through the commit pipeline; 0 never.
    pub reads_every_ms: u64,
    /// Tokens per second of the bucket on rate key `api`, which half the tasks name;
    /// 0 leaves grants unpaced.
    pub rate_per_s: u32,
    /// The burst of that bucket (and of the lane's).
    pub rate_burst: u32,
    /// Whether the default lane, which every job uses, has a bucket of the same rate.
    pub lane_rate: bool,
    /// The interval of a schedule added at the start and deleted when the fault phase
    /// ends; 0 adds none.
    pub schedule_every_ms: u64,
    /// Its overlap policy: `skip`, `queue_one` or `allow`.
    pub schedule_overlap: &'static str,
    /// Its misfire policy: `run_once`, `run_all` or `skip`.
    pub schedule_misfire: &'static str,
    /// Job and tenant budgets (drawn from a stream of their own).
    pub budgets: BudgetKnobs,
    /// The share of tasks that suspend until the client signals them; 0 for none.
    pub wait_rate: f64,
    /// The share of tasks whose attempts emit frames to their streams; 0 for none.
    pub stream_rate: f64,
    /// The share of streaming tasks of jobs without dependencies that the next task
    /// reads through a streaming edge; 0 for none.
    pub edge_rate: f64,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "profile: seed={} workers={} conc={} loss={:.3} dup={:.3} reorder={:.3} latency_max={}ms partition={:?}x{} \
             crashes={} restart={:.2} pauses={}x{}ms drift={}ppm clock_steps={} flaky={:.2}@{:.2} slow={:.2} caps={} \
             shape={:?} jobs={}x{} poison={:.2} cancel={:.2} coord_crashes={} grant_ttl={}ms lease_ttl={}ms \
             liveness_timeout={}ms job_caps={} late_workers={} fault_phase={}ms append_failures={} \
             torn_appends={} corruptions={} slow_fsync={}x{}ms reads_every={}ms rate={}/s burst={} lane_rate={} \
             schedule_every={}ms overlap={} misfire={} budget_jobs={:.2} tenant_budget_reset={}ms \
             tenant_budget_revoke={} waits={:.2} streams={:.2} edges={:.2}",
            self.seed, self.workers, self.max_concurrency, self.loss, self.duplicate, self.reorder, self.latency_max_ms,
            self.partition, self.partitions, self.crashes, self.restart, self.pauses, self.pause_ms, self.drift_ppm,
            self.clock_steps, self.flaky_fraction, self.flaky_rate, self.slow_fraction, self.capabilities, self.shape,
            self.jobs, self.tasks_per_job, self.poison_rate, self.cancel_rate, self.coordinator_crashes,
            self.grant_ttl_ms, self.lease_ttl_ms, self.liveness_timeout_ms, self.job_caps, self.late_workers, self.fault_ms,
            self.append_failures, self.torn_appends, self.corruptions, self.slow_fsyncs, self.fsync_ms,
            self.reads_every_ms, self.rate_per_s, self.rate_burst, self.lane_rate,
            self.schedule_every_ms, self.schedule_overlap, self.schedule_misfire,
            self.budgets.job_share, self.budgets.tenant_reset_ms, self.budgets.tenant_revoke,
            self.wait_rate, self.stream_rate, self.edge_rate
        )
    }
}

/// Off most of the time, otherwise uniform up to `max`: swarm testing's trick of
/// leaving many knobs at zero so the rest get room to act.
fn sometimes(rng: &mut SimRng, max: f64) -> f64 {
    if rng.chance(0.5) {
        0.0
    } else {
        rng.unit() * max
    }
}

fn count(rng: &mut SimRng, max: u64) -> u32 {
    if rng.chance(0.4) {
        0
    } else {
        rng.between(1, max) as u32
    }
}

/// With probability `p`, 1 to `max`; otherwise 0 (for faults that end or stop a run's
/// coordinator, which most seeds should leave alone).
fn rarely(rng: &mut SimRng, p: f64, max: u64) -> u32 {
    if rng.chance(p) {
        rng.between(1, max) as u32
    } else {
        0
    }
}

/// With probability `p`, one of `values`; otherwise 0.
fn maybe(rng: &mut SimRng, p: f64, values: &[u64]) -> u64 {
    if rng.chance(p) {
        *rng.pick(values)
    } else {
        0
    }
}

pub(crate) const CAPS: [&str; 3] = ["gpu", "ssd", "arm"];
const OVERLAPS: [&str; 3] = ["skip", "queue_one", "allow"];
const MISFIRES: [&str; 3] = ["run_once", "run_all", "skip"];
/// The rate key paced tasks name.
pub(crate) const RATE_KEY: &str = "api";

impl Profile {
    /// The knobs `seed` turns: many left at zero, so the rest get room to act.
    pub fn draw(seed: u64) -> Profile {
        let rng = &mut SimRng::new(seed, Stream::Profile);
        let lease_ttl_ms = *rng.pick(&[2_000, 5_000, 10_000, 30_000]);
        Profile {
            seed,
            workers: rng.between(1, 8) as u32,
            max_concurrency: rng.between(1, 4) as u32,
            loss: sometimes(rng, 0.2),
            duplicate: sometimes(rng, 0.2),
            reorder: sometimes(rng, 0.3),
            latency_max_ms: *rng.pick(&[1, 5, 20, 200]),
            partition: *rng.pick(&[
                PartitionMode::None,
                PartitionMode::Symmetric,
                PartitionMode::Asymmetric,
                PartitionMode::Mixed,
            ]),
            partitions: count(rng, 4),
            crashes: count(rng, 4),
            restart: rng.unit(),
            pauses: count(rng, 4),
            pause_ms: lease_ttl_ms * rng.between(1, 4),
            drift_ppm: sometimes(rng, 100_000.0) as i64 * if rng.chance(0.5) { -1 } else { 1 },
            clock_steps: count(rng, 3),
            flaky_fraction: sometimes(rng, 1.0),
            flaky_rate: rng.unit(),
            slow_fraction: sometimes(rng, 1.0),
            capabilities: rng.below(4) as u32,
            shape: *rng.pick(&[
                JobShape::Independent,
                JobShape::Chain,
                JobShape::FanOutIn,
                JobShape::Groups,
                JobShape::Mixed,
            ]),
            jobs: rng.between(1, 4) as u32,
            tasks_per_job: rng.between(1, 12) as u32,
            poison_rate: sometimes(rng, 0.3),
            cancel_rate: sometimes(rng, 0.5),
            coordinator_crashes: count(rng, 3),
            grant_ttl_ms: *rng.pick(&[500, 2_000, 5_000]),
            lease_ttl_ms,
            liveness_timeout_ms: lease_ttl_ms / 2 * rng.between(1, 3),
            job_caps: rng.chance(0.3),
            late_workers: count(rng, 2),
            fault_ms: rng.between(20, 120) * 1_000,
            // Drawn after every older knob, so those keep their values for each seed.
            append_failures: rarely(rng, 0.15, 2),
            torn_appends: rarely(rng, 0.15, 2),
            corruptions: rarely(rng, 0.03, 1),
            slow_fsyncs: rarely(rng, 0.2, 3),
            fsync_ms: *rng.pick(&[5, 50, 500]),
            reads_every_ms: maybe(rng, 0.5, &[200, 1_000, 5_000]),
            rate_per_s: maybe(rng, 0.3, &[1, 5, 20]) as u32,
            rate_burst: rng.between(1, 3) as u32,
            lane_rate: rng.chance(0.3),
            schedule_every_ms: 0,
            schedule_overlap: OVERLAPS[0],
            schedule_misfire: MISFIRES[0],
            budgets: BudgetKnobs::draw(seed),
            wait_rate: 0.0,
            stream_rate: stream_rate(seed),
            edge_rate: edge_rate(seed),
        }
        .with_schedule(rng)
    }

    /// The schedule knobs, then the waiting knob, drawn after every older knob.
    fn with_schedule(mut self, rng: &mut SimRng) -> Profile {
        if rng.chance(0.3) {
            self.schedule_every_ms = *rng.pick(&[1_000, 3_000, 10_000]);
        }
        self.schedule_overlap = OVERLAPS[rng.below(3) as usize];
        self.schedule_misfire = MISFIRES[rng.below(3) as usize];
        if rng.chance(0.3) {
            self.wait_rate = *rng.pick(&[0.2, 0.5, 1.0]);
        }
        self
    }

    /// A profile drawn from `seed`, resized: `workers` workers and `tasks` tasks in jobs
    /// of up to 100, with a fault phase of `fault_ms`. Used for long chaos runs and the
    /// throughput bench.
    pub fn at_scale(seed: u64, workers: u32, tasks: u32, fault_ms: u64) -> Profile {
        let mut p = Profile::draw(seed);
        p.workers = workers;
        p.tasks_per_job = tasks.min(100);
        p.jobs = tasks.div_ceil(p.tasks_per_job.max(1));
        p.fault_ms = fault_ms;
        let scale = (fault_ms / 60_000).max(1) as u32;
        p.crashes *= scale;
        p.pauses *= scale;
        p.partitions *= scale;
        p.clock_steps *= scale;
        p
    }

    /// The buckets the rate knobs configure.
    fn rates(&self) -> RatePolicy {
        let mut rates = RatePolicy::default();
        if self.rate_per_s == 0 {
            return rates;
        }
        let bucket = Rate {
            rate: self.rate_per_s,
            per_ms: 1_000,
            burst: self.rate_burst.max(1),
        };
        rates.keys.insert(RATE_KEY.into(), bucket);
        if self.lane_rate {
            rates.lanes.insert("default".into(), bucket);
        }
        rates
    }

    /// The scenario this profile generates: drawn from the seed's profile stream after
    /// the knobs, so it depends only on the seed.
    pub fn scenario(&self) -> Scenario {
        let rng = &mut SimRng::new(self.seed, Stream::Profile);
        for _ in 0..64 {
            rng.next_u64(); // past the knob draws
        }
        let workers = self.gen_workers(rng);
        let mut jobs = self.gen_jobs(rng, &workers);
        let faults = self.gen_faults(rng, &workers, &jobs);
        let budgets = self.gen_budgets(&mut jobs);
        // Worst case, as if every attempt ran one after another on the slowest worker
        // after its backoff and after every timeout that can delay it: generous, but a
        // stuck job still fails the bound.
        let slowest = workers.iter().map(|w| w.slowness).fold(1.0, f64::max);
        let overhead =
            self.grant_ttl_ms + 2 * self.lease_ttl_ms + self.liveness_timeout_ms + 10_000;
        let worst: u64 = jobs
            .iter()
            .flat_map(|j| &j.tasks)
            .map(|t| {
                (t.max_attempts as u64 + 5)
                    * ((t.duration_ms as f64 * slowest) as u64 + 8 * t.backoff_ms + overhead)
            })
            .sum();
        let liveness_ms = 120_000 + worst;
        Scenario {
            name: format!("swarm-{}", self.seed),
            description: self.to_string(),
            heal_at_ms: self.fault_ms,
            liveness_ms,
            reads_every_ms: self.reads_every_ms,
            engine: EngineKnobs {
                grant_ttl_ms: Some(self.grant_ttl_ms),
                lease_ttl_ms: Some(self.lease_ttl_ms),
                liveness_timeout_ms: Some(self.liveness_timeout_ms),
                blacklist_threshold: Some(3),
                blacklist_window_ms: Some(30_000),
                blacklist_cooldown_ms: Some(10_000),
                rates: self.rates(),
                budgets,
                ..EngineKnobs::default()
            },
            network: NetworkSpec {
                latency_min_ms: 1,
                latency_max_ms: self.latency_max_ms,
                loss: self.loss,
                duplicate: self.duplicate,
                reorder: self.reorder,
                reorder_ms: 2 * self.latency_max_ms + 10,
                sync_interval_ms: 2,
            },
            workers,
            jobs,
            schedules: self.gen_schedules(),
            faults,
            script: Vec::new(),
            expect: Expect::default(),
        }
    }
}

/// The share of tasks that stream, from a stream of its own: a seed's workload and
/// faults do not change with it.
fn stream_rate(seed: u64) -> f64 {
    let rng = &mut SimRng::new(seed, Stream::Streams);
    if rng.chance(0.3) {
        *rng.pick(&[0.2, 0.5, 1.0])
    } else {
        0.0
    }
}

/// The share of streaming tasks read through an edge, from a stream of its own.
fn edge_rate(seed: u64) -> f64 {
    let rng = &mut SimRng::new(seed, Stream::Edges);
    if rng.chance(0.3) {
        *rng.pick(&[0.3, 0.6, 1.0])
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_vary_and_generate_valid_scenarios() {
        let mut shapes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let p = Profile::draw(seed);
            assert_eq!(p, Profile::draw(seed));
            shapes.insert(format!("{:?}", p.shape));
            let s = p.scenario();
            crate::load::check_generated(&s)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", s.to_toml()));
            assert_eq!(s, p.scenario());
        }
        assert_eq!(shapes.len(), 5);
    }

    #[test]
    fn the_profile_line_names_every_knob() {
        let line = Profile::draw(42).to_string();
        assert!(line.starts_with("profile: seed=42 "));
        assert!(line.matches('=').count() >= 25, "{line}");
    }
}
