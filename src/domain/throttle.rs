//! Login throttling per username, known or not: after `max_failures` failures inside `window`, the
//! name is locked; each lockout in a row doubles the lock, up to `max_lock`. A success clears it.

use super::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub window: UnixMs,
    pub first_lock: UnixMs,
    pub max_lock: UnixMs,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: 15 * 60_000,
            first_lock: 30_000,
            max_lock: 15 * 60_000,
        }
    }
}

/// The record kept per username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    pub failures: u32,
    pub window_started_at: UnixMs,
    pub locked_until: UnixMs,
    /// Lockouts in a row; sets the length of the next one.
    pub lockouts: u32,
}

/// `Err(locked_until)` while the name is locked.
pub fn check(record: &Record, now: UnixMs) -> Result<(), UnixMs> {
    if now < record.locked_until {
        Err(record.locked_until)
    } else {
        Ok(())
    }
}

/// A login attempt at `now`, counted as a failure before its password is checked: the name's
/// record (`None`: it has none) with the attempt, or `Err(locked_until)` while the name is locked,
/// when nothing is counted.
pub fn count(record: Option<&Record>, now: UnixMs, policy: &Policy) -> Result<Record, UnixMs> {
    let record = record.copied().unwrap_or_default();
    check(&record, now)?;
    Ok(fail(&record, now, policy))
}

/// The record after one more failure at `now`.
pub fn fail(record: &Record, now: UnixMs, policy: &Policy) -> Record {
    let mut next = *record;
    if now >= record.window_started_at + policy.window {
        next.failures = 0;
        next.window_started_at = now;
        // A quiet spell as long as the window forgives earlier lockouts.
        if now >= record.locked_until + policy.window {
            next.lockouts = 0;
        }
    }
    next.failures = next.failures.saturating_add(1);
    if next.failures >= policy.max_failures {
        let doublings = next.lockouts.min(20);
        let lock = policy
            .first_lock
            .saturating_mul(1 << doublings)
            .min(policy.max_lock);
        next.locked_until = now + lock;
        next.lockouts = next.lockouts.saturating_add(1);
        next.failures = 0;
        next.window_started_at = now;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMs = 1_700_000_000_000;

    fn fail_n(mut r: Record, n: u32, now: UnixMs) -> Record {
        for _ in 0..n {
            r = fail(&r, now, &Policy::default());
        }
        r
    }

    /// Counts at their ceiling (a stored record edited by hand) stay there: still a failure past
    /// the limit, which locks, never an overflow back to zero.
    #[test]
    fn counts_at_their_ceiling_lock_rather_than_wrap() {
        let full = Record {
            failures: u32::MAX,
            window_started_at: T0,
            locked_until: 0,
            lockouts: u32::MAX,
        };
        let next = fail(&full, T0 + 1, &Policy::default());
        assert_eq!(next.locked_until, T0 + 1 + Policy::default().max_lock);
        assert_eq!(next.lockouts, u32::MAX);
    }

    #[test]
    fn an_attempt_is_counted_unless_the_name_is_locked() {
        let policy = Policy::default();
        let first = count(None, T0, &policy).unwrap();
        assert_eq!(first, fail(&Record::default(), T0, &policy));
        let locked = fail_n(first, 9, T0);
        assert_eq!(count(Some(&locked), T0 + 1, &policy), Err(T0 + 30_000));
        assert_eq!(
            count(Some(&locked), T0 + 30_000, &policy),
            Ok(fail(&locked, T0 + 30_000, &policy))
        );
    }

    #[test]
    fn nine_failures_leave_the_name_open_and_the_tenth_locks_it_for_30_seconds() {
        let r = fail_n(Record::default(), 9, T0);
        assert_eq!(check(&r, T0), Ok(()));
        let r = fail(&r, T0, &Policy::default());
        assert_eq!(check(&r, T0), Err(T0 + 30_000));
        assert_eq!(check(&r, T0 + 29_999), Err(T0 + 30_000));
        assert_eq!(check(&r, T0 + 30_000), Ok(()));
    }

    #[test]
    fn repeated_lockouts_double_up_to_fifteen_minutes() {
        let mut r = Record::default();
        let mut now = T0;
        let mut locks = Vec::new();
        for _ in 0..7 {
            r = fail_n(r, 10, now);
            locks.push(r.locked_until - now);
            now = r.locked_until;
        }
        assert_eq!(
            locks,
            [30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000]
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let r = fail_n(Record::default(), 9, T0);
        let r = fail(&r, T0 + 15 * 60_000, &Policy::default());
        assert_eq!(r.failures, 1);
        assert_eq!(check(&r, T0 + 15 * 60_000), Ok(()));
    }
}
