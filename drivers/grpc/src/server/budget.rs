//! Sizing the server's and the engine's global limits from one memory budget
//! (`keel serve --max-memory`), so a coordinator refuses work with RESOURCE_EXHAUSTED
//! before its memory runs out instead of growing until the operating system kills it.
//!
//! With `B` the budget in bytes:
//!
//! | limit | formula | at 2 GiB |
//! | --- | --- | --- |
//! | `max_message_bytes` (one frame or request) | `B / 128`, within 2..=16 MiB | 16 MiB |
//! | `max_sessions` (worker sessions at once) | `B / 1 MiB`: a quarter of `B` at ~256 KiB per session (stream windows, its queue, frames in flight) | 2,048 |
//! | `max_watches` (`WatchJob` and `TailStream` streams at once) | `B / 4 MiB` | 512 |
//! | engine `max_workers` | `max_sessions` | 2,048 |
//! | engine `max_jobs_in_flight_per_tenant` | `min(10,000, max_live_jobs)` | 10,000 |
//! | engine `max_stored_bytes` (payloads and outputs kept) | `B / 4`: the process holds about 1.7 bytes per stored byte, and a snapshot briefly copies the state | 512 MiB |
//! | engine `max_live_jobs` | `B / 64 KiB` | 32,768 |
//! | engine `max_live_tasks` | `B / 2 KiB` | 1,048,576 |
//! | engine `max_tenants` | `B / 1 MiB` | 2,048 |
//!
//! A session's own queue (`session_queue` events) and commands in flight
//! (`max_in_flight`) are per-session bounds and stay fixed.

use super::ServerOptions;
use keel_engine::Limits;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The smallest budget accepted: below it the formulas leave too little to serve.
pub const MIN_MEMORY_BYTES: u64 = 256 * MIB;
/// The budget when none is given.
pub const DEFAULT_MEMORY_BYTES: u64 = 2 * GIB;

/// Every limit the budget sizes; see the module documentation for the formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    /// Largest frame or request, `B / 128` within 2..=16 MiB.
    pub max_message_bytes: usize,
    /// Worker sessions at once, `B / 1 MiB`.
    pub max_sessions: usize,
    /// `WatchJob` and `TailStream` streams at once, `B / 4 MiB`.
    pub max_watches: usize,
    /// The engine's `max_workers`: one per session.
    pub max_workers: u32,
    /// The engine's per-tenant job limit, at most `max_live_jobs`.
    pub max_jobs_in_flight_per_tenant: u32,
    /// The engine's stored payload and output bytes, `B / 4`.
    pub max_stored_bytes: u64,
    /// The engine's held jobs, `B / 64 KiB`.
    pub max_live_jobs: u32,
    /// The engine's held tasks, `B / 2 KiB`.
    pub max_live_tasks: u32,
    /// The engine's distinct tenants, `B / 1 MiB`.
    pub max_tenants: u32,
}

impl Sizing {
    /// The limits for a budget of `bytes`; budgets under [`MIN_MEMORY_BYTES`] are refused.
    pub fn for_memory(bytes: u64) -> Result<Sizing, String> {
        if bytes < MIN_MEMORY_BYTES {
            return Err(format!(
                "--max-memory {} is below the floor of {}",
                show_bytes(bytes),
                show_bytes(MIN_MEMORY_BYTES)
            ));
        }
        let max_live_jobs = clamp_u32(bytes / (64 * KIB));
        let max_sessions = bytes / MIB;
        Ok(Sizing {
            max_message_bytes: (bytes / 128).clamp(2 * MIB, 16 * MIB) as usize,
            max_sessions: max_sessions as usize,
            max_watches: (bytes / (4 * MIB)) as usize,
            max_workers: clamp_u32(max_sessions),
            max_jobs_in_flight_per_tenant: max_live_jobs.min(10_000),
            max_stored_bytes: bytes / 4,
            max_live_jobs,
            max_live_tasks: clamp_u32(bytes / (2 * KIB)),
            max_tenants: clamp_u32(bytes / MIB),
        })
    }

