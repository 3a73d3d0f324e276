//! The store conformance suite: one story per guarantee the service relies on, run against every
//! backend (SQLite in a temp dir, PostgreSQL in a fresh database). Plus the query plans: every
//! statement that looks rows up (`store::queries::LOOKUPS`) is an index lookup on both. One file
//! past the usual length, on purpose: the macro at its end must see every story (the account
//! side's stories are in `accounts`, run by the same macro).

use std::sync::Arc;

use futures_util::future::join_all;
use latchkey::{
    crypto::refresh,
    domain::{
        event::{EventKind, NewEvent, Origin},
        revocation::{Reason, RevocationTarget},
        throttle,
        types::TokenHash,
    },
    store::{
        self, Attempt, KeyRecord, NewSession, Purge, Rotation, SessionRecord, Store, StoreError,
        UserRecord, UserRevocation,
    },
};

use crate::helpers::fresh_postgres_database;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

async fn sqlite_url() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (format!("sqlite://{}/store.db", dir.path().display()), dir)
}

fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: name.into(),
        password_hash: PASSWORD_HASH.to_owned().into(),
        scopes: vec!["read".into()],
        disabled: false,
        not_before: 0,
        created_at: T0,
    }
}

/// A revocation of every session of u1 at T0, with a cutoff at T0, recorded as `kind`, changing
/// nothing else.
fn user_revocation(kind: EventKind) -> UserRevocation {
    UserRevocation {
        user_id: "u1".into(),
        now: T0,
        not_before: T0,
        expires_at: T0 + HOUR,
        event: event("u1", kind),
        new_password_hash: None,
        disable: false,
        delete: false,
        keep_session: None,
    }
}

/// The account event written with a change to `user_id`.
fn event(user_id: &str, kind: EventKind) -> NewEvent {
    NewEvent::new(user_id, kind, Origin::default())
}

fn session(id: &str, user_id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user_id: user_id.into(),
        client_id: "default".into(),
        device: "d".into(),
        ip: "127.0.0.1".into(),
        scope: "read".into(),
        created_at: T0,
        last_used_at: T0,
        idle_expires_at: T0 + 14 * 24 * HOUR,
        absolute_expires_at: T0 + 30 * 24 * HOUR,
        revoked_at: None,
        generation: 1,
        rotated_at: None,
        sealed_token: vec![1, 2, 3],
    }
}

fn hash() -> TokenHash {
    refresh::hash(&refresh::generate().unwrap())
}

fn rotation(session_id: &str, expected_generation: i64, token_hash: TokenHash) -> Rotation {
    Rotation {
        session_id: session_id.into(),
        expected_generation,
        token_hash,
        sealed_token: vec![9],
        now: T0 + 1000,
        idle_expires_at: T0 + 15 * 24 * HOUR,
        event: None,
    }
}

/// The password hash the seeded user has; sessions open only with it.
const PASSWORD_HASH: &str = "$argon2id$…";

/// The account event of every login in these stories.
static LOGIN: std::sync::LazyLock<NewEvent> =
    std::sync::LazyLock::new(|| event("u1", EventKind::Login));

/// A login's session, as the login checked `checked_hash`.
fn new_session<'a>(
    session: &'a SessionRecord,
    token_hash: &'a TokenHash,
    checked_hash: &'a str,
) -> NewSession<'a> {
    NewSession {
        session,
        token_hash,
        username: "alice",
        checked_hash,
        rehashed: None,
        max_live_sessions: 1_000,
        events_expire_at: T0 + HOUR,
        event: &LOGIN,
    }
}

/// Opens `session` with a new first token, which must succeed.
async fn open(store: &dyn Store, session: &SessionRecord) -> TokenHash {
    let token = hash();
    let new = new_session(session, &token, PASSWORD_HASH);
    assert_eq!(store.create_session(&new).await.unwrap(), Some(vec![]));
    token
}

/// A user `u1` with one session `s1` whose first token is returned.
async fn seeded(store: &dyn Store) -> TokenHash {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    open(store, &session("s1", "u1")).await
}

async fn usernames_are_unique_exactly_as_given(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user(&user("u2", "alice"), &event("u2", EventKind::UserCreated))
            .await,
        Err(StoreError::Conflict)
    ));
    store
        .create_user(&user("u3", "Alice"), &event("u3", EventKind::UserCreated))
        .await
        .unwrap();
    assert_eq!(store.user_by_name("alice").await.unwrap().unwrap().id, "u1");
    assert_eq!(
        store.user_by_id("u3").await.unwrap().unwrap().username,
        "Alice"
    );
    assert_eq!(store.user_by_name("ALICE").await.unwrap(), None);
}

async fn rotation_is_a_compare_and_swap_on_the_generation(store: Arc<dyn Store>) {
    let first = seeded(store.as_ref()).await;
    let second = hash();
    assert!(
        store
            .rotate(&rotation("s1", 1, second.clone()))
            .await
            .unwrap()
    );
    assert!(
        !store.rotate(&rotation("s1", 1, hash())).await.unwrap(),
        "the same generation swaps once"
    );
    let found = store.find_refresh(&second).await.unwrap().unwrap();
    let (s, generation) = (found.session, found.generation);
    assert_eq!(
        (generation, s.generation, s.rotated_at, s.sealed_token),
        (2, 2, Some(T0 + 1000), vec![9])
    );
    let found = store.find_refresh(&first).await.unwrap().unwrap();
    let (s, generation) = (found.session, found.generation);
    assert_eq!((generation, s.generation), (1, 2));
    assert_eq!(store.find_refresh(&hash()).await.unwrap(), None);
}

async fn of_concurrent_swaps_of_one_generation_exactly_one_wins(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    let swaps = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.rotate(&rotation("s1", 1, hash())).await.unwrap() })
    });
    let won = join_all(swaps)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
}

