//! Token families: one per session. Each refresh spends the family's current token and issues its
//! successor (generation n → n+1). What a presented token means is decided here; the store makes the
//! resulting change atomic with one compare-and-swap on the generation.
//!
//! ```text
//!  login ─► gen 1 ─refresh─► gen 2 ─refresh─► gen 3 …        (one live token at any time)
//!             │                 ▲
//!             └─ re-presented ──┘ within the grace window, while gen 3 does not exist: a retry,
//!                                 answered with the same gen 2 token again
//!  any other spent token presented ⇒ reuse ⇒ the whole family is revoked
//!  idle lifetime passed ⇒ expired;  absolute lifetime passed ⇒ session expired
//! ```

use super::UnixMs;

/// How long things live, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access token lifetime.
    pub access_ttl: UnixMs,
    /// Idle lifetime of a refresh token, renewed by each refresh.
    pub refresh_ttl: UnixMs,
    /// Absolute lifetime of a session from login, never renewed.
    pub session_max_age: UnixMs,
    /// How long after a rotation the spent token may be re-presented as a retry; 0 disables.
    pub reuse_grace: UnixMs,
}

impl Lifetimes {
    /// How long after `now` an access token issued until `now` may still be accepted: its
    /// lifetime, the clock leeway, and a second of slack for `iat` being whole seconds and for a
    /// token issued by a call that raced the revocation. A revocation must be remembered this long,
    /// and a superseded signing key trusted this long after its last signature.
    pub fn access_horizon(&self, leeway_secs: i64) -> UnixMs {
        self.access_ttl + leeway_secs * 1000 + 1000
    }
}

/// When the access token expiring at `exp` (Unix seconds) is refused everywhere, with the same
/// leeway and slack as [`Lifetimes::access_horizon`]: the revocation of that one token (by its id)
/// matters until then. Taken from the token itself, so it holds even if the access lifetime was
/// changed since the token was issued.
pub fn access_token_dead_at(exp: i64, leeway_secs: i64) -> UnixMs {
    (exp + leeway_secs + 1) * 1000
}

/// The timestamps of a new session opened at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub idle_expires_at: UnixMs,
    pub absolute_expires_at: UnixMs,
}

pub fn open(now: UnixMs, lifetimes: &Lifetimes) -> Opening {
    let absolute_expires_at = now + lifetimes.session_max_age;
    Opening {
        idle_expires_at: (now + lifetimes.refresh_ttl).min(absolute_expires_at),
        absolute_expires_at,
    }
}

/// What the store knows about a family when a token of it is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyState {
    /// Generation of the one live refresh token.
    pub generation: i64,
    /// When generation − 1 was spent (the last rotation); `None` before the first rotation.
    pub rotated_at: Option<UnixMs>,
    pub idle_expires_at: UnixMs,
    pub absolute_expires_at: UnixMs,
    pub revoked: bool,
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The live token: spend it, and the family becomes `next` (generation n + 1, rotated now, with
    /// a renewed idle expiry).
    Rotate { next: FamilyState },
    /// The token spent by the last rotation, re-presented in the grace window while its successor
    /// is unspent: answer with that same successor again.
    Retry,
    /// A spent token that is not a retry: theft. Revoke the family.
    Reuse,
    /// The family was revoked (logout, reuse, password change, ...).
    Revoked,
    /// The idle lifetime passed.
    IdleExpired,
    /// The absolute lifetime passed.
    SessionExpired,
}

