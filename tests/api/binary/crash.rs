//! Crash safety on SQLite: `kill -9` a server while 16 clients refresh through it, restart it on
//! the same data directory, and no session is lost or left with two live tokens (the scenario is
//! [`crate::helpers::crash`]; the PostgreSQL fleet's is in `postgres::crash`).

use crate::helpers::{
    crash::{PASSWORD, USER, kill_mid_stream_then_retry},
    process::Server,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_killed_mid_refresh_and_restarted_loses_no_session_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    // The store and the generated master key, in the data directory both processes use.
    let first = Server::start(dir.path(), &[]).await;
    first.ready().await;
    first.add_user(USER, PASSWORD).await;
    kill_mid_stream_then_retry(first, async || Server::start(dir.path(), &[]).await).await;
}
