//! Account activity: every event kind comes from the action that produces it, in the same order on
//! WatchEvents as in ListEvents; `new_device`; ListActivity shows users their own events;
//! ChangePassword keeps the caller's session and ends the others; WatchEvents sends an event written
//! through its server at once, sends heartbeats and, resumed by `seq` after a restart, misses
//! nothing.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use tonic::{Code, Streaming, transport::Endpoint};

use super::admin::{admin_client, admin_token};
use crate::helpers::{
    app::{TestApp, spawn_app, spawn_app_with},
    client::{reason, with_bearer},
};

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is this machine's).
async fn client_from(app: &TestApp, ip: &str) -> AuthServiceClient<tonic::transport::Channel> {
    let ip: IpAddr = ip.parse().unwrap();
    let channel = Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .local_address(Some(ip))
        .connect()
        .await
        .expect("connects");
    AuthServiceClient::new(channel)
}

async fn login_on(
    client: &AuthServiceClient<tonic::transport::Channel>,
    name: &str,
    password: &str,
    device: &str,
) -> Result<pb::TokenResponse, tonic::Status> {
    let request = pb::LoginRequest {
        username: name.into(),
        password: password.into(),
        device: device.into(),
        ..Default::default()
    };
    Ok(client.clone().login(request).await?.into_inner())
}

async fn watch(app: &TestApp, token: &str, after_seq: u64) -> Streaming<pb::AccountEvent> {
    let request = with_bearer(pb::WatchEventsRequest { after_seq }, token);
    admin_client(app)
        .watch_events(request)
        .await
        .unwrap()
        .into_inner()
}

/// Events of the stream (heartbeats skipped) until one satisfies `last`.
async fn until(
    stream: &mut Streaming<pb::AccountEvent>,
    last: impl Fn(&pb::AccountEvent) -> bool,
) -> Vec<pb::AccountEvent> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|e| !last(e)) {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
        let event = next
            .expect("an event in time")
            .unwrap()
            .expect("the stream goes on");
        if !event.kind.is_empty() {
            seen.push(event);
        }
    }
    seen
}

