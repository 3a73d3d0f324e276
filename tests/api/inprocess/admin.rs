//! AdminService over gRPC: a user's whole life managed by an admin token, every error reason,
//! who may call it (an admin token that asked for the scope, or a client certificate on
//! `LATCHKEY_ADMIN_CALLERS`; not a plain user, not an admin's everyday token), listings that
//! neither repeat nor skip a user while others are created, and signing keys.

use latchkey::grpc::pb::{self, admin_service_client::AdminServiceClient};
use tonic::{Code, Request, Status, transport::Channel};

use crate::helpers::{
    app::{TestApp, spawn_app, spawn_app_with},
    certs::{Identity, ServerTls},
    client::{lazy_channel, reason, tls_channel, with_bearer},
};

/// An admin user, `root`, and a token of it that asked for `latchkey.admin`.
pub async fn admin_token(app: &TestApp) -> String {
    app.add_user("root", "root password", &["latchkey.admin"])
        .await;
    let pair = app
        .login_with_scopes("root", "root password", &["latchkey.admin"])
        .await;
    pair.access_token
}

pub fn admin_client(app: &TestApp) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(lazy_channel(app.grpc_addr))
}

/// A status code and an `ErrorInfo` reason (empty: any).
type Expected = (Code, String);

fn code_and_reason<T>(answer: Result<T, Status>) -> (Code, String) {
    match answer {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), reason(&status)),
    }
}

async fn create(
    admin: &mut AdminServiceClient<Channel>,
    token: &str,
    name: &str,
    scopes: &[&str],
) -> Result<pb::User, Status> {
    let request = pb::CreateUserRequest {
        username: name.into(),
        password: "battery staple".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    Ok(admin
        .create_user(with_bearer(request, token))
        .await?
        .into_inner())
}

#[tokio::test]
async fn an_admin_token_manages_a_user_through_its_whole_life() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    let bob = create(&mut admin, &token, "bob", &["read", "write"])
        .await
        .unwrap();
    assert_eq!(
        (
            bob.username.as_str(),
            bob.scopes.clone(),
            bob.disabled,
            bob.live_sessions
        ),
        ("bob", vec!["read".to_owned(), "write".to_owned()], false, 0)
    );
    let session = app.login("bob", "battery staple").await;
    let by_name = pb::GetUserRequest {
        username: "bob".into(),
        ..Default::default()
    };
    let found = admin.get_user(with_bearer(by_name, &token)).await.unwrap();
    assert_eq!(
        (
            found.get_ref().user_id.as_str(),
            found.get_ref().live_sessions
        ),
        (bob.user_id.as_str(), 1)
    );

    // Scopes: the live session keeps its grant until it refreshes, then loses what was removed.
    let scopes = pb::SetScopesRequest {
        user_id: bob.user_id.clone(),
        scopes: vec!["read".into()],
    };
    let narrowed = admin.set_scopes(with_bearer(scopes, &token)).await.unwrap();
    assert_eq!(narrowed.get_ref().scopes, vec!["read".to_owned()]);
    assert_eq!(
        app.introspect(&session.access_token).await.scope,
        "read write"
    );
    let refreshed = app.refresh(&session.refresh_token).await.unwrap();
    assert_eq!(
        refreshed.scope, "read",
        "a refresh grants only what the user still holds"
    );
    assert_eq!(app.introspect(&refreshed.access_token).await.scope, "read");

    // A new password ends every session.
    let password = pb::SetPasswordRequest {
        user_id: bob.user_id.clone(),
        password: "new staple".into(),
    };
    let changed = admin
        .set_password(with_bearer(password, &token))
        .await
        .unwrap();
    assert_eq!(changed.get_ref().live_sessions, 0);
    assert!(!app.introspect(&refreshed.access_token).await.active);
    assert!(app.try_login("bob", "battery staple").await.is_err());
    let second = app.login("bob", "new staple").await;

    // Disabled: sessions end and logins are refused; enabled: logins work again.
    let disable = |disabled| pb::SetDisabledRequest {
        user_id: bob.user_id.clone(),
        disabled,
    };
    let disabled = admin
        .set_disabled(with_bearer(disable(true), &token))
        .await
        .unwrap();
    assert!(disabled.get_ref().disabled);
    assert!(!app.introspect(&second.access_token).await.active);
    let refused = app.try_login("bob", "new staple").await.unwrap_err();
    assert_eq!(reason(&refused), "ACCOUNT_DISABLED");
    admin
        .set_disabled(with_bearer(disable(false), &token))
        .await
        .unwrap();
    let third = app.login("bob", "new staple").await;

    // Deleted: its tokens die, and the user is gone.
    let delete = pb::DeleteUserRequest {
        user_id: bob.user_id.clone(),
    };
    let deleted = admin
        .delete_user(with_bearer(delete, &token))
        .await
        .unwrap();
    assert_eq!(deleted.get_ref().revoked_sessions, 1);
    assert!(!app.introspect(&third.access_token).await.active);
    assert_eq!(
        reason(&app.refresh(&third.refresh_token).await.unwrap_err()),
        "REFRESH_TOKEN_INVALID"
    );
    let by_id = pb::GetUserRequest {
        user_id: bob.user_id.clone(),
        ..Default::default()
    };
    let gone = admin.get_user(with_bearer(by_id, &token)).await;
    assert_eq!(
        code_and_reason(gone),
        (Code::NotFound, "USER_NOT_FOUND".into())
    );
    assert!(app.try_login("bob", "new staple").await.is_err());
}