/// Rotations arriving together (they share one commit, on PostgreSQL one statement): each is
/// answered as if it were alone. Of two swaps of one generation one wins; a stale generation, an
/// unknown session and a token that is already stored (the statement fails) change nothing of their
/// own, and none of them costs the others their rotation.
async fn rotations_arriving_together_are_each_answered_as_if_alone(store: Arc<dyn Store>) {
    arriving_together(store, true).await;
}

/// As above, with no statement failing: on PostgreSQL the racers, the stale generation and the
/// unknown session are then answered from the one statement of their batch.
async fn rotations_arriving_together_with_none_failing_are_each_answered_as_if_alone(
    store: Arc<dyn Store>,
) {
    arriving_together(store, false).await;
}

/// The two stories above; `clash`: one of the rotations offers a token that is already stored.
async fn arriving_together(store: Arc<dyn Store>, clash: bool) {
    let taken = seeded(store.as_ref()).await;
    let ids: Vec<String> = (2..=20).map(|i| format!("s{i}")).collect();
    for id in &ids {
        open(store.as_ref(), &session(id, "u1")).await;
    }
    let fresh: Vec<TokenHash> = ids.iter().map(|_| hash()).collect();
    let (racer_a, racer_b) = (hash(), hash());
    let mut rotations: Vec<(Rotation, Option<bool>)> = ids
        .iter()
        .zip(&fresh)
        .map(|(id, h)| (rotation(id, 1, h.clone()), Some(true)))
        .collect();
    rotations.push((rotation("s1", 1, racer_a.clone()), None));
    rotations.push((rotation("s1", 1, racer_b.clone()), None));
    rotations.push((rotation("s2", 7, hash()), Some(false)));
    rotations.push((rotation("nobody", 1, hash()), Some(false)));
    // One that records an account event (a refresh from a new address), among the others.
    open(store.as_ref(), &session("s22", "u1")).await;
    let recorded_hash = hash();
    let mut recorded = rotation("s22", 1, recorded_hash.clone());
    recorded.event = Some(event("u1", EventKind::RefreshIpChanged));
    rotations.push((recorded, Some(true)));
    // The token of s1's first generation, offered again as another session's next: the insert
    // fails, and that session stays as it was.
    let lone = open(store.as_ref(), &session("s21", "u1")).await;
    let clashing = rotation("s21", 1, if clash { taken } else { hash() });
    let answers = {
        let all = rotations.iter().map(|(r, _)| store.rotate(r));
        futures_util::future::join(join_all(all), store.rotate(&clashing)).await
    };
    let (answers, clashed) = answers;
    assert_eq!(clashed.is_err(), clash, "s21's rotation: {clashed:?}");
    for ((r, expected), answer) in rotations.iter().zip(&answers) {
        let answer = answer.as_ref().expect("each rotation answered");
        if let Some(expected) = expected {
            assert_eq!(
                answer, expected,
                "{} from {}",
                r.session_id, r.expected_generation
            );
        }
    }
    let racers = &answers[ids.len()..ids.len() + 2];
    let won: Vec<bool> = racers.iter().map(|a| *a.as_ref().unwrap()).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // What was answered is what is stored: the recorded rotation once, with its one event.
    let found = store.find_refresh(&recorded_hash).await.unwrap().unwrap();
    assert_eq!((found.generation, found.session.generation), (2, 2));
    let events = store.events_after(0, 1_000).await.unwrap();
    let kinds = events.iter().filter(|e| e.kind == "refresh_ip_changed");
    assert_eq!(kinds.count(), 1);
    for (id, h) in ids.iter().zip(&fresh) {
        let found = store.find_refresh(h).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("{id}'s new token"));
        let (s, generation) = (found.session, found.generation);
        assert_eq!(
            (s.id.as_str(), generation, s.generation),
            (id.as_str(), 2, 2)
        );
    }
    let (winner, loser) = if won[0] {
        (racer_a, racer_b)
    } else {
        (racer_b, racer_a)
    };
    assert_eq!(
        store
            .find_refresh(&winner)
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );
    assert_eq!(store.find_refresh(&loser).await.unwrap(), None);
    let found = store.find_refresh(&lone).await.unwrap().unwrap();
    let (s, generation) = (found.session, found.generation);
    assert_eq!(
        (generation, s.generation),
        (1, if clash { 1 } else { 2 }),
        "the failed rotation left a trace, or the other was not made"
    );
}

async fn a_revoked_session_never_rotates_and_is_revoked_once(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    let event = store
        .revoke_session("s1", T0 + 5, T0 + HOUR, Reason::Revoke, &Origin::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.target, RevocationTarget::Session("s1".into()));
    assert_eq!(
        store
            .revoke_session("s1", T0 + 6, T0 + HOUR, Reason::Revoke, &Origin::default())
            .await
            .unwrap(),
        None
    );
    assert!(!store.rotate(&rotation("s1", 1, hash())).await.unwrap());
}

async fn revoking_what_is_revoked_writes_no_event(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    open(store.as_ref(), &session("s2", "u1")).await;
    let nowhere = Origin::default();
    let revoke =
        |id: &'static str| store.revoke_session(id, T0, T0 + HOUR, Reason::Revoke, &nowhere);
    assert!(revoke("s1").await.unwrap().is_some());
    let logout = user_revocation(EventKind::LogoutAll);
    assert_eq!(
        store.revoke_user(&logout).await.unwrap().len(),
        2,
        "s2, the cutoff"
    );
    let feed = store.revocations_after(0, 100).await.unwrap();
    for id in ["s1", "s2", "s1"] {
        assert_eq!(revoke(id).await.unwrap(), None);
    }
    assert_eq!(store.revocations_after(0, 100).await.unwrap(), feed);
}