/// Decides what presenting the token of `generation` at `now` means. Deadlines are exclusive: a
/// token is good while `now < deadline`.
pub fn judge(state: &FamilyState, generation: i64, now: UnixMs, lifetimes: &Lifetimes) -> Verdict {
    if state.revoked {
        return Verdict::Revoked;
    }
    if now >= state.absolute_expires_at {
        return Verdict::SessionExpired;
    }
    if now >= state.idle_expires_at {
        return Verdict::IdleExpired;
    }
    if generation == state.generation {
        return Verdict::Rotate {
            next: FamilyState {
                generation: generation + 1,
                rotated_at: Some(now),
                idle_expires_at: (now + lifetimes.refresh_ttl).min(state.absolute_expires_at),
                ..*state
            },
        };
    }
    let just_spent = generation == state.generation - 1;
    match state.rotated_at {
        Some(at) if just_spent && now < at + lifetimes.reuse_grace => Verdict::Retry,
        _ => Verdict::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: UnixMs = 1000;
    const LIFE: Lifetimes = Lifetimes {
        access_ttl: 900 * S,
        refresh_ttl: 100 * S,
        session_max_age: 1000 * S,
        reuse_grace: 10 * S,
    };
    const T0: UnixMs = 1_700_000_000_000;

    fn fresh() -> FamilyState {
        let o = open(T0, &LIFE);
        FamilyState {
            generation: 1,
            rotated_at: None,
            idle_expires_at: o.idle_expires_at,
            absolute_expires_at: o.absolute_expires_at,
            revoked: false,
        }
    }

    /// The state after applying a rotation verdict at `now`.
    fn rotated(state: FamilyState, now: UnixMs) -> FamilyState {
        match judge(&state, state.generation, now, &LIFE) {
            Verdict::Rotate { next } => next,
            other => panic!("expected a rotation, got {other:?}"),
        }
    }

    #[test]
    fn opening_caps_the_idle_expiry_at_the_absolute_one() {
        let short = Lifetimes {
            session_max_age: 50 * S,
            ..LIFE
        };
        let o = open(T0, &short);
        assert_eq!(o.idle_expires_at, T0 + 50 * S);
        assert_eq!(o.absolute_expires_at, T0 + 50 * S);
    }

    #[test]
    fn the_live_token_rotates_and_renews_the_idle_expiry() {
        let s = fresh();
        let now = T0 + 30 * S;
        assert_eq!(
            judge(&s, 1, now, &LIFE),
            Verdict::Rotate {
                next: FamilyState {
                    generation: 2,
                    rotated_at: Some(now),
                    idle_expires_at: now + 100 * S,
                    ..s
                }
            }
        );
    }

    #[test]
    fn the_idle_expiry_is_never_renewed_past_the_absolute_one() {
        let mut s = fresh();
        s.idle_expires_at = T0 + 1000 * S - 1;
        let now = T0 + 950 * S;
        assert_eq!(
            judge(&s, 1, now, &LIFE),
            Verdict::Rotate {
                next: FamilyState {
                    generation: 2,
                    rotated_at: Some(now),
                    idle_expires_at: T0 + 1000 * S,
                    ..s
                }
            }
        );
    }

    #[test]
    fn a_token_presented_exactly_at_its_idle_expiry_is_expired() {
        let s = fresh();
        assert!(matches!(
            judge(&s, 1, s.idle_expires_at - 1, &LIFE),
            Verdict::Rotate { .. }
        ));
        assert_eq!(judge(&s, 1, s.idle_expires_at, &LIFE), Verdict::IdleExpired);
    }

    #[test]
    fn a_token_presented_exactly_at_the_absolute_expiry_ends_the_session() {
        let mut s = fresh();
        s.idle_expires_at = s.absolute_expires_at + 5 * S;
        assert!(matches!(
            judge(&s, 1, s.absolute_expires_at - 1, &LIFE),
            Verdict::Rotate { .. }
        ));
        assert_eq!(
            judge(&s, 1, s.absolute_expires_at, &LIFE),
            Verdict::SessionExpired
        );
    }

    #[test]
    fn when_both_lifetimes_end_together_the_session_expiry_is_reported() {
        let mut s = fresh();
        s.idle_expires_at = s.absolute_expires_at;
        assert_eq!(
            judge(&s, 1, s.absolute_expires_at, &LIFE),
            Verdict::SessionExpired
        );
    }

    #[test]
    fn the_just_spent_token_inside_grace_is_a_retry() {
        let s = rotated(fresh(), T0 + S);
        assert_eq!(judge(&s, 1, T0 + S, &LIFE), Verdict::Retry);
        assert_eq!(judge(&s, 1, T0 + 11 * S - 1, &LIFE), Verdict::Retry);
    }

    #[test]
    fn the_just_spent_token_exactly_at_the_end_of_grace_is_reuse() {
        let s = rotated(fresh(), T0 + S);
        assert_eq!(judge(&s, 1, T0 + 11 * S, &LIFE), Verdict::Reuse);
    }

    #[test]
    fn a_retry_inside_grace_after_the_successor_was_spent_is_reuse() {
        let s = rotated(rotated(fresh(), T0 + S), T0 + 2 * S);
        assert_eq!(judge(&s, 1, T0 + 3 * S, &LIFE), Verdict::Reuse);
        // The token spent by the second rotation is still a retry.
        assert_eq!(judge(&s, 2, T0 + 3 * S, &LIFE), Verdict::Retry);
    }

    #[test]
    fn a_retry_inside_grace_after_the_session_was_revoked_is_refused() {
        let mut s = rotated(fresh(), T0 + S);
        s.revoked = true;
        assert_eq!(judge(&s, 1, T0 + 2 * S, &LIFE), Verdict::Revoked);
        assert_eq!(judge(&s, 2, T0 + 2 * S, &LIFE), Verdict::Revoked);
    }

    #[test]
    fn a_zero_grace_window_makes_every_spent_token_reuse() {
        let no_grace = Lifetimes {
            reuse_grace: 0,
            ..LIFE
        };
        let s = rotated(fresh(), T0 + S);
        assert_eq!(judge(&s, 1, T0 + S, &no_grace), Verdict::Reuse);
    }

    #[test]
    fn a_token_from_a_future_generation_is_not_trusted() {
        // Only the store mints generations, so this cannot happen honestly; it must not rotate.
        assert_eq!(judge(&fresh(), 7, T0, &LIFE), Verdict::Reuse);
    }

    #[test]
    fn the_access_horizon_covers_the_lifetime_the_leeway_and_a_second() {
        assert_eq!(LIFE.access_horizon(5), 900 * S + 5 * S + S);
        assert_eq!(access_token_dead_at(1_700_000_900, 5), 1_700_000_906 * S);
    }

    #[test]
    fn expiry_wins_over_reuse() {
        let s = rotated(fresh(), T0 + S);
        assert_eq!(judge(&s, 1, s.idle_expires_at, &LIFE), Verdict::IdleExpired);
    }
}
