//! The store's account side, on both backends: account events numbered in commit order and
//! listed by user and kind, newest first; a login's `new_device`; a user deleted with its
//! sessions and tokens but not its events; users listed by name with their live sessions; and
//! events purged once past retention.

use std::sync::Arc;

use latchkey::{
    domain::event::{EventKind, NewEvent, Origin},
    store::{EventsPage, Store, UserRevocation, UsersPage},
};

use super::{
    HOUR, T0, event, hash, new_session, purge_all, purge_sessions, seeded, session, sqlite_url,
    user, user_revocation,
};

fn page<'a>(
    user_id: Option<&'a str>,
    kinds: &'a [EventKind],
    before: i64,
    limit: i64,
) -> EventsPage<'a> {
    EventsPage {
        user_id,
        kinds,
        before,
        limit,
    }
}

async fn kinds_of(store: &dyn Store, page: &EventsPage<'_>) -> Vec<String> {
    let events = store.events_page(page).await.unwrap();
    events.into_iter().map(|e| e.kind).collect()
}

async fn events_are_numbered_in_commit_order_and_listed_by_user_and_kind(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    store
        .create_user(&user("u2", "bob"), &event("u2", EventKind::UserCreated))
        .await
        .unwrap();
    let failed = [
        event("u1", EventKind::LoginFailed),
        event("u1", EventKind::LockedOut).with_detail("locked for 30 s".into()),
    ];
    store.record_events(&failed, T0 + 5).await.unwrap();
    let all = store.events_after(0, 100).await.unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "numbered without gaps, in commit order"
    );
    let newest_first = kinds_of(store.as_ref(), &page(None, &[], i64::MAX, 100)).await;
    assert_eq!(
        newest_first,
        [
            "locked_out",
            "login_failed",
            "user_created",
            "login",
            "user_created"
        ]
    );
    let alice = kinds_of(store.as_ref(), &page(Some("u1"), &[], i64::MAX, 100)).await;
    assert_eq!(
        alice,
        ["locked_out", "login_failed", "login", "user_created"]
    );
    let two_kinds = [EventKind::Login, EventKind::LockedOut];
    let filtered = kinds_of(store.as_ref(), &page(Some("u1"), &two_kinds, i64::MAX, 100)).await;
    assert_eq!(filtered, ["locked_out", "login"]);
    let below = kinds_of(store.as_ref(), &page(None, &[], 4, 2)).await;
    assert_eq!(
        below,
        ["user_created", "login"],
        "a page below seq 4, of two"
    );
    assert_eq!(all[4].detail, "locked for 30 s");
    assert_eq!(all[4].at, T0 + 5);
    assert_eq!(store.events_after(5, 100).await.unwrap(), vec![]);
}

async fn a_login_is_new_unless_its_named_device_or_its_address_logged_in_lately(
    store: Arc<dyn Store>,
) {
    store
        .create_user(&user("u1", "alice"), &event("u1", EventKind::UserCreated))
        .await
        .unwrap();
    let logins = [
        ("s1", "10.0.0.1", "laptop", T0),
        ("s2", "10.0.0.1", "laptop", T0 + 1),
        ("s3", "10.0.0.2", "", T0 + 2),
        ("s4", "10.0.0.3", "", T0 + 3),
        ("s5", "10.0.0.4", "laptop", T0 + 4),
        ("s6", "10.0.0.9", "phone", T0 + 100 * 24 * HOUR),
    ];
    for (id, ip, device, at) in logins {
        let origin = Origin {
            ip: ip.into(),
            device: device.into(),
            ..Origin::default()
        };
        let login = NewEvent {
            new_device_since: Some(at - 90 * 24 * HOUR),
            ..NewEvent::new("u1", EventKind::Login, origin)
        };
        let opened = latchkey::store::SessionRecord {
            created_at: at,
            ..session(id, "u1")
        };
        let token = hash();
        let new = latchkey::store::NewSession {
            event: &login,
            ..new_session(&opened, &token, super::PASSWORD_HASH)
        };
        assert!(store.create_session(&new).await.unwrap().is_some());
    }
    let events = store.events_after(1, 100).await.unwrap();
    let new: Vec<bool> = events.iter().map(|e| e.new_device).collect();
    // s3 and s4 have no device name: only their address counts; s6 is 100 days later.
    assert_eq!(new, [true, false, true, true, false, true]);
}

