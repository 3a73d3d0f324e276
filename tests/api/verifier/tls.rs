//! The verifier library over mTLS, as a service in a mesh runs it: its client certificate on
//! `LATCHKEY_SERVICE_CALLERS`, it loads the keys and follows the revocation feed over TLS and
//! refuses a revoked token within the second; a verifier whose identity is not on the list never
//! becomes ready and accepts nothing (the feed answers it `CALLER_NOT_ALLOWED`).

use std::time::{Duration, Instant};

use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use latchkey_verify::{Certificate, ClientTlsConfig, Identity as TlsIdentity, Verifier};

use crate::helpers::{
    app::spawn_app_with,
    certs::{Identity, Pair, ServerTls},
    client::tls_channel,
};

async fn verifier(app_addr: std::net::SocketAddr, tls: &ServerTls, client: &Pair) -> Verifier {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca.pem))
        .identity(TlsIdentity::from_pem(&client.cert, &client.key))
        .domain_name("localhost");
    Verifier::builder(format!("https://{app_addr}"))
        .tls(config)
        .connect()
        .await
        .expect("the verifier starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_verifier_follows_latchkey_over_mtls_and_an_unlisted_one_accepts_nothing() {
    let tls = ServerTls::new();
    let app = spawn_app_with(|a| {
        tls.args(a, true);
        a.service_callers = Some("spiffe://test/ns/shop/*".into());
    })
    .await;
    app.add_user("alice", "correct horse", &[]).await;
    let mine = tls
        .ca
        .client(Identity::Uri("spiffe://test/ns/shop/sa/orders"));
    let channel = tls_channel(app.grpc_addr, &tls.ca.pem, Some(&mine))
        .await
        .unwrap();
    let mut client = AuthServiceClient::new(channel);
    let login = pb::LoginRequest {
        username: "alice".into(),
        password: "correct horse".into(),
        ..Default::default()
    };
    let tokens = client.login(login).await.unwrap().into_inner();

    let listed = verifier(app.grpc_addr, &tls, &mine).await;
    tokio::time::timeout(Duration::from_secs(10), listed.ready())
        .await
        .expect("the listed verifier is ready");
    let claims = listed.verify(&tokens.access_token).expect("accepted");
    assert_eq!(claims.sid, tokens.session_id);

    let outsider = tls.ca.client(Identity::Uri("spiffe://test/ns/other/sa/x"));
    let unlisted = verifier(app.grpc_addr, &tls, &outsider).await;
    let ready = tokio::time::timeout(Duration::from_secs(3), unlisted.ready()).await;
    assert!(ready.is_err(), "a verifier refused the feed became ready");
    assert!(unlisted.verify(&tokens.access_token).is_err());

    let revoke = pb::RevokeRequest {
        token: tokens.access_token.clone(),
        ..Default::default()
    };
    client.revoke(revoke).await.unwrap();
    let revoked = Instant::now();
    while listed.verify(&tokens.access_token).is_ok() {
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "a revoked token was still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("refused {:?} after Revoke returned", revoked.elapsed());
    app.stop().await;
}