async fn revoking_a_user_writes_ordered_events_and_never_lowers_the_cutoff(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    open(store.as_ref(), &session("s2", "u1")).await;
    open(store.as_ref(), &session("s3", "u1")).await;
    store
        .revoke_session("s3", T0, T0 + HOUR, Reason::Revoke, &Origin::default())
        .await
        .unwrap();
    let revocation = |not_before| UserRevocation {
        now: T0 + 10,
        not_before,
        ..user_revocation(EventKind::LogoutAll)
    };
    let events = store.revoke_user(&revocation(T0)).await.unwrap();
    assert_eq!(events.len(), 3, "two live sessions and the cutoff");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        events[2].target,
        RevocationTarget::User {
            user_id: "u1".into(),
            not_before: T0
        }
    );
    store.revoke_user(&revocation(T0 - 5000)).await.unwrap();
    assert_eq!(
        store.user_by_id("u1").await.unwrap().unwrap().not_before,
        T0
    );
    assert!(store.live_sessions("u1", T0 + 20).await.unwrap().is_empty());
}

async fn the_feed_reads_in_order_by_pages(store: Arc<dyn Store>) {
    for i in 0..5 {
        store
            .revoke_jti(&format!("j{i}"), T0, T0 + HOUR)
            .await
            .unwrap();
    }
    let first = store.revocations_after(0, 3).await.unwrap();
    let rest = store.revocations_after(first[2].seq, 3).await.unwrap();
    let targets: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|e| e.target.clone())
        .collect();
    let expected: Vec<_> = (0..5)
        .map(|i| RevocationTarget::Jti(format!("j{i}")))
        .collect();
    assert_eq!(targets, expected);
}

async fn live_sessions_leave_out_revoked_and_expired_ones(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    let mut idle = session("s2", "u1");
    idle.idle_expires_at = T0 + HOUR;
    open(store.as_ref(), &idle).await;
    open(store.as_ref(), &session("s3", "u1")).await;
    store
        .revoke_session("s3", T0, T0 + HOUR, Reason::Revoke, &Origin::default())
        .await
        .unwrap();
    let ids = |sessions: Vec<SessionRecord>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.live_sessions("u1", T0 + HOUR - 1).await.unwrap()).len(),
        2
    );
    assert_eq!(
        ids(store.live_sessions("u1", T0 + HOUR).await.unwrap()),
        ["s1"]
    );
    assert_eq!(store.count_live_sessions(T0 + HOUR).await.unwrap(), 1);
}

async fn throttle_records_swap_only_from_what_was_read(store: Arc<dyn Store>) {
    let record = throttle::Record {
        failures: 3,
        window_started_at: T0,
        locked_until: T0 + 30_000,
        lockouts: 2,
    };
    assert!(store.swap_throttle("nobody", None, &record).await.unwrap());
    assert!(
        !store.swap_throttle("nobody", None, &record).await.unwrap(),
        "already there"
    );
    let next = throttle::Record {
        failures: 4,
        ..record
    };
    assert!(
        store
            .swap_throttle("nobody", Some(&record), &next)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_throttle("nobody", Some(&record), &next)
            .await
            .unwrap(),
        "no longer what was read"
    );
    assert_eq!(store.throttle("nobody").await.unwrap(), Some(next));
    store.clear_throttle("nobody").await.unwrap();
    assert_eq!(store.throttle("nobody").await.unwrap(), None);
}

/// A login's first step: the attempt counted against the name, with the user of that name read
/// alongside (none for an unknown name, which is counted all the same); once the count locks the
/// name, the next attempt is refused and counts nothing.
async fn attempts_are_counted_with_their_user_until_the_name_locks(store: Arc<dyn Store>) {
    let policy = throttle::Policy {
        max_failures: 2,
        ..throttle::Policy::default()
    };
    let alice = user("u1", "alice");
    store
        .create_user(&alice, &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let first = throttle::count(None, T0, &policy).unwrap();
    assert_eq!(
        store.count_attempt("alice", T0, &policy).await.unwrap(),
        Attempt::Counted {
            record: first,
            user: Some(alice.clone()),
        }
    );
    assert_eq!(store.throttle("alice").await.unwrap(), Some(first));
    let locking = throttle::count(Some(&first), T0 + 1, &policy).unwrap();
    assert!(locking.locked_until > T0 + 1, "the second failure locks");
    assert_eq!(
        store.count_attempt("alice", T0 + 1, &policy).await.unwrap(),
        Attempt::Counted {
            record: locking,
            user: Some(alice),
        }
    );
    assert_eq!(
        store.count_attempt("alice", T0 + 2, &policy).await.unwrap(),
        Attempt::Locked(locking.locked_until)
    );
    assert_eq!(
        store.throttle("alice").await.unwrap(),
        Some(locking),
        "a refused attempt counts nothing"
    );
    assert_eq!(
        store.count_attempt("nobody", T0, &policy).await.unwrap(),
        Attempt::Counted {
            record: first,
            user: None,
        }
    );
    assert_eq!(store.throttle("nobody").await.unwrap(), Some(first));
}

/// Attempts on one name at once are each counted once: on PostgreSQL one that lost the swap to
/// another is `Raced`, counted nothing, and counts again (as Login does).
async fn attempts_at_once_on_one_name_are_each_counted_once(store: Arc<dyn Store>) {
    let policy = throttle::Policy::default();
    let attempts = (0..8).map(|_| {
        let store = Arc::clone(&store);
        async move {
            loop {
                match store.count_attempt("alice", T0, &policy).await.unwrap() {
                    Attempt::Raced => continue,
                    Attempt::Counted { record, user } => return (record.failures, user),
                    Attempt::Locked(until) => panic!("locked until {until}"),
                }
            }
        }
    });
    let mut counted: Vec<_> = join_all(attempts).await;
    counted.sort_by_key(|(failures, _)| *failures);
    let expected: Vec<_> = (1..=8).map(|n| (n, None)).collect();
    assert_eq!(counted, expected, "each saw its own count");
    let record = store.throttle("alice").await.unwrap().unwrap();
    assert_eq!(record.failures, 8);
}

async fn a_session_clears_its_logins_throttle_record_and_a_refused_one_writes_nothing(
    store: Arc<dyn Store>,
) {
    let counted = throttle::Record {
        failures: 1,
        window_started_at: T0,
        locked_until: 0,
        lockouts: 0,
    };
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let s0 = session("s0", "u1");
    open(store.as_ref(), &s0).await;
    assert!(store.swap_throttle("alice", None, &counted).await.unwrap());
    let (s1, token) = (session("s1", "u1"), hash());
    // At a cap of one, s0 would be evicted.
    let refused = NewSession {
        max_live_sessions: 1,
        ..new_session(&s1, &token, "$argon2id$not-the-hash")
    };
    assert_eq!(store.create_session(&refused).await.unwrap(), None);
    assert_eq!(
        store.throttle("alice").await.unwrap(),
        Some(counted),
        "a refused session writes nothing"
    );
    let live = store.live_sessions("u1", T0).await.unwrap();
    assert_eq!(live, [s0], "nor opens a session or evicts one");
    assert!(store.find_refresh(&token).await.unwrap().is_none());
    assert!(store.revocations_after(0, 10).await.unwrap().is_empty());
    open(store.as_ref(), &session("s2", "u1")).await;
    assert_eq!(store.throttle("alice").await.unwrap(), None);
}

async fn keys_come_back_oldest_first(store: Arc<dyn Store>) {
    for (kid, at) in [("b", T0 + 1), ("a", T0 + 2)] {
        let key = KeyRecord {
            kid: kid.into(),
            alg: "EdDSA".into(),
            sealed_private: vec![7],
            created_at: at,
        };
        store.insert_key(&key).await.unwrap();
    }
    let kids: Vec<_> = store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["b", "a"]);
}