    /// Sets the server's limits and the engine's global limits.
    pub fn apply(&self, limits: &mut Limits, options: &mut ServerOptions) {
        options.max_message_bytes = self.max_message_bytes;
        options.max_sessions = self.max_sessions;
        options.max_watches = self.max_watches;
        limits.max_workers = self.max_workers;
        limits.max_jobs_in_flight_per_tenant = self.max_jobs_in_flight_per_tenant;
        limits.max_stored_bytes = self.max_stored_bytes;
        limits.max_live_jobs = self.max_live_jobs;
        limits.max_live_tasks = self.max_live_tasks;
        limits.max_tenants = self.max_tenants;
    }
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses a size such as `2GiB`, `512MiB`, `1G`, `300MB` or `1048576` (bytes). Binary
/// suffixes (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024, decimal ones (`K`/`KB`,
/// `M`/`MB`, `G`/`GB`, `T`/`TB`) powers of 1000.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    if number.is_empty() {
        return Err(format!("{text:?} is not a size (e.g. 2GiB, 512MiB)"));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: the number is too large"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => KIB,
        "m" | "mb" => 1_000_000,
        "mib" => MIB,
        "g" | "gb" => 1_000_000_000,
        "gib" => GIB,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, or K, M, G, T)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `2GiB`, `300MiB` or a byte count, for messages.
pub fn show_bytes(n: u64) -> String {
    if n >= GIB && n.is_multiple_of(GIB) {
        format!("{}GiB", n / GIB)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{}MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 * GIB));
        assert_eq!(parse_bytes("512MiB"), Ok(512 * MIB));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("300mb"), Ok(300_000_000));
        assert_eq!(parse_bytes("1048576"), Ok(MIB));
        assert_eq!(parse_bytes(" 4 GiB "), Ok(4 * GIB));
        assert!(parse_bytes("GiB").unwrap_err().contains("not a size"));
        assert!(parse_bytes("2 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_bytes("18446744073709551615TiB")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_bytes("99999999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn the_default_budget_keeps_todays_message_limit_and_bounds_the_rest() {
        let s = Sizing::for_memory(DEFAULT_MEMORY_BYTES).unwrap();
        assert_eq!(s.max_message_bytes, 16 << 20);
        assert_eq!(s.max_sessions, 2048);
        assert_eq!(s.max_watches, 512);
        assert_eq!(s.max_workers, 2048);
        assert_eq!(s.max_jobs_in_flight_per_tenant, 10_000);
        assert_eq!(s.max_stored_bytes, 512 * MIB);
        assert_eq!(s.max_live_jobs, 32_768);
        assert_eq!(s.max_tenants, 2048);
        assert_eq!(ServerOptions::default().max_sessions, s.max_sessions);
    }

    #[test]
    fn budgets_scale_the_limits_and_the_floor_is_refused() {
        let small = Sizing::for_memory(MIN_MEMORY_BYTES).unwrap();
        assert_eq!(small.max_message_bytes, 2 << 20);
        assert_eq!(small.max_sessions, 256);
        assert_eq!(small.max_watches, 64);
        assert_eq!(small.max_jobs_in_flight_per_tenant, 4096);
        let huge = Sizing::for_memory(u64::MAX).unwrap();
        assert_eq!(huge.max_message_bytes, 16 << 20);
        assert_eq!(huge.max_live_jobs, u32::MAX);
        let refused = Sizing::for_memory(MIN_MEMORY_BYTES - 1).unwrap_err();
        assert!(refused.contains("--max-memory"), "{refused}");
        assert!(refused.contains("256MiB"), "{refused}");
        assert!(Sizing::for_memory(0).is_err());
    }

    #[test]
    fn applying_sets_the_server_options_and_the_engine_limits() {
        let s = Sizing::for_memory(512 * MIB).unwrap();
        let mut limits = Limits::default();
        let mut options = ServerOptions::default();
        s.apply(&mut limits, &mut options);
        assert_eq!(options.max_sessions, 512);
        assert_eq!(options.max_watches, 128);
        assert_eq!(options.max_message_bytes, 4 << 20);
        assert_eq!(limits.max_workers, 512);
        assert_eq!(limits.max_jobs_in_flight_per_tenant, 8192);
        assert_eq!(limits.max_stored_bytes, 128 * MIB);
        assert_eq!(limits.max_live_jobs, 8192);
        assert_eq!(limits.max_live_tasks, 262_144);
        assert_eq!(limits.max_tenants, 512);
        let config = keel_engine::Config {
            limits,
            ..keel_engine::Config::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }
}
