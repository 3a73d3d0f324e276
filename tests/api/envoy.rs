//! Envoy 1.40 with latchkey as its ext_authz server, in front of an upstream that echoes the
//! headers it received. Envoy runs the deployable `deploy/envoy/envoy.yaml` itself, with only its
//! addresses replaced.

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::HeaderMap};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    helpers::*,
    peers::{INSTALL_PEERS, tamper_signature},
};

const ENVOY_YAML: &str = include_str!("../../deploy/envoy/envoy.yaml");
const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

/// The upstream: answers every request with the headers it received, as JSON (name → values),
/// and counts the requests that reached it.
async fn spawn_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    async fn echo(State(hits): State<Arc<AtomicUsize>>, headers: HeaderMap) -> String {
        hits.fetch_add(1, Ordering::SeqCst);
        let mut seen = BTreeMap::<String, Vec<String>>::new();
        for (name, value) in &headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.entry(name.to_string()).or_default().push(value);
        }
        serde_json::to_string(&seen).expect("headers as JSON")
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("upstream binds");
    let addr = listener.local_addr().expect("upstream address");
    let router = Router::new().fallback(echo).with_state(hits.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, hits)
}

/// latchkey, and Envoy with latchkey as its ext_authz server in front of the echoing upstream.
struct Gateway {
    app: TestApp,
    envoy: Envoy,
    /// Requests that reached the upstream.
    hits: Arc<AtomicUsize>,
}

/// A running Envoy, killed when dropped (a failing test included).
struct Envoy {
    child: Child,
    dir: TempDir,
    ingress: Option<SocketAddr>,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Envoy {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }
}

async fn gateway() -> Gateway {
    let app = spawn_app().await;
    let (upstream, hits) = spawn_upstream().await;
    let envoy = spawn_envoy(app.grpc_addr, upstream).await;
    Gateway { app, envoy, hits }
}

/// deploy/envoy/envoy.yaml with each named value replaced; every one must occur exactly once, so
/// that a change to the file cannot silently leave the test on the deployment's addresses.
fn test_config(latchkey: SocketAddr, upstream: SocketAddr) -> String {
    let latchkey_port = format!("port_value: {}\n", latchkey.port());
    let upstream_port = format!("port_value: {}\n", upstream.port());
    let replacements = [
        ("address: latchkey\n", "address: 127.0.0.1\n"),
        ("port_value: 50051\n", &latchkey_port),
        ("address: upstream\n", "address: 127.0.0.1\n"),
        ("port_value: 8000\n", &upstream_port),
        ("address: 0.0.0.0\n", "address: 127.0.0.1\n"),
        // Port 0 for the listener and the admin: Envoy tells which ones it bound.
        ("port_value: 10000\n", "port_value: 0\n"),
        ("port_value: 9901\n", "port_value: 0\n"),
    ];
    let mut config = ENVOY_YAML.to_owned();
    for (from, to) in replacements {
        let found = config.matches(from).count();
        assert_eq!(found, 1, "deploy/envoy/envoy.yaml has {found} × {from:?}");
        config = config.replace(from, to);
    }
    config
}