async fn housekeeping_deletes_only_dead_rows(store: Arc<dyn Store>) {
    let spent = seeded(store.as_ref()).await;
    let live = hash();
    assert!(
        store
            .rotate(&rotation("s1", 1, live.clone()))
            .await
            .unwrap()
    );
    let mut ended = session("s2", "u1");
    ended.idle_expires_at = T0 + HOUR;
    let ended_token = open(store.as_ref(), &ended).await;
    store.revoke_jti("old", T0, T0 + HOUR).await.unwrap();
    store.revoke_jti("new", T0, T0 + 10 * HOUR).await.unwrap();
    let stale = throttle::Record {
        failures: 1,
        window_started_at: T0,
        locked_until: 0,
        lockouts: 0,
    };
    assert!(store.swap_throttle("gone", None, &stale).await.unwrap());
    let purge = Purge {
        sessions_ended_before: T0 + 2 * HOUR,
        sealed_rotated_before: T0,
        events_expired_before: T0 + 2 * HOUR,
        throttle_idle_before: T0 + 1,
        account_events_before: T0,
        batch: 1,
        erase_batch: 1,
    };
    assert_eq!(
        purge_all(store.as_ref(), &purge).await,
        4,
        "the ended session and its token, one event, one throttle record"
    );
    assert_eq!(store.find_refresh(&ended_token).await.unwrap(), None);
    assert!(
        store.find_refresh(&spent).await.unwrap().is_some(),
        "a spent token stays while its session lasts"
    );
    assert!(
        store.find_refresh(&live).await.unwrap().is_some(),
        "a live token stays, however old"
    );
    assert_eq!(store.throttle("gone").await.unwrap(), None);
    let kept: Vec<_> = store
        .revocations_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(kept, [RevocationTarget::Jti("new".into())]);
}

/// Purges until nothing is left; how many rows were deleted or erased.
async fn purge_all(store: &dyn Store, purge: &Purge) -> u64 {
    let mut changed = 0;
    loop {
        let n = store.purge(purge).await.unwrap();
        if n == 0 {
            return changed;
        }
        changed += n;
    }
}

/// A purge of sessions ended before `ended`, and of nothing else.
fn purge_sessions(ended: i64, batch: i64) -> Purge {
    Purge {
        sessions_ended_before: ended,
        sealed_rotated_before: 0,
        events_expired_before: 0,
        throttle_idle_before: 0,
        account_events_before: 0,
        batch,
        erase_batch: batch,
    }
}

async fn spent_tokens_are_kept_until_their_session_has_ended(store: Arc<dyn Store>) {
    const DAY: i64 = 24 * HOUR;
    let mut tokens = vec![seeded(store.as_ref()).await];
    // A refresh every four days keeps the session (thirty days of absolute lifetime) alive.
    for generation in 1..=5 {
        let next = hash();
        let now = T0 + generation * 4 * DAY;
        let refreshed = Rotation {
            now,
            idle_expires_at: now + 14 * DAY,
            ..rotation("s1", generation, next.clone())
        };
        assert!(store.rotate(&refreshed).await.unwrap());
        tokens.push(next);
    }
    let day_20 = T0 + 20 * DAY;
    assert_eq!(
        purge_all(store.as_ref(), &purge_sessions(day_20, 2)).await,
        0
    );
    for token in &tokens {
        let generation = store.find_refresh(token).await.unwrap().unwrap().generation;
        assert!(generation <= 6, "every spent token is still known");
    }
    store
        .revoke_session(
            "s1",
            day_20,
            day_20 + HOUR,
            Reason::Reuse,
            &Origin::default(),
        )
        .await
        .unwrap();
    let purged = purge_all(store.as_ref(), &purge_sessions(day_20 + 1, 2)).await;
    assert_eq!(purged, 7, "six tokens, two a batch, then their session");
    for token in &tokens {
        assert_eq!(store.find_refresh(token).await.unwrap(), None);
    }
}