#[tokio::test]
async fn each_admin_error_answers_with_its_status_and_reason() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    create(&mut admin, &token, "bob", &[]).await.unwrap();
    let taken = create(&mut admin, &token, "bob", &[]).await;
    assert_eq!(
        code_and_reason(taken),
        (Code::AlreadyExists, "USERNAME_TAKEN".into())
    );
    let bad_scope = create(&mut admin, &token, "carol", &["two words"]).await;
    assert_eq!(code_and_reason(bad_scope).0, Code::InvalidArgument);
    let nobody = "00000000-0000-0000-0000-000000000000".to_owned();
    let invalid = (Code::InvalidArgument, String::new());
    let not_found = (Code::NotFound, "USER_NOT_FOUND".to_owned());
    let cases: Vec<(&str, Result<(), Status>, Expected)> = vec![
        (
            "GetUser of nobody",
            admin
                .get_user(with_bearer(
                    pb::GetUserRequest {
                        user_id: nobody.clone(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(drop),
            not_found.clone(),
        ),
        (
            "GetUser naming no one",
            admin
                .get_user(with_bearer(pb::GetUserRequest::default(), &token))
                .await
                .map(drop),
            invalid.clone(),
        ),
        (
            "SetPassword of nobody",
            admin
                .set_password(with_bearer(
                    pb::SetPasswordRequest {
                        user_id: nobody.clone(),
                        password: "x y z".into(),
                    },
                    &token,
                ))
                .await
                .map(drop),
            not_found.clone(),
        ),
        (
            "SetScopes of nobody",
            admin
                .set_scopes(with_bearer(
                    pb::SetScopesRequest {
                        user_id: nobody.clone(),
                        scopes: vec![],
                    },
                    &token,
                ))
                .await
                .map(drop),
            not_found.clone(),
        ),
        (
            "SetDisabled of nobody",
            admin
                .set_disabled(with_bearer(
                    pb::SetDisabledRequest {
                        user_id: nobody.clone(),
                        disabled: true,
                    },
                    &token,
                ))
                .await
                .map(drop),
            not_found.clone(),
        ),
        (
            "DeleteUser of nobody",
            admin
                .delete_user(with_bearer(
                    pb::DeleteUserRequest {
                        user_id: nobody.clone(),
                    },
                    &token,
                ))
                .await
                .map(drop),
            not_found.clone(),
        ),
        (
            "DeleteUser naming no one",
            admin
                .delete_user(with_bearer(pb::DeleteUserRequest::default(), &token))
                .await
                .map(drop),
            invalid.clone(),
        ),
        (
            "ListUsers of too many",
            admin
                .list_users(with_bearer(
                    pb::ListUsersRequest {
                        page_size: 1001,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(drop),
            invalid.clone(),
        ),
        (
            "ListUsers from a forged page token",
            admin
                .list_users(with_bearer(
                    pb::ListUsersRequest {
                        page_token: "not a token".into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(drop),
            invalid.clone(),
        ),
        (
            "ListEvents of an unknown kind",
            admin
                .list_events(with_bearer(
                    pb::ListEventsRequest {
                        kinds: vec!["coffee_break".into()],
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(drop),
            invalid.clone(),
        ),
    ];
    for (call, answer, (code, expected)) in cases {
        let (got, why) = code_and_reason(answer);
        assert_eq!(got, code, "{call}");
        if !expected.is_empty() {
            assert_eq!(why, expected, "{call}");
        }
    }
}

/// A request as `token` (none: no bearer) would make it.
fn ask<T>(message: T, token: Option<&str>) -> Request<T> {
    match token {
        Some(token) => with_bearer(message, token),
        None => Request::new(message),
    }
}

/// A few calls of every shape, each as `token` (none: no bearer) would make it.
async fn calls(app: &TestApp, token: Option<&str>) -> Vec<(&'static str, (Code, String))> {
    let mut admin = admin_client(app);
    vec![
        (
            "ListUsers",
            code_and_reason(
                admin
                    .list_users(ask(pb::ListUsersRequest::default(), token))
                    .await,
            ),
        ),
        (
            "ListEvents",
            code_and_reason(
                admin
                    .list_events(ask(pb::ListEventsRequest::default(), token))
                    .await,
            ),
        ),
        (
            "ListSigningKeys",
            code_and_reason(
                admin
                    .list_signing_keys(ask(pb::ListSigningKeysRequest {}, token))
                    .await,
            ),
        ),
        (
            "WatchEvents",
            code_and_reason(
                admin
                    .watch_events(ask(pb::WatchEventsRequest::default(), token))
                    .await,
            ),
        ),
    ]
}

#[tokio::test]
async fn only_a_token_that_asked_for_the_admin_scope_may_administer() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let everyday = app.login("root", "root password").await;
    assert!(!everyday.scope.contains("latchkey.admin"));
    let alice = app.alice().await;
    let unauthenticated = (Code::Unauthenticated, "ACCESS_TOKEN_INVALID".to_owned());
    let not_allowed = (Code::PermissionDenied, "NOT_ALLOWED".to_owned());
    for (who, token, expected) in [
        ("no bearer", None, unauthenticated.clone()),
        (
            "a forged bearer",
            Some("eyJhbGciOiJub25lIn0.e30."),
            unauthenticated.clone(),
        ),
        (
            "a plain user",
            Some(alice.access_token.as_str()),
            not_allowed.clone(),
        ),
        (
            "an admin's everyday token",
            Some(everyday.access_token.as_str()),
            not_allowed.clone(),
        ),
        (
            "an admin token",
            Some(token.as_str()),
            (Code::Ok, String::new()),
        ),
    ] {
        for (call, answer) in calls(&app, token).await {
            assert_eq!(answer, expected, "{call} by {who}");
        }
    }
}

#[tokio::test]
async fn a_client_certificate_on_the_admin_list_may_administer_and_no_other() {
    let setup = ServerTls::new();
    let app = spawn_app_with(|a| {
        setup.args(a, true);
        a.admin_callers = Some("spiffe://test/ns/ops/*".into());
    })
    .await;
    let ca = std::fs::read_to_string(&setup.ca_file).unwrap();
    let as_caller = |identity| {
        let pair = setup.ca.client(identity);
        let ca = ca.clone();
        let addr = app.grpc_addr;
        async move {
            let channel = tls_channel(addr, &ca, Some(&pair)).await.expect("connects");
            AdminServiceClient::new(channel)
        }
    };
    let mut ops = as_caller(Identity::Uri("spiffe://test/ns/ops/sa/console")).await;
    let request = pb::CreateUserRequest {
        username: "dave".into(),
        password: "battery staple".into(),
        scopes: vec![],
    };
    let dave = ops
        .create_user(request)
        .await
        .expect("an admin caller creates a user");
    let listed = ops
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap();
    let created = &listed.get_ref().events[0];
    assert_eq!(
        (created.kind.as_str(), created.user_id.as_str()),
        ("user_created", dave.get_ref().user_id.as_str())
    );
    assert_eq!(created.detail, "by caller spiffe://test/ns/ops/sa/console");
    let mut other = as_caller(Identity::Uri("spiffe://test/ns/shop/sa/api")).await;
    let refused = other.list_users(pb::ListUsersRequest::default()).await;
    assert_eq!(
        code_and_reason(refused),
        (Code::Unauthenticated, "ACCESS_TOKEN_INVALID".into()),
        "a certificate off the list is no admin (and brought no bearer)"
    );
}

#[tokio::test]
async fn a_listing_neither_repeats_nor_skips_a_user_while_others_are_created() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    let mut before: Vec<String> = vec!["root".into()];
    for i in 0..24 {
        let name = format!("user{i:02}");
        create(&mut admin, &token, &name, &[]).await.unwrap();
        before.push(name);
    }
    before.sort();
    let (mut seen, mut page_token, mut pages) = (Vec::<String>::new(), String::new(), 0);
    loop {
        // Between pages, users appear before, inside and after what is left to list.
        for name in [
            format!("a{pages}"),
            format!("user{pages:02}x"),
            format!("zz{pages}"),
        ] {
            create(&mut admin, &token, &name, &[]).await.unwrap();
        }
        let request = pb::ListUsersRequest {
            page_size: 4,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page = admin
            .list_users(with_bearer(request, &token))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.users.iter().map(|u| u.username.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        assert_eq!(page.users.len(), 4, "every page but the last is full");
        page_token = page.next_page_token;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats: {seen:?}"
    );
    for name in &before {
        assert!(seen.contains(name), "{name} was skipped: {seen:?}");
    }
}

#[tokio::test]
async fn a_username_prefix_lists_only_the_names_that_start_with_it() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    for name in ["ann", "anna", "annette", "anbo", "ano", "bob", "Ann"] {
        create(&mut admin, &token, name, &[]).await.unwrap();
    }
    let request = pb::ListUsersRequest {
        username_prefix: "ann".into(),
        page_size: 2,
        ..Default::default()
    };
    let first = admin
        .list_users(with_bearer(request.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    let next = pb::ListUsersRequest {
        page_token: first.next_page_token.clone(),
        ..request
    };
    let second = admin
        .list_users(with_bearer(next, &token))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = first
        .users
        .iter()
        .chain(&second.users)
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(names, ["ann", "anna", "annette"]);
    assert!(second.next_page_token.is_empty());
}

#[tokio::test]
async fn signing_keys_rotate_and_list_over_the_admin_service() {
    let app = spawn_app().await;
    let token = admin_token(&app).await;
    let mut admin = admin_client(&app);
    let keys = |admin: &mut AdminServiceClient<Channel>| {
        let mut admin = admin.clone();
        let token = token.clone();
        async move {
            let listed =
                admin.list_signing_keys(with_bearer(pb::ListSigningKeysRequest {}, &token));
            listed.await.unwrap().into_inner().keys
        }
    };
    let old = keys(&mut admin).await;
    assert_eq!(old.len(), 1);
    assert_eq!(
        (old[0].alg.as_str(), old[0].state.as_str()),
        ("EdDSA", "active")
    );
    app.clock.advance(1000);
    let new = admin
        .rotate_signing_key(with_bearer(pb::RotateSigningKeyRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(new.kid, old[0].kid);
    let states: Vec<_> = keys(&mut admin)
        .await
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(
        states,
        [
            (old[0].kid.clone(), "published".to_owned()),
            (new.kid.clone(), "active".to_owned())
        ]
    );
    let signed = app.login("root", "root password").await;
    assert_eq!(
        crate::helpers::client::key_id(&signed.access_token),
        new.kid
    );
}
