//! PostgreSQL over TLS, on a throwaway cluster that accepts only TLS connections, with certificates
//! the test makes: `sslmode=require` connects encrypted, `verify-full` with the right CA and host
//! name connects and serves, and a server whose certificate does not verify is refused, with an
//! error that names the problem and never shows the URL's password.

use std::{path::Path, process::Output, time::Duration};

use crate::helpers::{
    app::{spawn_app_with, use_store},
    certs::Ca,
    postgres::Cluster,
    process::{latchkey_in, run, text},
};

/// In every URL. The cluster trusts its clients, so it is never checked; it must never be shown.
const PASSWORD: &str = "pg-secret-never-shown";

/// `latchkey migrate` against `url`, which opens the store as `serve` does.
async fn migrate(dir: &Path, url: &str) -> Output {
    let mut command = latchkey_in(dir);
    command.env("LATCHKEY_DATABASE_URL", url).arg("migrate");
    let output = run(command, "", Duration::from_secs(30)).await;
    output.expect("latchkey starts")
}

/// `latchkey migrate` is refused, saying `why`, and without the password.
async fn refused(dir: &Path, url: &str, why: &str) {
    let output = migrate(dir, url).await;
    let said = text(&output);
    assert!(!output.status.success(), "{url}: accepted: {said}");
    assert!(said.contains(why), "{url}: expected {why:?} in: {said}");
    assert!(!said.contains(PASSWORD), "the password is shown: {said}");
    eprintln!("refused as it should be: {}", said.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_over_tls_verifies_the_server_and_refuses_one_that_does_not_verify() {
    let ca = Ca::new("latchkey test CA");
    let other_ca = Ca::new("another CA");
    let server = ca.server(&["localhost"]);
    let mut cluster = Cluster::init();
    cluster.require_tls(&server.cert, &server.key);
    cluster.start();
    let dir = tempfile::tempdir().unwrap();
    let right = ca.write(dir.path(), "ca.pem");
    let wrong = other_ca.write(dir.path(), "other-ca.pem");
    let url = |host: &str, params: &str| {
        let port = cluster.port();
        format!("postgres://postgres:{PASSWORD}@{host}:{port}/postgres?{params}")
    };
    let verify = |host: &str, mode: &str, ca: &Path| {
        url(
            host,
            &format!("sslmode={mode}&sslrootcert={}", ca.display()),
        )
    };

    // The cluster takes no plaintext, so whatever connects below is encrypted.
    refused(
        dir.path(),
        &url("127.0.0.1", "sslmode=disable"),
        "no encryption",
    )
    .await;
    let required = migrate(dir.path(), &url("127.0.0.1", "sslmode=require")).await;
    assert!(required.status.success(), "{}", text(&required));

    let verified = verify("localhost", "verify-full", &right);
    let app = spawn_app_with(|a| use_store(a, &verified, None)).await;
    app.add_user("alice", "correct horse", &[]).await;
    app.login("alice", "correct horse").await;
    app.stop().await;

    let wrong_ca = verify("localhost", "verify-full", &wrong);
    refused(
        dir.path(),
        &wrong_ca,
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
    let wrong_name = verify("127.0.0.1", "verify-full", &right);
    refused(dir.path(), &wrong_name, "invalid peer certificate").await;
    // verify-ca checks the chain, not the name.
    let chain_only = migrate(dir.path(), &verify("127.0.0.1", "verify-ca", &right)).await;
    assert!(chain_only.status.success(), "{}", text(&chain_only));
}