async fn sealed_tokens_are_erased_once_their_grace_window_has_passed(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    let second = hash();
    assert!(
        store
            .rotate(&rotation("s1", 1, second.clone()))
            .await
            .unwrap()
    );
    let sealed = |store: Arc<dyn Store>, token: TokenHash| async move {
        store
            .find_refresh(&token)
            .await
            .unwrap()
            .unwrap()
            .session
            .sealed_token
    };
    let erase = |rotated_before| Purge {
        sealed_rotated_before: rotated_before,
        ..purge_sessions(0, 1)
    };
    // Rotated at T0 + 1000: inside its window until then.
    assert_eq!(purge_all(store.as_ref(), &erase(T0 + 1000)).await, 0);
    assert_eq!(sealed(store.clone(), second.clone()).await, vec![9]);
    assert_eq!(purge_all(store.as_ref(), &erase(T0 + 1001)).await, 1);
    assert!(sealed(store.clone(), second.clone()).await.is_empty());
    assert_eq!(
        purge_all(store.as_ref(), &erase(T0 + HOUR)).await,
        0,
        "once"
    );
    let third = hash();
    let later = Rotation {
        now: T0 + HOUR,
        sealed_token: vec![8],
        ..rotation("s1", 2, third.clone())
    };
    assert!(store.rotate(&later).await.unwrap());
    assert_eq!(sealed(store.clone(), third).await, vec![8], "the next one");
}

