//! Reconnection delays: exponential from 100 ms, capped at 5 s, with jitter so that a fleet of
//! verifiers cut off together does not come back in lockstep.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const CAP: Duration = Duration::from_secs(5);

pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { next: FIRST }
    }

    /// Back to the shortest delay (the connection worked).
    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// The delay before the next attempt: between half and all of the current step.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(CAP);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(0);
        // Without randomness (the OS refused it) the delay is simply the whole step.
        let extra = getrandom::u64().map_or(jitter_ms, |r| r % (jitter_ms + 1));
        half + Duration::from_millis(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= FIRST / 2 && delays[0] <= FIRST);
        assert!(delays.iter().all(|d| *d <= CAP));
        assert!(delays[9] >= CAP / 2);
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST);
    }
}
