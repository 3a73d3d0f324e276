//! What the flood found, pinned down as plain tests so that it stays fixed whatever the seed.

use latchkey::grpc::pb;

use crate::helpers::{app::spawn_app, client::with_bearer};

/// PostgreSQL refuses a NUL byte in text ("invalid byte sequence for encoding UTF8: 0x00"). An
/// admin naming such a user id got `INTERNAL`; no user has that id, so the contract's answer is OK
/// with 0, as for any id that does not exist.
#[tokio::test]
async fn an_admin_logging_out_a_user_id_with_a_nul_byte_gets_ok_with_zero() {
    let app = spawn_app().await;
    app.add_user("root", "battery staple", &["latchkey.admin"])
        .await;
    let token = app
        .login_with_scopes("root", "battery staple", &["latchkey.admin"])
        .await
        .access_token;
    for user_id in ["\0", "9f0c1c1e-0000-4000-8000-000000000000\0", "a\0b"] {
        let request = pb::LogoutAllRequest {
            user_id: user_id.into(),
        };
        let answer = app
            .client
            .clone()
            .logout_all(with_bearer(request, &token))
            .await;
        let revoked = answer.expect("OK, as for any unknown user id");
        assert_eq!(revoked.into_inner().revoked_sessions, 0, "{user_id:?}");
    }
}