async fn a_session_opens_only_for_the_password_and_state_the_login_checked(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    let change = |new_password_hash: Option<String>, disable| UserRevocation {
        new_password_hash,
        disable,
        ..user_revocation(EventKind::PasswordChanged)
    };
    let events = store
        .revoke_user(&change(Some("$argon2id$new".into()), false))
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "s1 and the cutoff");
    assert!(
        store
            .create_session(&new_session(&session("s2", "u1"), &hash(), PASSWORD_HASH))
            .await
            .unwrap()
            .is_none(),
        "old password"
    );
    assert!(
        store
            .create_session(&new_session(&session("s3", "u1"), &hash(), "$argon2id$new"))
            .await
            .unwrap()
            .is_some()
    );
    store.revoke_user(&change(None, true)).await.unwrap();
    assert!(store.user_by_id("u1").await.unwrap().unwrap().disabled);
    assert!(
        store
            .create_session(&new_session(&session("s4", "u1"), &hash(), "$argon2id$new"))
            .await
            .unwrap()
            .is_none(),
        "disabled"
    );
    assert!(
        store
            .enable_user("u1", T0, &event("u1", EventKind::Enabled))
            .await
            .unwrap()
    );
    assert!(
        store
            .create_session(&new_session(&session("s5", "u1"), &hash(), "$argon2id$new"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_login_stores_its_rehash_in_place_of_the_hash_it_checked(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let stored = || async {
        let user = store.user_by_id("u1").await.unwrap().unwrap();
        user.password_hash.expose().clone()
    };
    let (s1, s2, s3) = (
        session("s1", "u1"),
        session("s2", "u1"),
        session("s3", "u1"),
    );
    let (t1, t2, t3) = (hash(), hash(), hash());
    let rehashing = |s, t| NewSession {
        rehashed: Some("$argon2id$rehashed"),
        ..new_session(s, t, PASSWORD_HASH)
    };
    assert!(
        store
            .create_session(&rehashing(&s1, &t1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(stored().await, "$argon2id$rehashed");
    assert!(
        store
            .create_session(&rehashing(&s2, &t2))
            .await
            .unwrap()
            .is_some(),
        "a concurrent login brings the same re-hash"
    );
    let change = UserRevocation {
        new_password_hash: Some("$argon2id$changed".into()),
        ..user_revocation(EventKind::PasswordChanged)
    };
    store.revoke_user(&change).await.unwrap();
    assert!(
        store
            .create_session(&rehashing(&s3, &t3))
            .await
            .unwrap()
            .is_none(),
        "the password changed after the check"
    );
    assert_eq!(stored().await, "$argon2id$changed");
}

async fn a_session_beyond_the_cap_revokes_the_least_recently_used_in_the_same_step(
    store: Arc<dyn Store>,
) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    // s1 was used last, s2 first; s3 expired unused and counts for nothing.
    for (id, last_used_at, idle_expires_at) in [
        ("s1", T0 + 30, T0 + HOUR),
        ("s2", T0 + 10, T0 + HOUR),
        ("s3", T0, T0 + 50),
    ] {
        let s = SessionRecord {
            last_used_at,
            idle_expires_at,
            ..session(id, "u1")
        };
        open(store.as_ref(), &s).await;
    }
    let capped = |s, t| NewSession {
        max_live_sessions: 2,
        ..new_session(s, t, PASSWORD_HASH)
    };
    let s4 = SessionRecord {
        created_at: T0 + 100,
        last_used_at: T0 + 100,
        ..session("s4", "u1")
    };
    let evicted = store.create_session(&capped(&s4, &hash())).await.unwrap();
    let evicted = evicted.unwrap();
    assert_eq!(
        evicted.iter().map(|e| e.target.clone()).collect::<Vec<_>>(),
        [RevocationTarget::Session("s2".into())]
    );
    assert_eq!(store.revocations_after(0, 10).await.unwrap(), evicted);
    let live: Vec<_> = store.live_sessions("u1", T0 + 100).await.unwrap();
    let mut ids: Vec<_> = live.into_iter().map(|s| s.id).collect();
    ids.sort();
    assert_eq!(ids, ["s1", "s4"]);
}

/// Logins of one user at its cap, all at once: each waits for the user's row, then counts the
/// sessions of those that went before, so each evicts exactly one and the cap holds.
async fn logins_at_the_cap_all_at_once_each_evict_one_and_the_cap_holds(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let sessions: Vec<_> = (0..15)
        .map(|i| SessionRecord {
            created_at: T0 + i,
            last_used_at: T0 + i,
            ..session(&format!("s{i}"), "u1")
        })
        .collect();
    let tokens: Vec<_> = sessions.iter().map(|_| hash()).collect();
    let capped = |i: usize| NewSession {
        max_live_sessions: 3,
        ..new_session(&sessions[i], &tokens[i], PASSWORD_HASH)
    };
    for i in 0..3 {
        assert_eq!(
            store.create_session(&capped(i)).await.unwrap(),
            Some(vec![])
        );
    }
    let at_once: Vec<_> = (3..15).map(capped).collect();
    let logins = join_all(at_once.iter().map(|new| store.create_session(new))).await;
    let evicted: Vec<usize> = logins
        .into_iter()
        .map(|l| l.unwrap().unwrap().len())
        .collect();
    assert_eq!(evicted, [1; 12], "each login beyond the cap evicts one");
    let live = store.live_sessions("u1", T0 + 100).await.unwrap();
    assert_eq!(live.len(), 3, "{live:?}");
}

/// A login far beyond a lowered cap evicts several sessions at once: their feed events are
/// numbered in one run, as returned, and each gets a `session_evicted` account event with the
/// login's origin, numbered in one run before the login's own.
async fn a_login_evicting_several_numbers_their_events_in_one_run_with_its_origin(
    store: Arc<dyn Store>,
) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    for i in 0..5 {
        let s = SessionRecord {
            last_used_at: T0 + i,
            ..session(&format!("s{i}"), "u1")
        };
        open(store.as_ref(), &s).await;
    }
    let origin = Origin {
        ip: "192.0.2.7".into(),
        device: "phone".into(),
        client_id: "app".into(),
        session_id: "s5".into(),
    };
    let login = NewEvent::new("u1", EventKind::Login, origin.clone());
    let (s5, token) = (session("s5", "u1"), hash());
    let new = NewSession {
        max_live_sessions: 3,
        event: &login,
        ..new_session(&s5, &token, PASSWORD_HASH)
    };
    let evicted = store.create_session(&new).await.unwrap().unwrap();
    assert_eq!(store.revocations_after(0, 10).await.unwrap(), evicted);
    let seqs: Vec<i64> = evicted.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let mut ids: Vec<String> = evicted
        .iter()
        .map(|e| match &e.target {
            RevocationTarget::Session(id) => id.clone(),
            other => panic!("not a session: {other:?}"),
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["s0", "s1", "s2"], "s3 and s4 were used last");

    let events = store.events_after(0, 100).await.unwrap();
    let tail = &events[events.len() - 4..];
    assert!(tail.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    let mut evicted_ids: Vec<&str> = tail[..3]
        .iter()
        .map(|e| {
            assert_eq!(e.kind, "session_evicted");
            assert_eq!(e.user_id, "u1");
            assert_eq!((e.at, e.new_device), (T0, false));
            assert_eq!(
                (e.ip.as_str(), e.device.as_str(), e.client_id.as_str()),
                ("192.0.2.7", "phone", "app")
            );
            e.session_id.as_str()
        })
        .collect();
    evicted_ids.sort_unstable();
    assert_eq!(evicted_ids, ["s0", "s1", "s2"]);
    let own = &tail[3];
    assert_eq!(
        (own.kind.as_str(), own.session_id.as_str(), own.ip.as_str()),
        ("login", "s5", "192.0.2.7")
    );
}

async fn revoking_a_user_numbers_every_event_in_one_run_in_commit_order(store: Arc<dyn Store>) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let sessions: Vec<_> = (0..300).map(|i| session(&format!("s{i}"), "u1")).collect();
    for chunk in sessions.chunks(50) {
        join_all(chunk.iter().map(|s| open(store.as_ref(), s))).await;
    }
    let before = store.revoke_jti("before", T0, T0 + HOUR).await.unwrap();
    let logout = user_revocation(EventKind::LogoutAll);
    let events = store.revoke_user(&logout).await.unwrap();
    let after = store.revoke_jti("after", T0, T0 + HOUR).await.unwrap();
    assert_eq!(events.len(), 301);
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (before.seq + 1..after.seq).collect();
    assert_eq!(
        seqs, expected,
        "one run, between the events before and after"
    );
    assert!(matches!(events[300].target, RevocationTarget::User { .. }));
    let mut revoked: Vec<_> = events[..300]
        .iter()
        .map(|e| match &e.target {
            RevocationTarget::Session(id) => id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    revoked.sort();
    let mut all: Vec<_> = sessions.iter().map(|s| s.id.clone()).collect();
    all.sort();
    assert_eq!(revoked, all);
    let feed = store.revocations_after(before.seq, 1_000).await.unwrap();
    assert_eq!(&feed[..301], &events[..]);
    assert!(store.live_sessions("u1", T0).await.unwrap().is_empty());
}

/// Runs each story on both backends, as `sqlite::<story>` and `postgres::<story>`.
macro_rules! conformance {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $story() {
                    let (url, _dir) = super::sqlite_url().await;
                    super::$story(latchkey::store::connect(&url, latchkey::store::Mode::Create).await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $story() {
                    let url = crate::helpers::fresh_postgres_database().await;
                    super::$story(latchkey::store::connect(&url, latchkey::store::Mode::Create).await.unwrap()).await;
                }
            )*
        }
    };
}

mod accounts;

conformance!(
    usernames_are_unique_exactly_as_given,
    rotation_is_a_compare_and_swap_on_the_generation,
    of_concurrent_swaps_of_one_generation_exactly_one_wins,
    rotations_arriving_together_are_each_answered_as_if_alone,
    rotations_arriving_together_with_none_failing_are_each_answered_as_if_alone,
    a_revoked_session_never_rotates_and_is_revoked_once,
    revoking_what_is_revoked_writes_no_event,
    revoking_a_user_writes_ordered_events_and_never_lowers_the_cutoff,
    the_feed_reads_in_order_by_pages,
    live_sessions_leave_out_revoked_and_expired_ones,
    throttle_records_swap_only_from_what_was_read,
    attempts_are_counted_with_their_user_until_the_name_locks,
    attempts_at_once_on_one_name_are_each_counted_once,
    a_session_clears_its_logins_throttle_record_and_a_refused_one_writes_nothing,
    keys_come_back_oldest_first,
    housekeeping_deletes_only_dead_rows,
    spent_tokens_are_kept_until_their_session_has_ended,
    sealed_tokens_are_erased_once_their_grace_window_has_passed,
    a_session_opens_only_for_the_password_and_state_the_login_checked,
    a_login_stores_its_rehash_in_place_of_the_hash_it_checked,
    a_session_beyond_the_cap_revokes_the_least_recently_used_in_the_same_step,
    logins_at_the_cap_all_at_once_each_evict_one_and_the_cap_holds,
    revoking_a_user_numbers_every_event_in_one_run_in_commit_order,
    a_login_evicting_several_numbers_their_events_in_one_run_with_its_origin,
);

/// A database left by a release before the second schema, holding a first token sealed at login
/// and a rotation's successor: opening it migrates it, and the first token's sealed copy is erased
/// (no retry can ask for it) while the successor's waits for housekeeping.
macro_rules! upgrade {
    ($name:ident, $pool:ty, $backend:literal, $url:expr) => {
        #[tokio::test]
        async fn $name() {
            use sqlx::{
                SqlSafeStr,
                migrate::{Migration, MigrationType, Migrator},
            };
            let (url, _dir) = $url;
            let init = include_str!(concat!("../../../migrations/", $backend, "/0001_init.sql"));
            let first = Migration::new(
                1,
                "init".into(),
                MigrationType::Simple,
                init.into_sql_str(),
                false,
            );
            let pool = <$pool>::connect(&url).await.unwrap();
            Migrator::with_migrations(vec![first])
                .run(&pool)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, created_at) \
                 VALUES ('u1', 'alice', 'h', 0)",
            )
            .execute(&pool)
            .await
            .unwrap();
            for (id, rotated_at) in [("s1", None), ("s2", Some(T0))] {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, client_id, device, ip, scope, \
                     created_at, last_used_at, idle_expires_at, absolute_expires_at, generation, \
                     rotated_at, sealed_token) \
                     VALUES ($1, 'u1', 'c', 'd', 'i', '', $2, $2, $3, $3, 1, $4, $5)",
                )
                .bind(id)
                .bind(T0)
                .bind(T0 + HOUR)
                .bind(rotated_at)
                .bind(vec![4_u8, 5, 6])
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
            let store = store::connect(&url, store::Mode::Create).await.unwrap();
            let sealed: Vec<_> = store
                .live_sessions("u1", T0)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.id, s.sealed_token))
                .collect();
            assert!(sealed.contains(&("s1".into(), vec![])), "{sealed:?}");
            assert!(sealed.contains(&("s2".into(), vec![4, 5, 6])), "{sealed:?}");
        }
    };
}

upgrade!(
    upgrading_erases_first_tokens_sealed_by_earlier_releases_on_sqlite,
    sqlx::SqlitePool,
    "sqlite",
    {
        let (url, dir) = sqlite_url().await;
        (format!("{url}?mode=rwc"), Some(dir))
    }
);
upgrade!(
    upgrading_erases_first_tokens_sealed_by_earlier_releases_on_postgres,
    sqlx::PgPool,
    "postgres",
    (fresh_postgres_database().await, None::<tempfile::TempDir>)
);

/// Parameters to plan each lookup with (their types matter to PostgreSQL).
#[derive(Clone)]
enum Param {
    Text,
    Int,
    Bool,
    Bytes,
}

fn params(query: &str) -> Vec<Param> {
    use Param::*;
    match query {
        "user_by_name"
        | "user_by_id"
        | "enable_user"
        | "throttle"
        | "clear_throttle"
        | "postgres_throttle_and_user" => vec![Text],
        "lock_user_as_checked" => vec![Text, Text, Text],
        "change_user" => vec![Int, Text, Bool, Text],
        "swap_throttle" => vec![Int, Int, Int, Int, Text, Int, Int, Int, Int],
        "find_refresh" => vec![Bytes],
        "rotate" => vec![Int, Int, Int, Bytes, Text, Int],
        "revoke_session" => vec![Int, Text],
        "revoke_user_sessions" => vec![Int, Text, Text],
        "take_event_seqs" => vec![Int],
        "insert_event" => vec![Int, Int, Text, Text, Text, Text, Text, Text, Int, Text],
        "postgres_open_session" => [
            vec![Text],
            params("evict_sessions"),
            vec![Text; 6],
            vec![Int; 5],
            vec![Bytes],
            vec![Bytes, Text, Int, Int],
        ]
        .concat(),
        "events_after" => vec![Int, Int],
        "events_before" => [vec![Int], vec![Text; 14], vec![Int]].concat(),
        "user_events_before" => [vec![Text, Int], vec![Text; 14], vec![Int]].concat(),
        "users_from" | "users_after" => vec![Text, Text, Int, Int],
        "count_user_live_sessions" => vec![Text, Int],
        "set_scopes" => vec![Text, Text],
        "delete_user_tokens" | "delete_user_sessions" | "delete_user" => vec![Text],
        "live_sessions" => vec![Text, Int],
        "count_live_sessions" => vec![Int],
        "take_seqs" => vec![Int],
        "evict_sessions" => vec![Int, Text, Int, Int],
        "revocations_after" => vec![Int, Int],
        "erase_sealed_tokens" => vec![Int, Int, Bytes],
        name if name.starts_with("purge_") => vec![Int, Int],
        other => panic!("add the parameters of lookup {other} here"),
    }
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Text => q.bind("x"),
                Param::Int => q.bind(1_i64),
                Param::Bool => q.bind(true),
                Param::Bytes => q.bind(vec![0_u8; 32]),
            };
        }
        q
    }};
}

