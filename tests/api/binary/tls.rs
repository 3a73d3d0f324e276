//! The `latchkey` binary on TLS: `latchkey healthcheck` asks a server over HTTPS, trusting exactly
//! the certificate it is configured with (under mTLS too: the HTTP port asks for no client
//! certificate), and `serve` refuses TLS settings that do not go together, naming the variable.

use std::{process::Output, time::Duration};

use crate::helpers::{
    certs::{Ca, ServerTls},
    process::{Server, latchkey_in, run, text},
};

/// `latchkey healthcheck` with the server's settings, aimed at its HTTP port, with `vars` on top.
async fn healthcheck(server: &Server, vars: &[(&str, &str)]) -> Output {
    let mut command = server.command();
    command
        .env("LATCHKEY_HTTP_ADDR", server.http_addr.to_string())
        .envs(vars.iter().copied())
        .arg("healthcheck");
    run(command, "", Duration::from_secs(30))
        .await
        .expect("latchkey starts")
}

#[tokio::test]
async fn healthcheck_asks_over_https_trusting_exactly_the_configured_certificate() {
    let files = ServerTls::new();
    let server = files.serve(true, &[]).await;

    let up = healthcheck(&server, &[]).await;
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(String::from_utf8_lossy(&up.stdout).trim(), "SERVING");

    // Another certificate in the healthcheck's settings: the server's no longer verifies.
    let unrelated = Ca::new("another CA")
        .localhost()
        .write(files.dir.path(), "unrelated");
    let sibling = files.ca.localhost().write(files.dir.path(), "sibling");
    for (what, pair) in [("another CA's", &unrelated), ("the same CA's", &sibling)] {
        let (cert, key) = (
            pair.cert.display().to_string(),
            pair.key.display().to_string(),
        );
        let vars = [
            ("LATCHKEY_TLS_CERT", cert.as_str()),
            ("LATCHKEY_TLS_KEY", &key),
        ];
        let down = healthcheck(&server, &vars).await;
        assert!(
            !down.status.success(),
            "trusting {what} other certificate, the healthcheck passed: {}",
            text(&down)
        );
        assert_ne!(String::from_utf8_lossy(&down.stdout).trim(), "SERVING");
    }
}

#[tokio::test]
async fn serve_refuses_tls_settings_that_do_not_go_together_and_names_the_variable() {
    let files = ServerTls::new();
    let (cert, key) = (files.server.cert.display(), files.server.key.display());
    let (cert, key, ca) = (
        cert.to_string(),
        key.to_string(),
        files.ca_file.display().to_string(),
    );
    let callers = "spiffe://test/ns/edge/*";
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        ("LATCHKEY_TLS_KEY", vec![("LATCHKEY_TLS_CERT", &cert)]),
        ("LATCHKEY_TLS_CERT", vec![("LATCHKEY_TLS_KEY", &key)]),
        (
            "LATCHKEY_TLS_CLIENT_CA",
            vec![("LATCHKEY_TLS_CLIENT_CA", &ca)],
        ),
        (
            "LATCHKEY_SERVICE_CALLERS",
            vec![
                ("LATCHKEY_TLS_CERT", &cert),
                ("LATCHKEY_TLS_KEY", &key),
                ("LATCHKEY_SERVICE_CALLERS", callers),
            ],
        ),
        (
            "LATCHKEY_ADMIN_CALLERS",
            vec![
                ("LATCHKEY_TLS_CERT", &cert),
                ("LATCHKEY_TLS_KEY", &key),
                ("LATCHKEY_ADMIN_CALLERS", callers),
            ],
        ),
    ];
    for (named, vars) in cases {
        let mut command = latchkey_in(&files.dir.path().join("data"));
        command.envs(vars.iter().copied()).arg("serve");
        // A refusal comes before anything is opened or bound; a server would run until killed.
        let output = run(command, "", Duration::from_secs(15)).await;
        let output = output.expect("latchkey starts");
        let said = text(&output);
        assert_eq!(output.status.code(), Some(1), "{vars:?}: {said}");
        assert!(said.contains(named), "{vars:?}: {named} not named: {said}");
        assert!(!said.contains("latchkey listening"), "{vars:?}: {said}");
    }
}
