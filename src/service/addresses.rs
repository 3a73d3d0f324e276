//! The per-address limit on failed logins: once a client address has `max_failures` failures within
//! a minute (the minute starts at its first failure), its next attempts are refused until that
//! minute has passed, whatever the name and whatever the password. It stops one machine from
//! guessing across many names, which the per-name throttle cannot see.
//!
//! Kept in memory, per replica: a fleet allows its size times the limit, which is fine for a limit
//! meant to stop floods. The map is bounded: at [`MAX_ADDRESSES`] the least recently seen address
//! is forgotten, so many addresses cannot grow it without bound. An IPv6 client is counted by its
//! /64, the block one host is usually given; an IPv4 address mapped into IPv6 is counted as IPv4.

use std::{
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use hashlink::LruCache;

use crate::domain::UnixMs;

/// How long failures are counted, and an address refused once it has too many.
const WINDOW: UnixMs = 60_000;
/// Addresses remembered at most (about 64 bytes each).
pub const MAX_ADDRESSES: usize = 100_000;

/// Failures of one address in its current minute.
#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: UnixMs,
    failures: u32,
}

pub struct AddressLimit {
    /// 0: no limit.
    max_failures: u32,
    windows: Mutex<LruCache<IpAddr, Window>>,
}

impl AddressLimit {
    pub fn new(max_failures: u32, capacity: usize) -> Self {
        Self {
            max_failures,
            windows: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// `Err(until)` while the address `ip` is refused. An address that is not one (there was no
    /// peer address) is never refused.
    pub fn check(&self, ip: &str, now: UnixMs) -> Result<(), UnixMs> {
        let Some(key) = self.key(ip) else {
            return Ok(());
        };
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get(&key) {
            Some(w) if now < w.started_at + WINDOW && w.failures >= self.max_failures => {
                Err(w.started_at + WINDOW)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login from `ip` at `now`.
    pub fn fail(&self, ip: &str, now: UnixMs) {
        let Some(key) = self.key(ip) else {
            return;
        };
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get_mut(&key) {
            Some(w) if now < w.started_at + WINDOW => w.failures = w.failures.saturating_add(1),
            _ => {
                let fresh = Window {
                    started_at: now,
                    failures: 1,
                };
                windows.insert(key, fresh);
            }
        }
    }

    /// What `ip` is counted as; `None` when there is no limit or no address.
    fn key(&self, ip: &str) -> Option<IpAddr> {
        if self.max_failures == 0 {
            return None;
        }
        Some(match ip.parse().ok()? {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
            },
            v4 => v4,
        })
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMs = 1_700_000_000_000;

    fn fail_n(limit: &AddressLimit, ip: &str, n: u32, now: UnixMs) {
        for _ in 0..n {
            limit.fail(ip, now);
        }
    }

    #[test]
    fn an_address_is_refused_from_its_limit_until_its_minute_has_passed() {
        let limit = AddressLimit::new(3, 10);
        fail_n(&limit, "192.0.2.1", 2, T0);
        assert_eq!(limit.check("192.0.2.1", T0 + 1), Ok(()));
        limit.fail("192.0.2.1", T0 + 2);
        assert_eq!(limit.check("192.0.2.1", T0 + 3), Err(T0 + WINDOW));
        assert_eq!(limit.check("192.0.2.1", T0 + WINDOW - 1), Err(T0 + WINDOW));
        assert_eq!(limit.check("192.0.2.2", T0 + 3), Ok(()), "others are not");
        assert_eq!(limit.check("192.0.2.1", T0 + WINDOW), Ok(()));
        limit.fail("192.0.2.1", T0 + WINDOW);
        assert_eq!(
            limit.check("192.0.2.1", T0 + WINDOW),
            Ok(()),
            "a new minute"
        );
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        let limit = AddressLimit::new(2, 10);
        limit.fail("2001:db8:0:1::1", T0);
        limit.fail("2001:db8:0:1:ffff::2", T0);
        assert!(limit.check("2001:db8:0:1::3", T0).is_err());
        assert!(limit.check("2001:db8:0:2::1", T0).is_ok());
        limit.fail("::ffff:192.0.2.1", T0);
        limit.fail("192.0.2.1", T0);
        assert!(limit.check("192.0.2.1", T0).is_err());
        assert!(limit.check("::ffff:192.0.2.9", T0).is_ok());
    }

    #[test]
    fn many_addresses_never_grow_the_map_past_its_bound_the_least_recent_go_first() {
        let limit = AddressLimit::new(1, 100);
        limit.fail("198.51.100.1", T0);
        for i in 0..1_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            limit.fail(&ip, T0);
            if i % 10 == 0 {
                // Seen again and again: it stays.
                assert!(limit.check("198.51.100.1", T0).is_err());
            }
        }
        assert_eq!(limit.remembered(), 100);
        assert!(limit.check("10.0.0.0", T0).is_ok(), "forgotten");
        assert!(limit.check("198.51.100.1", T0).is_err());
    }

    #[test]
    fn zero_means_no_limit_and_no_address_is_never_refused() {
        let off = AddressLimit::new(0, 10);
        fail_n(&off, "192.0.2.1", 1_000, T0);
        assert_eq!(off.check("192.0.2.1", T0), Ok(()));
        assert_eq!(off.remembered(), 0);
        let on = AddressLimit::new(1, 10);
        fail_n(&on, "", 5, T0);
        assert_eq!(on.check("", T0), Ok(()));
    }
}
