//! keel-console: a small web console for one coordinator, served next to its gRPC
//! services by `keel serve --ui ADDR`.
//!
//! - Pages (`/`, `/jobs/{id}`, `/workers`) are one HTML shell, a script and a style
//!   sheet compiled into the binary (`assets/`); they draw from a JSON API under
//!   `/api/` that reads the engine through [`keel_coordinator::Handle::read`].
//! - Live updates: one task samples the engine at a bounded rate (only when an input
//!   was applied since the last sample), diffs jobs and workers against the previous
//!   sample, and pushes what changed to every open page over server-sent events
//!   (`/api/events`, at most [`ConsoleOptions::max_live_views`] at once). A page
//!   refetches only the view an event says changed.
//! - Read-only unless [`ConsoleOptions::authorize`] accepts the bearer token a page
//!   sends: cancel and retry (dead-letter replay, [`keel_coordinator::Handle::retry_job`])
//!   need it. A console without it refuses every change.
//! - Every response carries a Content-Security-Policy that allows only the console's
//!   own script and style; request heads, URLs and bodies are bounded; every path and
//!   query parameter is checked and refused with a message naming it.

mod actions;
mod api;
mod dag;
mod error;
mod headline;
mod live;
mod outputs;
mod params;
mod router;
mod server;
mod timeline;
mod views;

pub use router::router;
pub use server::{serve, Console};

use keel_coordinator::Clock;
use std::sync::Arc;

/// Decides whether a presented bearer token may change jobs (cancel, retry).
pub type Authorize = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct ConsoleOptions {
    /// Accepts the tokens that may cancel and retry; None makes the console read-only.
    pub authorize: Option<Authorize>,
    /// Pages receiving live updates at once; one more is refused with 503.
    pub max_live_views: usize,
    /// Open connections at once; more wait to be accepted.
    pub max_connections: usize,
    /// The coordinator's clock, so ages and "last heard" are on the engine's time line.
    pub clock: Arc<dyn Clock>,
}

impl ConsoleOptions {
    pub fn new(clock: Arc<dyn Clock>) -> ConsoleOptions {
        ConsoleOptions {
            authorize: None,
            max_live_views: 32,
            max_connections: 256,
            clock,
        }
    }
}

impl std::fmt::Debug for ConsoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions")
            .field("writable", &self.authorize.is_some())
            .field("max_live_views", &self.max_live_views)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}
