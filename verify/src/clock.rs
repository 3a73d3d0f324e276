//! Time, read through a trait so that tests control it. Two clocks: Unix seconds for token times
//! (`exp`, `iat`, an event's `expires_at`), and a monotonic one for staleness, which is about how
//! long the feed has been silent and must not jump with the wall clock.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    /// Unix seconds.
    pub unix: i64,
    /// Milliseconds on a monotonic clock since an arbitrary origin.
    pub mono_ms: u64,
}

pub(crate) trait Clock: Send + Sync + 'static {
    fn now(&self) -> Now;
}

/// The system's clocks.
pub(crate) struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    // The one place that reads the wall clock; everything else takes it from here.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Now {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mono_ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Now { unix, mono_ms }
    }
}

#[cfg(test)]
pub(crate) mod manual {
    //! A clock that moves only when a test says so: both readings move together.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::{Clock, Now};

    pub(crate) struct ManualClock {
        /// The Unix second at which the test started.
        start: i64,
        elapsed_ms: AtomicU64,
    }

    impl ManualClock {
        pub(crate) fn at(unix: i64) -> Self {
            Self {
                start: unix,
                elapsed_ms: AtomicU64::new(0),
            }
        }

        pub(crate) fn advance(&self, by: Duration) {
            let ms = u64::try_from(by.as_millis()).expect("a test duration");
            self.elapsed_ms.fetch_add(ms, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Now {
            let elapsed_ms = self.elapsed_ms.load(Ordering::SeqCst);
            Now {
                unix: self.start + i64::try_from(elapsed_ms / 1000).expect("a test time"),
                mono_ms: elapsed_ms,
            }
        }
    }
}
