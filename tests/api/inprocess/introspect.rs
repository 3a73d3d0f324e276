//! Introspect from memory: a token presented again is answered without a read of the store (the
//! revocation cache is recent enough, the username is remembered, the signature was checked
//! before), yet what a user relies on holds for a remembered token as for a new one: it expires on
//! time, a revocation ends it at once, and a tampered copy is not the same token.

use std::time::Instant;

use crate::helpers::{
    app::spawn_app,
    client::{http_get, tamper_signature},
};

/// `latchkey_revocation_store_reads_total` as `/metrics` shows it now.
async fn store_reads(app: &crate::helpers::app::TestApp) -> u64 {
    let (_, metrics) = http_get(app.http_addr, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("latchkey_revocation_store_reads_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the revocation reads counter")
}

#[tokio::test]
async fn introspecting_again_and_again_does_not_read_the_revocation_feed_per_call() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    assert!(app.introspect(&alice.access_token).await.active);
    let before = store_reads(&app).await;
    let started = Instant::now();
    const CALLS: u64 = 500;
    for _ in 0..CALLS {
        let info = app.introspect(&alice.access_token).await;
        assert!(info.active);
        assert_eq!(info.username, "alice");
    }
    let (took, reads) = (started.elapsed(), store_reads(&app).await - before);
    eprintln!("{CALLS} Introspects in {took:?}: {reads} reads of the revocation feed");
    // The background sync reads every 50 ms whatever the calls, and when it falls behind (a loaded
    // machine) an Introspect reads once the last read began over 100 ms ago: about one read per
    // 50 ms and one per 100 ms, counted generously here. Reading per call would be one read per
    // Introspect.
    let bound = took.as_millis() as u64 / 25 + 10;
    assert!(
        reads <= bound && reads < CALLS / 4,
        "{reads} reads for {CALLS} calls in {took:?} (at most {bound} expected)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_remembered_token_still_expires_is_still_revoked_and_a_tampered_copy_is_refused() {
    let app = spawn_app().await;
    let alice = app.alice().await;
    let other = app.login("alice", "correct horse").await;
    for token in [&alice.access_token, &other.access_token] {
        assert!(app.introspect(token).await.active);
        assert!(app.introspect(token).await.active, "remembered");
    }
    assert!(
        !app.introspect(&tamper_signature(&alice.access_token))
            .await
            .active
    );

    app.revoke(&other.access_token).await.unwrap();
    assert!(!app.introspect(&other.access_token).await.active);

    // 15 minutes and the leeway later, the remembered token has expired.
    app.clock.advance((15 * 60 + 5) * 1000);
    assert!(!app.introspect(&alice.access_token).await.active);
    app.stop().await;
}
