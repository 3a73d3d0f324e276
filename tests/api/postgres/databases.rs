//! The suite's own databases on the shared server: each test process drops, on its first
//! database, those that processes of this machine now gone left behind, and no others.

use std::process::Command;

use sqlx::Connection;

use crate::helpers::postgres::{admin_url, sweep, this_machines_databases};

#[tokio::test]
async fn databases_left_by_ended_processes_are_dropped_and_those_of_live_ones_kept() {
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    let mut ended = Command::new("true").spawn().unwrap();
    let ended_pid = ended.id();
    ended.wait().unwrap();
    let machine = this_machines_databases();
    let left = format!("{machine}{ended_pid}_sweep_left");
    let live = format!("{machine}{}_sweep_live", std::process::id());
    for name in [&left, &live] {
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    sweep(&mut conn, &machine).await;

    let found: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname = $1 OR datname = $2")
            .bind(&left)
            .bind(&live)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        found,
        std::slice::from_ref(&live),
        "the ended process's database dropped, the live one's kept"
    );
    let drop = format!("DROP DATABASE {live} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .unwrap();
}
