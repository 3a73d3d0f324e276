//! The rules of latchkey, free of I/O: token families and their lifetimes, login throttling, scope
//! grants, and the validated types that the edges parse raw input into. Time is always passed in
//! as Unix milliseconds, so every rule is tested at its exact boundary without waiting.

pub mod caller;
pub mod event;
pub mod family;
pub mod page;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod types;

/// Unix time in milliseconds: finer than the wire's seconds wherever order matters.
pub type UnixMs = i64;

/// Whole seconds on the wire from milliseconds inside (rounded down).
pub fn to_secs(ms: UnixMs) -> i64 {
    ms.div_euclid(1000)
}

/// Whole seconds until `deadline`, rounded up so that a client never waits too little.
pub fn secs_until(deadline: UnixMs, now: UnixMs) -> i64 {
    ((deadline - now).max(0) + 999) / 1000
}
