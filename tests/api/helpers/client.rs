//! Calls as clients make them: the AuthService RPCs a test needs (on a [`TestApp`] or on any
//! server's client), bearer tokens, error reasons, gRPC health, and HTTP/1.1, plain or over TLS.

use std::{
    io,
    net::SocketAddr,
    time::{Duration, Instant},
};

use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{
    Request, Status, Streaming,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{app::TestApp, certs::Pair};

/// A channel over TLS to `addr`, trusting `ca_pem` for `localhost`, presenting `client` (a client
/// certificate) if given.
pub async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Pair>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(pair) = client {
        tls = tls.identity(Identity::from_pem(&pair.cert, &pair.key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("a valid URI")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// A client of the server at `addr` that connects on first use.
pub fn lazy_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_lazy()
}

pub async fn refresh_with(
    client: &AuthServiceClient<Channel>,
    refresh_token: &str,
) -> Result<pb::TokenResponse, Status> {
    let request = pb::RefreshRequest {
        refresh_token: refresh_token.into(),
    };
    Ok(client.clone().refresh(request).await?.into_inner())
}

pub async fn introspect_with(
    client: &AuthServiceClient<Channel>,
    token: &str,
) -> pb::IntrospectResponse {
    let request = pb::IntrospectRequest {
        token: token.into(),
        token_type_hint: String::new(),
    };
    let response = client.clone().introspect(request).await;
    response.expect("introspect answers").into_inner()
}

impl TestApp {
    pub async fn login(&self, name: &str, password: &str) -> pb::TokenResponse {
        self.try_login(name, password)
            .await
            .expect("login succeeds")
    }

    pub async fn try_login(&self, name: &str, password: &str) -> Result<pb::TokenResponse, Status> {
        let request = pb::LoginRequest {
            username: name.into(),
            password: password.into(),
            device: "test-device".into(),
            ..Default::default()
        };
        let response = self.client.clone().login(request).await;
        response.map(tonic::Response::into_inner)
    }

    /// A login asking for `scopes` by name.
    pub async fn login_with_scopes(
        &self,
        name: &str,
        password: &str,
        scopes: &[&str],
    ) -> pb::TokenResponse {
        let request = pb::LoginRequest {
            username: name.into(),
            password: password.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let response = self.client.clone().login(request).await;
        response.expect("login succeeds").into_inner()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::TokenResponse, Status> {
        refresh_with(&self.client, refresh_token).await
    }

    pub async fn introspect(&self, token: &str) -> pb::IntrospectResponse {
        introspect_with(&self.client, token).await
    }

    pub async fn revoke(&self, token: &str) -> Result<(), Status> {
        let request = pb::RevokeRequest {
            token: token.into(),
            token_type_hint: String::new(),
        };
        self.client.clone().revoke(request).await.map(|_| ())
    }

    /// The public signing keys, as GetJwks serves them.
    pub async fn jwks(&self) -> String {
        let response = self.client.clone().get_jwks(pb::GetJwksRequest {}).await;
        response.expect("GetJwks answers").into_inner().jwks_json
    }
}

/// A WatchRevocations stream of the server behind `client`, from `after_seq` on.
pub async fn watch_revocations(
    client: &AuthServiceClient<Channel>,
    after_seq: u64,
) -> Result<Streaming<pb::RevocationEvent>, Status> {
    let request = pb::WatchRevocationsRequest { after_seq };
    let response = client.clone().watch_revocations(request).await;
    response.map(tonic::Response::into_inner)
}

/// The next revocation event of a WatchRevocations stream, past any heartbeats (events without a
/// `target`); `None` when the stream ends.
pub async fn next_revocation(
    stream: &mut Streaming<pb::RevocationEvent>,
) -> Option<Result<pb::RevocationEvent, Status>> {
    loop {
        match stream.message().await {
            Ok(Some(event)) if event.target.is_none() => continue,
            Ok(Some(event)) => return Some(Ok(event)),
            Ok(None) => return None,
            Err(status) => return Some(Err(status)),
        }
    }
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// The `ErrorInfo` reason of a failed call.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_else(|| format!("<no ErrorInfo: {status:?}>"))
}

/// The id of the key that signed an access token (its `kid`).
pub fn key_id(token: &str) -> String {
    latchkey::crypto::jwt::key_id(token).expect("a JWT with a kid")
}

/// `token` with one character of its signature changed, well inside it, where every bit counts.
pub fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT has three parts");
    let mut signature = signature.to_owned().into_bytes();
    signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
    let signature = String::from_utf8(signature).expect("base64url");
    format!("{signed}.{signature}")
}

/// `authorization` values that must never pass for an access token of this server, with what
/// each is: no bearer at all, garbage, `token` with a bad signature or re-signed as `alg: none`,
/// and a genuine token of another server (another key).
pub async fn forged_authorizations(token: &str) -> Vec<(&'static str, String)> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let unsigned = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let foreign = super::app::spawn_app().await.alice().await.access_token;
    vec![
        (
            "not a bearer token",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("alice:pw")),
        ),
        ("an empty bearer", "Bearer ".to_owned()),
        ("garbage", "Bearer not-a-jwt".to_owned()),
        (
            "bad signature",
            format!("Bearer {}", tamper_signature(token)),
        ),
        ("alg none", format!("Bearer {unsigned}.{payload}.")),
        ("another server's key", format!("Bearer {foreign}")),
    ]
}

/// Polls gRPC health ("" and AuthService) at `addr` until both say `want`; how long that took, or
/// what was seen instead.
pub async fn wait_health(
    addr: SocketAddr,
    want: ServingStatus,
    within: Duration,
) -> Result<Duration, String> {
    let mut health = HealthClient::new(lazy_channel(addr));
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < within {
        seen.clear();
        for service in ["", "latchkey.v1.AuthService"] {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let answer = tokio::time::timeout(Duration::from_secs(1), health.check(request)).await;
            seen.push(match answer {
                Ok(Ok(response)) => Ok(response.into_inner().status()),
                Ok(Err(status)) => Err(status.code()),
                Err(_) => Err(tonic::Code::DeadlineExceeded),
            });
        }
        if seen.iter().all(|s| *s == Ok(want)) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("health not {want:?} within {within:?}: {seen:?}"))
}

/// An HTTP/1.1 response: status, headers (names in lower case) and body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET with extra headers (at most 10 s).
pub async fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        exchange(stream, addr, path, headers).await
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await?
}

/// An HTTPS GET (at most 10 s), trusting only `ca_pem` and checking the name `localhost`.
pub async fn https_get(addr: SocketAddr, path: &str, ca_pem: &str) -> io::Result<HttpResponse> {
    use tokio_rustls::{
        TlsConnector,
        rustls::{
            ClientConfig, RootCertStore,
            pki_types::{CertificateDer, ServerName, pem::PemObject},
        },
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM CA")).expect("a usable CA");
    }
    let mut config = ClientConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("a name");
        let tls = TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await?;
        exchange(tls, addr, path, &[]).await
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await?
}

/// One GET on `stream`, read to its end.
async fn exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in [("connection", "close")].iter().chain(headers) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status: status.unwrap_or(0),
        headers,
        body: body.to_owned(),
    })
}

/// A plain HTTP/1.1 GET: status code and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = send(addr, path, &[]).await.expect("HTTP port answers");
    (response.status, response.body)
}