#[tokio::test]
async fn every_hot_query_is_an_index_lookup_on_sqlite() {
    let (url, _dir) = sqlite_url().await;
    store::connect(&url, store::Mode::Create).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for (name, sql) in store::queries::LOOKUPS {
        let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        let rows = bind_all!(explain, params(name))
            .fetch_all(&pool)
            .await
            .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
            .collect();
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN ")),
            "{name} scans a table: {plan:?}"
        );
    }
}

/// Replicas starting together on a new database migrate it between them, and each opens sessions
/// at once: on PostgreSQL through the function that one of them created for all.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_migrating_a_new_database_together_each_open_sessions_on_postgres() {
    let url = fresh_postgres_database().await;
    let starting = (0..4).map(|_| store::connect(&url, store::Mode::Create));
    let stores: Vec<Arc<dyn Store>> = join_all(starting)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let created = event("u1", EventKind::UserCreated);
    stores[0]
        .create_user(&user("u1", "alice"), &created)
        .await
        .unwrap();
    for (i, store) in stores.iter().enumerate() {
        open(store.as_ref(), &session(&format!("s{i}"), "u1")).await;
    }
}

#[tokio::test]
async fn every_hot_query_is_an_index_lookup_on_postgres() {
    use sqlx::Connection;
    let url = fresh_postgres_database().await;
    store::connect(&url, store::Mode::Create).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    // On empty tables a sequential scan is cheapest; forbid it to see whether an index exists.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let open_session = (
        "postgres_open_session",
        store::queries::POSTGRES_OPEN_SESSION.as_str(),
    );
    let lookups = store::queries::LOOKUPS.iter().copied();
    let postgres_only = store::queries::POSTGRES_LOOKUPS.iter().copied();
    let mut plans = Vec::new();
    for (name, sql) in lookups.chain(postgres_only).chain([open_session]) {
        let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")));
        let rows = bind_all!(explain, params(name))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        plans.push((name, rows));
    }
    // A batch of rotations takes arrays, which SQLite has not.
    let sql = store::queries::POSTGRES_ROTATE_ALL.as_str();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(vec!["x"])
        .bind(vec![1_i64])
        .bind(vec![1_i64])
        .bind(vec![1_i64])
        .bind(vec![vec![0_u8; 32]])
        .bind(vec![vec![0_u8; 32]])
        .fetch_all(&mut conn)
        .await
        .unwrap();
    plans.push(("postgres_rotate_all", rows));
    for (name, rows) in plans {
        let plan: Vec<String> = rows
            .iter()
            .map(|r| sqlx::Row::get::<String, _>(r, 0))
            .collect();
        assert!(
            !plan.iter().any(|step| step.contains("Seq Scan")),
            "{name} scans a table: {plan:#?}"
        );
    }
}