/// Starts Envoy and waits (at most 30 s) until it is ready and its listener is bound.
async fn spawn_envoy(latchkey: SocketAddr, upstream: SocketAddr) -> Envoy {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, test_config(latchkey, upstream)).expect("config written");
    let admin_file = dir.path().join("admin-address");
    let log = std::fs::File::create(dir.path().join("envoy.log")).expect("log file");
    let child = Command::new("envoy")
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(&admin_file)
        .args(["--disable-hot-restart", "--concurrency", "1"])
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `envoy` ({e}): {INSTALL_PEERS}"));
    let mut envoy = Envoy {
        child,
        dir,
        ingress: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while envoy.ingress.is_none() {
        if let Some(status) = envoy.child.try_wait().expect("envoy status") {
            panic!(
                "envoy exited ({status}) before it was ready: {}",
                envoy.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "envoy not ready in 30 s: {}",
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let admin = std::fs::read_to_string(&admin_file).ok();
        if let Some(admin) = admin.and_then(|a| a.trim().parse().ok()) {
            envoy.ingress = ingress_when_ready(admin).await;
        }
    }
    envoy
}

/// Once the admin says ready: the address the `ingress` listener bound (it was given port 0).
async fn ingress_when_ready(admin: SocketAddr) -> Option<SocketAddr> {
    send(admin, "/ready", &[])
        .await
        .ok()
        .filter(|r| r.status == 200)?;
    // Plain text, one line per listener: `ingress::127.0.0.1:PORT`.
    let listeners = send(admin, "/listeners", &[]).await.ok()?.body;
    let (_, ingress) = listeners.split_once("ingress::")?;
    ingress.split_whitespace().next()?.parse().ok()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers the echoing upstream saw.
    fn upstream_saw(&self) -> BTreeMap<String, Vec<String>> {
        assert_eq!(
            self.status, 200,
            "request did not reach the upstream: {}",
            self.body
        );
        serde_json::from_str(&self.body).expect("the upstream's echo")
    }
}

/// A plain HTTP/1.1 GET with extra headers (at most 10 s).
async fn send(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in [("connection", "close")].iter().chain(headers) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange).await??;
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
    Ok(Response {
        status: status.unwrap_or(0),
        headers,
        body: body.to_owned(),
    })
}

async fn get(gateway: &Gateway, headers: &[(&str, &str)]) -> Response {
    let ingress = gateway.envoy.ingress.expect("envoy is ready");
    send(ingress, "/orders/42", headers)
        .await
        .expect("envoy answers")
}

fn assert_refused(response: &Response, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body);
    assert_eq!(
        response.header("www-authenticate"),
        Some(INVALID_TOKEN),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_forwards_a_valid_token_with_identity_headers() {
    let gw = gateway().await;
    let user_id = gw.app.add_user("alice", "pw", &["read", "write"]).await;
    let tokens = gw.app.login("alice", "pw").await;

    let bearer = format!("Bearer {}", tokens.access_token);
    let seen = get(&gw, &[("authorization", &bearer)]).await.upstream_saw();

    assert_eq!(seen["x-latchkey-sub"], [user_id]);
    assert_eq!(seen["x-latchkey-session"], [tokens.session_id]);
    assert_eq!(seen["x-latchkey-scope"], ["read write"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_answers_401_to_missing_and_forged_tokens() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let unsigned = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let other_server = spawn_app().await;
    let foreign = other_server.alice().await.access_token;

    let forgeries = [
        (
            "not a bearer token",
            format!("Basic {}", URL_SAFE_NO_PAD.encode("alice:pw")),
        ),
        ("garbage", "Bearer not-a-jwt".to_owned()),
        (
            "bad signature",
            format!("Bearer {}", tamper_signature(&token)),
        ),
        ("alg none", format!("Bearer {unsigned}.{payload}.")),
        ("another server's key", format!("Bearer {foreign}")),
    ];
    assert_refused(&get(&gw, &[]).await, "no authorization header");
    for (what, authorization) in &forgeries {
        assert_refused(&get(&gw, &[("authorization", authorization)]).await, what);
    }
    assert_eq!(
        gw.hits.load(Ordering::SeqCst),
        0,
        "a refused request went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_answers_401_to_a_revoked_token() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let bearer = format!("Bearer {token}");
    assert_eq!(get(&gw, &[("authorization", &bearer)]).await.status, 200);

    gw.app.revoke(&token).await.expect("revoke answers");

    assert_refused(&get(&gw, &[("authorization", &bearer)]).await, "revoked");
    assert_eq!(
        gw.hits.load(Ordering::SeqCst),
        1,
        "a revoked token went upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_never_lets_a_client_spoof_latchkey_headers() {
    let gw = gateway().await;
    let user_id = gw.app.add_user("alice", "pw", &["read"]).await;
    let tokens = gw.app.login("alice", "pw").await;
    let bearer = format!("Bearer {}", tokens.access_token);

    let spoofed = [
        ("authorization", bearer.as_str()),
        ("x-latchkey-sub", "admin"),
        ("X-Latchkey-Session", "someone-elses-session"),
        ("x-latchkey-scope", "latchkey.admin"),
        ("x-latchkey-extra", "1"),
    ];
    let seen = get(&gw, &spoofed).await.upstream_saw();

    assert_eq!(seen["x-latchkey-sub"], [user_id]);
    assert_eq!(seen["x-latchkey-session"], [tokens.session_id]);
    assert_eq!(seen["x-latchkey-scope"], ["read"]);
    assert!(!seen.contains_key("x-latchkey-extra"), "{seen:?}");

    // Without a token, spoofed headers get nowhere at all.
    assert_refused(&get(&gw, &spoofed[1..]).await, "spoofed, no token");
    assert_eq!(gw.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn envoy_fails_closed_when_latchkey_is_down() {
    let gw = gateway().await;
    let token = gw.app.alice().await.access_token;
    let bearer = format!("Bearer {token}");
    let Gateway { app, envoy, hits } = gw;

    app.stop().await;
    let response = send(
        envoy.ingress.expect("ready"),
        "/",
        &[("authorization", &bearer)],
    )
    .await;

    assert_eq!(response.expect("envoy answers").status, 403);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request went upstream unchecked"
    );
}