async fn a_deleted_user_is_gone_with_its_sessions_but_its_events_stay(store: Arc<dyn Store>) {
    let token = seeded(store.as_ref()).await;
    let delete = UserRevocation {
        now: T0 + 10,
        event: event("u1", EventKind::UserDeleted).with_detail("by admin u9".into()),
        delete: true,
        ..user_revocation(EventKind::UserDeleted)
    };
    let feed = store.revoke_user(&delete).await.unwrap();
    assert_eq!(
        feed.len(),
        2,
        "the session and the cutoff, on the feed for verifiers"
    );
    assert_eq!(store.user_by_id("u1").await.unwrap(), None);
    assert_eq!(store.find_refresh(&token).await.unwrap(), None);
    assert!(store.live_sessions("u1", T0).await.unwrap().is_empty());
    let kept = store.events_after(0, 100).await.unwrap();
    let kinds: Vec<&str> = kept.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["user_created", "login", "user_deleted"]);
    assert_eq!(kept[2].detail, "by admin u9; 1 session revoked");
    // The name is free again, for a new user.
    store
        .create_user(&user("u2", "alice"), &event("u2", EventKind::UserCreated))
        .await
        .unwrap();
}

async fn users_are_listed_by_name_with_their_live_sessions(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    for (id, name) in [("u2", "bob"), ("u3", "alfred"), ("u4", "Bob"), ("u5", "al")] {
        store
            .create_user(&user(id, name), &event(id, EventKind::UserCreated))
            .await
            .unwrap();
    }
    let listed = |from: &'static str, until: &'static str, after: Option<&'static str>| {
        let store = store.clone();
        async move {
            let page = UsersPage {
                from,
                until,
                after,
                limit: 10,
                now: T0 + 1,
            };
            let users = store.users_page(&page).await.unwrap();
            users
                .into_iter()
                .map(|(u, live)| (u.username, live))
                .collect::<Vec<_>>()
        }
    };
    let everyone = listed("", "\u{10ffff}", None).await;
    let names: Vec<&str> = everyone.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Bob", "al", "alfred", "alice", "bob"],
        "bytewise order"
    );
    assert_eq!(
        everyone[3],
        ("alice".to_owned(), 1),
        "alice has one live session"
    );
    let al = listed("al", "am", None).await;
    assert_eq!(al.len(), 3);
    let after_al = listed("al", "am", Some("al")).await;
    let names: Vec<&str> = after_al.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["alfred", "alice"]);
    assert_eq!(store.count_user_sessions("u1", T0 + 1).await.unwrap(), 1);
    assert!(
        store
            .set_scopes(
                "u1",
                &["a".into(), "b".into()],
                T0,
                &event("u1", EventKind::ScopesChanged)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_id("u1").await.unwrap().unwrap().scopes,
        ["a", "b"]
    );
    let nobody = event("u9", EventKind::ScopesChanged);
    assert!(!store.set_scopes("u9", &[], T0, &nobody).await.unwrap());
}

async fn events_are_purged_once_past_retention(store: Arc<dyn Store>) {
    seeded(store.as_ref()).await;
    store
        .record_events(&[event("u1", EventKind::LoginFailed)], T0 + HOUR)
        .await
        .unwrap();
    let purge = latchkey::store::Purge {
        account_events_before: T0 + 1,
        ..purge_sessions(0, 1)
    };
    assert_eq!(
        purge_all(store.as_ref(), &purge).await,
        2,
        "user_created and login, at T0"
    );
    let left = store.events_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, "login_failed");
}

conformance!(
    events_are_numbered_in_commit_order_and_listed_by_user_and_kind,
    a_login_is_new_unless_its_named_device_or_its_address_logged_in_lately,
    a_deleted_user_is_gone_with_its_sessions_but_its_events_stay,
    users_are_listed_by_name_with_their_live_sessions,
    events_are_purged_once_past_retention,
);
