//! Crash safety across replicas: `kill -9` one of two processes on one PostgreSQL database while 16
//! clients refresh through it; each client retries its last token on the other replica, and no
//! session is lost or left with two live tokens (the scenario is [`crate::helpers::crash`]).

use crate::helpers::{
    app::master_key,
    crash::{PASSWORD, USER, kill_mid_stream_then_retry},
    postgres::fresh_postgres_database,
    process::Server,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_refresh_loses_no_session_on_postgres() {
    let url = fresh_postgres_database().await;
    let key = master_key();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let vars = [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_MASTER_KEY", key.as_str()),
    ];
    let a = Server::start(dirs[0].path(), &vars).await;
    let b = Server::start(dirs[1].path(), &vars).await;
    for replica in [&a, &b] {
        replica.ready().await;
    }
    a.add_user(USER, PASSWORD).await;
    kill_mid_stream_then_retry(a, async move || b).await;
}
