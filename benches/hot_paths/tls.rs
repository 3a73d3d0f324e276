//! The calls services make, over mTLS with a caller list: a second server with TLS on both ports,
//! a client CA, and `LATCHKEY_SERVICE_CALLERS` naming the benchmark's client by its SPIFFE ID.
//! One connection, as in the plaintext figures, so the TLS handshake is not in them: what they
//! show is the per-call cost of TLS records and of the caller check.

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use latchkey::{
    config::ConfigArgs,
    grpc::pb::{self, auth_service_client::AuthServiceClient},
    service::Admin,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{Figure, check_request, measure, password, username};

/// The figures of health Check, Introspect and ext_authz Check over mTLS.
pub async fn figures(n: usize) -> anyhow::Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let ca = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate()?;
    let server =
        CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&server_key, &ca)?;
    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::new())?;
    client.subject_alt_names = vec![SanType::URI("spiffe://bench/ns/a/sa/api".try_into()?)];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client.signed_by(&client_key, &ca)?;
    let file = |name: &str, pem: String| -> anyhow::Result<Option<String>> {
        let path = dir.path().join(name);
        std::fs::write(&path, pem)?;
        Ok(Some(path.display().to_string()))
    };
    let args = ConfigArgs {
        data_dir: Some(dir.path().join("data").display().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        http_addr: Some("127.0.0.1:0".into()),
        tls_cert: file("server.crt", server.pem())?,
        tls_key: file("server.key", server_key.serialize_pem())?,
        tls_client_ca: file("ca.pem", ca_pem.clone())?,
        service_callers: Some("spiffe://bench/ns/a/*".into()),
        ..Default::default()
    };
    let (addr, service) = super::server::start(args).await?;
    service
        .create_user(
            &username("bench"),
            password(),
            vec![],
            &Admin::command_line(),
        )
        .await?;

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(client.pem(), client_key.serialize_pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    let auth = AuthServiceClient::new(channel.clone());
    let health = HealthClient::new(channel.clone());
    let ext_authz = AuthorizationClient::new(channel);
    let login = pb::LoginRequest {
        username: "bench".into(),
        password: "correct horse battery staple".into(),
        ..Default::default()
    };
    let token = auth.clone().login(login).await?.into_inner().access_token;

    let health = measure("health Check, mTLS", n, |_| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest::default())
                .await
                .expect("health");
        }
    })
    .await;
    let introspect = measure("Introspect, mTLS + caller list", n, |_| {
        let (mut auth, token) = (auth.clone(), token.clone());
        async move {
            let request = pb::IntrospectRequest {
                token,
                token_type_hint: String::new(),
            };
            let response = auth.introspect(request).await.expect("introspect");
            assert!(response.into_inner().active);
        }
    })
    .await;
    let check = measure("ext_authz Check, mTLS + caller list", n, |_| {
        let (mut ext_authz, token) = (ext_authz.clone(), token.clone());
        async move {
            let response = ext_authz.check(check_request(&token)).await.expect("check");
            assert_eq!(response.into_inner().status.map(|s| s.code), Some(0));
        }
    })
    .await;
    Ok(vec![health, introspect, check])
}