/// On PostgreSQL a rotation whose session row another transaction holds (another replica's
/// revocation, say) holds up no other rotation of the process: its batch skips it, and it waits on
/// its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_waiting_for_a_locked_row_holds_up_no_other_on_postgres() {
    use std::time::{Duration, Instant};

    use sqlx::Connection;
    let url = fresh_postgres_database().await;
    let store = store::connect(&url, store::Mode::Create).await.unwrap();
    seeded(store.as_ref()).await;
    open(store.as_ref(), &session("s2", "u1")).await;
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sessions WHERE id = 's1' FOR UPDATE")
        .execute(&mut *held)
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.rotate(&rotation("s1", 1, hash())).await }
    });
    // Until s1's rotation waits for the row.
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waits: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waits > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "s1's rotation never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = tokio::time::timeout(
        Duration::from_secs(2),
        store.rotate(&rotation("s2", 1, hash())),
    )
    .await;
    assert!(other.expect("s2 waited for s1's row").unwrap());
    assert!(!waiting.is_finished());
    held.commit().await.unwrap();
    assert!(waiting.await.unwrap().unwrap());
}

/// The batch's one statement itself (PostgreSQL), so that no fallback can stand in for it: of two
/// racers one token goes in; a stale generation and a revoked session make nothing and are not
/// skipped; a session another transaction holds, and an unknown one, are skipped (to be made on
/// their own) without the statement waiting.
#[tokio::test(flavor = "multi_thread")]
async fn the_batched_rotation_answers_what_it_made_and_skipped_on_postgres() {
    use std::collections::HashSet;

    use sqlx::Connection;
    let url = fresh_postgres_database().await;
    let store = store::connect(&url, store::Mode::Create).await.unwrap();
    seeded(store.as_ref()).await;
    for id in ["s2", "s3", "s4"] {
        open(store.as_ref(), &session(id, "u1")).await;
    }
    let revoked = store
        .revoke_session("s3", T0 + 5, T0 + HOUR, Reason::Revoke, &Origin::default())
        .await
        .unwrap();
    assert!(revoked.is_some());
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sessions WHERE id = 's4' FOR UPDATE")
        .execute(&mut *held)
        .await
        .unwrap();
    let ids = ["s1", "s1", "s2", "s3", "s4", "nobody"];
    let hashes: Vec<Vec<u8>> = ids.iter().map(|_| hash().0).collect();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let statement = store::queries::POSTGRES_ROTATE_ALL.as_str();
    let rows: Vec<(Option<Vec<u8>>, Option<String>)> = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(ids.to_vec())
            .bind(vec![1_i64, 1, 7, 1, 1, 1])
            .bind(vec![T0 + 1000; 6])
            .bind(vec![T0 + 15 * 24 * HOUR; 6])
            .bind(vec![vec![9_u8]; 6])
            .bind(hashes.clone())
            .fetch_all(&mut conn),
    )
    .await
    .expect("the statement waited for the held row")
    .unwrap();
    let made: HashSet<Vec<u8>> = rows.iter().filter_map(|r| r.0.clone()).collect();
    let skipped: HashSet<String> = rows.iter().filter_map(|r| r.1.clone()).collect();
    assert_eq!(made.len(), 1, "{rows:?}");
    assert!(made.contains(&hashes[0]) || made.contains(&hashes[1]));
    assert_eq!(
        skipped,
        HashSet::from(["s4".to_owned(), "nobody".to_owned()])
    );
    held.commit().await.unwrap();
    let winner = TokenHash(made.into_iter().next().unwrap());
    let s1 = store.find_refresh(&winner).await.unwrap().unwrap();
    assert_eq!((s1.session.id.as_str(), s1.session.generation), ("s1", 2));
    for (id, h) in ids.iter().zip(&hashes).skip(2) {
        let found = store.find_refresh(&TokenHash(h.clone())).await.unwrap();
        assert_eq!(found, None, "{id} rotated");
    }
}
