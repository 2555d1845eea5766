//! Where the coordinator's time comes from. The engine runs on logical milliseconds;
//! in production they are wall-clock milliseconds, in tests a `ManualClock` (feature
//! `test-support`) that only moves when the test says so, which lets a test fire lease
//! expiry without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
#[cfg(any(test, feature = "test-support"))]
use tokio::sync::watch;

/// A future that resolves once a clock may have reached a time.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Time source, injected so tests can drive a manual clock.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds on the engine's time line; never decreasing.
    fn now_ms(&self) -> u64;

    /// Resolves once `now_ms()` may have reached `at_ms`. The engine task calls
    /// `now_ms()` again afterwards and goes back to sleep if it wakes early, so a
    /// clock may wake it early but must not wake it late. The default sleeps in real
    /// time for the remaining difference.
    fn sleep_until(&self, at_ms: u64) -> Sleep<'_> {
        let wait = at_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// Milliseconds since the UNIX epoch, clamped so a wall-clock step backwards never
/// moves time backwards within this process. The engine also ignores a `now` earlier
/// than its own clock, which covers a clock that is behind after a restart.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// The latest time any `SystemClock` in this process has reported.
static SYSTEM_LATEST: AtomicU64 = AtomicU64::new(0);

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let before = SYSTEM_LATEST.fetch_max(wall, Ordering::Relaxed);
        before.max(wall)
    }
}

/// A clock that moves only when told to, for tests (feature `test-support`).
/// Advancing it wakes an engine task that sleeps until a timer is due.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<u64>,
}

#[cfg(any(test, feature = "test-support"))]
impl ManualClock {
    /// A clock standing at `start_ms`.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock {
            now: watch::Sender::new(start_ms),
        }
    }

    /// Moves the clock to `ms`; a time earlier than the current one is ignored.
    pub fn set(&self, ms: u64) {
        self.now.send_modify(|now| *now = (*now).max(ms));
    }

    /// Moves the clock forward by `by_ms`.
    pub fn advance(&self, by_ms: u64) {
        self.now.send_modify(|now| *now = now.saturating_add(by_ms));
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep<'_> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            if now.wait_for(|now| *now >= at_ms).await.is_err() {
                // The clock is gone, so it will never reach `at_ms`.
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_only_when_due() {
        let clock = ManualClock::new(100);
        let mut sleep = clock.sleep_until(150);
        clock.advance(49);
        assert!(
            futures_poll_once(&mut sleep).await.is_none(),
            "woke before 150"
        );
        clock.set(10);
        assert_eq!(clock.now_ms(), 149, "set never moves the clock back");
        clock.advance(1);
        sleep.await;
        assert_eq!(clock.now_ms(), 150);
    }

    #[test]
    fn system_clock_never_goes_back() {
        let a = SystemClock.now_ms();
        let b = SystemClock.now_ms();
        assert!(a > 1_600_000_000_000, "{a} is not wall-clock ms");
        assert!(b >= a);
    }

    /// Polls `fut` once: `Some` if it completed.
    async fn futures_poll_once(fut: &mut Sleep<'_>) -> Option<()> {
        std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Some(())),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }
}
