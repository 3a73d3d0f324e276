//! The source of "now". Business logic never reads the system clock itself: the service asks its
//! `Clock`, and tests hand it one they move by hand.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::UnixMs;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixMs;
}

pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
    fn now(&self) -> UnixMs {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told: for tests that cross lifetimes without waiting.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now: UnixMs) -> Self {
        Self(AtomicI64::new(now))
    }

    pub fn advance(&self, ms: UnixMs) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMs {
        self.0.load(Ordering::SeqCst)
    }
}