/// Every event ListEvents has for `user_id`, oldest first, read a page of 3 at a time.
async fn listed(app: &TestApp, token: &str, user_id: &str) -> Vec<pb::AccountEvent> {
    let (mut events, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = pb::ListEventsRequest {
            user_id: user_id.into(),
            page_size: 3,
            page_token,
            ..Default::default()
        };
        let page = admin_client(app)
            .list_events(with_bearer(request, token))
            .await
            .unwrap();
        let page = page.into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    events.reverse();
    events
}

fn kinds(events: &[pb::AccountEvent]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[tokio::test]
async fn each_event_kind_comes_from_its_action_in_the_same_order_on_the_feed_and_in_the_list() {
    let app = spawn_app_with(|a| a.max_sessions_per_user = Some(2)).await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    let mut feed = watch(&app, &token, 0).await;
    let create = pb::CreateUserRequest {
        username: "eve".into(),
        password: "eve's password".into(),
        scopes: vec!["read".into(), "write".into()],
    };
    let eve = admin
        .create_user(with_bearer(create, &token))
        .await
        .unwrap()
        .into_inner();
    let (here, elsewhere) = (&app.client, &client_from(&app, "127.0.0.2").await);
    let login = |device| login_on(here, "eve", "eve's password", device);
    let s1 = login("laptop").await.unwrap();
    let s2 = login("laptop").await.unwrap();
    assert!(login_on(here, "eve", "wrong", "").await.is_err());
    let moved = pb::RefreshRequest {
        refresh_token: s1.refresh_token.clone(),
    };
    let s1b = elsewhere.clone().refresh(moved).await.unwrap().into_inner();
    let s2b = app.refresh(&s2.refresh_token).await.unwrap();
    app.refresh(&s2b.refresh_token).await.unwrap();
    let reused = app.refresh(&s2.refresh_token).await.unwrap_err();
    assert_eq!(reason(&reused), "REFRESH_TOKEN_REUSED");
    app.revoke(&s1b.refresh_token).await.unwrap();
    login("phone").await.unwrap();
    login("phone").await.unwrap();
    let s6 = login("phone").await.unwrap();
    let scopes = pb::SetScopesRequest {
        user_id: eve.user_id.clone(),
        scopes: vec!["read".into()],
    };
    admin.set_scopes(with_bearer(scopes, &token)).await.unwrap();
    let logout = with_bearer(pb::LogoutAllRequest::default(), &s6.access_token);
    app.client.clone().logout_all(logout).await.unwrap();
    let password = pb::SetPasswordRequest {
        user_id: eve.user_id.clone(),
        password: "new".into(),
    };
    admin
        .set_password(with_bearer(password, &token))
        .await
        .unwrap();
    for disabled in [true, false] {
        let request = pb::SetDisabledRequest {
            user_id: eve.user_id.clone(),
            disabled,
        };
        admin
            .set_disabled(with_bearer(request, &token))
            .await
            .unwrap();
    }
    for _ in 0..10 {
        assert!(login_on(here, "eve", "wrong", "").await.is_err());
    }
    let locked = login_on(here, "eve", "new", "").await.unwrap_err();
    assert_eq!(reason(&locked), "TOO_MANY_ATTEMPTS");
    let delete = pb::DeleteUserRequest {
        user_id: eve.user_id.clone(),
    };
    admin
        .delete_user(with_bearer(delete, &token))
        .await
        .unwrap();

    let on_feed: Vec<_> = until(&mut feed, |e| e.kind == "user_deleted")
        .await
        .into_iter()
        .filter(|e| e.user_id == eve.user_id)
        .collect();
    let mut expected = vec![
        "user_created",
        "login",
        "login",
        "login_failed",
        "refresh_ip_changed",
        "reuse_detected",
        "session_revoked",
        "login",
        "login",
        "session_evicted",
        "login",
        "scopes_changed",
        "logout_all",
        "password_changed",
        "disabled",
        "enabled",
    ];
    expected.extend(["login_failed"; 10]);
    expected.extend(["locked_out", "user_deleted"]);
    assert_eq!(kinds(&on_feed), expected);
    let in_list = listed(&app, &token, &eve.user_id).await;
    assert_eq!(
        in_list, on_feed,
        "ListEvents holds the same events, in the same order"
    );
    assert!(on_feed.windows(2).all(|w| w[0].seq < w[1].seq));

    let of = |kind: &str| on_feed.iter().find(|e| e.kind == kind).unwrap();
    assert!(
        of("login").new_device,
        "the first login ever is from a new device"
    );
    assert!(
        !on_feed[2].new_device,
        "the second, from the same laptop, is not"
    );
    assert!(
        on_feed.iter().all(|e| e.kind == "login" || !e.new_device),
        "only a login can be from a new device"
    );
    let moved = of("refresh_ip_changed");
    assert_eq!(
        (moved.ip.as_str(), moved.session_id.as_str()),
        ("127.0.0.2", s1.session_id.as_str())
    );
    assert_eq!(moved.detail, "opened from 127.0.0.1");
    assert_eq!(of("reuse_detected").session_id, s2.session_id);
    assert_eq!(of("logout_all").detail, "2 sessions revoked");
    assert!(
        of("scopes_changed").detail.ends_with("scopes: read"),
        "{}",
        of("scopes_changed").detail
    );
    assert!(of("user_created").detail.starts_with("by admin "));
    assert_eq!(of("login").device, "laptop");
}

#[tokio::test]
async fn a_login_is_from_a_new_device_when_neither_its_device_nor_its_address_was_seen() {
    let app = spawn_app().await;
    app.add_user("alice", "correct horse", &[]).await;
    let mut answers = Vec::new();
    for (ip, device) in [
        ("127.0.0.1", "laptop"),
        ("127.0.0.1", "laptop"),
        ("127.0.0.1", "phone"),
        ("127.0.0.2", "tablet"),
        ("127.0.0.2", ""),
        ("127.0.0.3", "laptop"),
        ("127.0.0.4", ""),
    ] {
        let client = client_from(&app, ip).await;
        answers.push(
            login_on(&client, "alice", "correct horse", device)
                .await
                .unwrap(),
        );
    }
    let token = &answers.last().unwrap().access_token;
    let request = with_bearer(pb::ListActivityRequest::default(), token);
    let mut events = app
        .client
        .clone()
        .list_activity(request)
        .await
        .unwrap()
        .into_inner()
        .events;
    events.reverse();
    let new: Vec<bool> = events.iter().map(|e| e.new_device).collect();
    assert_eq!(kinds(&events)[0], "user_created");
    assert_eq!(new[1..], [true, false, false, true, false, false, true]);
}

#[tokio::test]
async fn list_activity_shows_users_their_own_events_newest_first_a_page_at_a_time() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    app.add_user("bob", "battery staple", &[]).await;
    app.login("bob", "battery staple").await;
    for _ in 0..4 {
        app.login("alice", "correct horse").await;
    }
    assert!(app.try_login("alice", "wrong").await.is_err());
    let (mut pages, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = pb::ListActivityRequest {
            page_size: 2,
            page_token,
        };
        let mut client = app.client.clone();
        let page = client.list_activity(with_bearer(request, &alice.access_token));
        let page = page.await.unwrap().into_inner();
        pages.push(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let events: Vec<_> = pages.iter().flatten().collect();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    let mine = [
        "login_failed",
        "login",
        "login",
        "login",
        "login",
        "login",
        "user_created",
    ];
    assert_eq!(kinds, mine, "bob's events are not alice's");
    assert!(
        events.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    assert_eq!(pages.len(), 4);
    let anonymous = app
        .client
        .clone()
        .list_activity(pb::ListActivityRequest::default())
        .await;
    assert_eq!(reason(&anonymous.unwrap_err()), "ACCESS_TOKEN_INVALID");
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> Result<u32, tonic::Status> {
    let request = pb::ChangePasswordRequest {
        current_password: current.into(),
        new_password: new.into(),
    };
    let answer = app
        .client
        .clone()
        .change_password(with_bearer(request, token))
        .await?;
    Ok(answer.into_inner().revoked_sessions)
}

#[tokio::test]
async fn change_password_keeps_the_callers_session_and_ends_the_others() {
    let app = spawn_app().await;
    let mine = app.alice().await;
    let other = app.login("alice", "correct horse").await;
    let third = app.login("alice", "correct horse").await;
    let revoked = change_password(&app, &mine.access_token, "correct horse", "new horse").await;
    assert_eq!(revoked.unwrap(), 2);
    assert!(
        app.introspect(&mine.access_token).await.active,
        "the caller's token stays good"
    );
    app.refresh(&mine.refresh_token)
        .await
        .expect("and so does its session");
    for ended in [&other, &third] {
        assert!(!app.introspect(&ended.access_token).await.active);
        assert_eq!(
            reason(&app.refresh(&ended.refresh_token).await.unwrap_err()),
            "REFRESH_TOKEN_INVALID"
        );
    }
    assert!(app.try_login("alice", "correct horse").await.is_err());
    app.login("alice", "new horse").await;
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_counts_toward_the_lock() {
    let app = spawn_app().await;
    let mine = app.alice().await;
    for _ in 0..10 {
        let refused = change_password(&app, &mine.access_token, "guess", "new horse").await;
        let refused = refused.unwrap_err();
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::Unauthenticated, "INVALID_CREDENTIALS")
        );
    }
    let locked = change_password(&app, &mine.access_token, "correct horse", "new horse").await;
    assert_eq!(reason(&locked.unwrap_err()), "TOO_MANY_ATTEMPTS");
    let login = app.try_login("alice", "correct horse").await.unwrap_err();
    assert_eq!(
        reason(&login),
        "TOO_MANY_ATTEMPTS",
        "the name is locked for logins too"
    );
    assert!(
        app.introspect(&mine.access_token).await.active,
        "nothing was revoked"
    );
}

/// An event written through the server while a stream is open reaches it at once, not at the
/// server's next poll of the store (250 ms after its last read): the write wakes the server's
/// reader. Ten in a row, each within 100 ms; without the wake-up the first came after 245 ms.
#[tokio::test]
async fn an_event_written_here_reaches_an_open_stream_at_once() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let bob = app.add_user("bob", "battery staple", &[]).await;
    let mut feed = watch(&app, &token, 0).await;
    // The backlog ends with bob's creation.
    until(&mut feed, |e| e.user_id == bob).await;
    for _ in 0..10 {
        app.login("bob", "battery staple").await;
        let returned = Instant::now();
        let seen = until(&mut feed, |e| e.kind == "login").await;
        assert_eq!(seen.len(), 1, "the next event is that login: {seen:?}");
        let after = returned.elapsed();
        assert!(
            after < Duration::from_millis(100),
            "arrived after {after:?}"
        );
    }
}

#[tokio::test]
async fn watch_events_sends_heartbeats_and_resumed_after_a_restart_misses_nothing() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut feed = watch(&app, &token, 0).await;
    let seen = until(&mut feed, |e| e.kind == "login").await;
    let last = seen.last().unwrap().seq;
    let beat = tokio::time::timeout(Duration::from_millis(1500), feed.message()).await;
    let beat = beat.expect("a heartbeat within a second").unwrap().unwrap();
    assert_eq!(
        (beat.kind.as_str(), beat.user_id.as_str(), beat.seq),
        ("", "", last)
    );
    drop(feed);

    // Events happen while nobody listens, and across a restart.
    app.add_user("bob", "battery staple", &[]).await;
    let app = app.restart().await;
    app.add_user("carol", "battery staple", &[]).await;
    app.login("carol", "battery staple").await;
    let token = app
        .login_with_scopes("root", "root password", &["latchkey.admin"])
        .await
        .access_token;
    let mut resumed = watch(&app, &token, last).await;
    let after = until(&mut resumed, |e| e.seq >= last + 4).await;
    assert_eq!(
        kinds(&after),
        ["user_created", "user_created", "login", "login"]
    );
    assert_eq!(after[0].seq, last + 1, "nothing is missed");
    assert!(after.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[tokio::test]
async fn watch_events_from_the_farthest_position_waits_and_past_it_is_refused() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let farthest = u64::try_from(i64::MAX).unwrap();
    let mut feed = watch(&app, &token, farthest).await;
    let beat = tokio::time::timeout(Duration::from_millis(1500), feed.message()).await;
    let beat = beat.expect("a heartbeat within a second").unwrap().unwrap();
    assert_eq!((beat.kind.as_str(), beat.seq), ("", farthest));
    let request = with_bearer(
        pb::WatchEventsRequest {
            after_seq: farthest + 1,
        },
        &token,
    );
    let refused = admin_client(&app).watch_events(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn failed_logins_of_unknown_names_leave_no_trace() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let before = listed(&app, &token, "").await;
    for i in 0..20 {
        let name = format!("nobody{i}");
        assert!(app.try_login(&name, "whatever").await.is_err());
    }
    assert_eq!(
        listed(&app, &token, "").await,
        before,
        "no row for a name that does not exist"
    );
}
