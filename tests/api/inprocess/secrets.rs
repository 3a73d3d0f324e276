//! Secrets at rest: a copy of the database and the master key together yield no refresh token older
//! than the grace window (the first token of a session is never sealed, a sealed successor is
//! erased once its window has passed), spent tokens are kept until their session has ended, the
//! files of the data directory are private, and the master key leaves no copy in memory.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{
    app::{TestApp, spawn_app},
    client::reason,
};

const SECOND: i64 = 1_000;
const DAY: i64 = 24 * 3_600 * SECOND;

/// The sealed token of every session, oldest session first, as the database holds them.
async fn sealed_tokens(app: &TestApp) -> Vec<Vec<u8>> {
    let sql = "SELECT sealed_token FROM sessions ORDER BY created_at, id";
    let url = &app.database_url;
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let sealed = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        sealed
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let sealed = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        sealed
    }
}

#[tokio::test]
async fn the_first_refresh_token_of_a_session_is_never_sealed() {
    let app = spawn_app().await;
    let first = app.alice().await;
    assert_eq!(sealed_tokens(&app).await, [Vec::<u8>::new()]);
    app.refresh(&first.refresh_token).await.unwrap();
    assert!(
        !sealed_tokens(&app).await[0].is_empty(),
        "a rotation's successor is, for retries"
    );
}

#[tokio::test]
async fn a_sealed_successor_is_erased_once_its_grace_window_has_passed() {
    let app = spawn_app().await;
    let first = app.alice().await;
    let second = app.refresh(&first.refresh_token).await.unwrap();
    app.clock.advance(5 * SECOND);
    app.service.housekeeping().await.unwrap();
    let retry = app.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(
        retry.refresh_token, second.refresh_token,
        "a retry still works"
    );
    app.clock.advance(5 * SECOND + 1);
    app.service.housekeeping().await.unwrap();
    assert_eq!(sealed_tokens(&app).await, [Vec::<u8>::new()]);
    let status = app.refresh(&first.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_REUSED");
}

#[tokio::test]
async fn a_spent_token_reused_on_day_twenty_revokes_its_session() {
    let app = spawn_app().await;
    let day_0 = app.alice().await;
    let mut live = app.refresh(&day_0.refresh_token).await.unwrap();
    for _ in 0..2 {
        app.clock.advance(10 * DAY);
        app.service.housekeeping().await.unwrap();
        live = app.refresh(&live.refresh_token).await.unwrap();
    }
    app.service.housekeeping().await.unwrap();
    let status = app.refresh(&day_0.refresh_token).await.unwrap_err();
    assert_eq!(reason(&status), "REFRESH_TOKEN_REUSED");
    let status = app.refresh(&live.refresh_token).await.unwrap_err();
    assert_eq!(
        reason(&status),
        "REFRESH_TOKEN_INVALID",
        "the session is revoked"
    );
    assert!(!app.introspect(&live.access_token).await.active);
}

#[tokio::test]
async fn the_files_of_the_data_directory_are_private_to_their_owner() {
    let app = spawn_app().await;
    app.alice().await;
    let files: Vec<_> = std::fs::read_dir(app.data_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("master.key")), "{files:?}");
    for file in files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn the_master_key_is_wiped_from_memory_when_dropped() {
    use std::mem::{ManuallyDrop, size_of};

    use base64::Engine;
    use latchkey::crypto::seal::MasterKey;

    let pattern = [0xA5_u8; 32];
    let encoded = base64::engine::general_purpose::STANDARD.encode(pattern);
    let mut key = ManuallyDrop::new(MasterKey::from_base64(&encoded).unwrap());
    let start = (&raw const key).cast::<u8>();
    // SAFETY: the bytes of `key` itself, which stays allocated (ManuallyDrop) until this function
    // returns; a `MasterKey` holds its 32 bytes inline, and any byte is a valid `u8`.
    let bytes = || unsafe { std::slice::from_raw_parts(start, size_of::<MasterKey>()) }.to_vec();
    let holds_key = |bytes: Vec<u8>| bytes.windows(32).any(|w| w == pattern);
    assert!(holds_key(bytes()), "the key lives inline");
    // SAFETY: dropped once; afterwards only its bytes are read, never the key.
    unsafe { ManuallyDrop::drop(&mut key) };
    assert!(!holds_key(bytes()), "the key is still in memory");
}
