//! Envoy (a peer, see [`super::peers`]) running the deployable `deploy/envoy/envoy.yaml`, or its
//! mTLS variant `deploy/envoy/envoy-mtls.yaml`, with latchkey as its ext_authz server, only its
//! addresses (and the variant's certificate paths) replaced.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::HeaderMap};
use tempfile::TempDir;

use super::{certs::PairFiles, client::send, peers::INSTALL_PEERS, process::Reaped};

const ENVOY_YAML: &str = include_str!("../../../deploy/envoy/envoy.yaml");
const ENVOY_MTLS_YAML: &str = include_str!("../../../deploy/envoy/envoy-mtls.yaml");

/// What Envoy reads to reach latchkey over mTLS, in place of the variant's `/etc/envoy/tls/` files:
/// the CA that signed latchkey's certificate, and Envoy's own client certificate.
pub struct EnvoyTls<'a> {
    pub ca: &'a Path,
    pub client: &'a PairFiles,
}

/// An upstream for Envoy: answers every request with the headers it received, as JSON (name →
/// values), and counts the requests that reached it.
pub async fn spawn_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
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

/// A running Envoy, killed when dropped (a failing test included).
pub struct Envoy {
    _child: Reaped,
    /// Its configuration and log, kept while it runs.
    _dir: TempDir,
    /// Where the `ingress` listener took requests.
    pub ingress: SocketAddr,
}

impl Envoy {
    /// Starts Envoy (deploy/envoy/envoy.yaml) in front of `upstream`, checking with latchkey at
    /// `latchkey` in plaintext, and waits (at most 30 s) until it is ready and its listener is bound.
    pub async fn start(latchkey: SocketAddr, upstream: SocketAddr) -> Envoy {
        let config = test_config(ENVOY_YAML, "envoy.yaml", latchkey, upstream);
        Self::run(config).await
    }

    /// The same with deploy/envoy/envoy-mtls.yaml: Envoy checks with latchkey over mTLS, with the
    /// files of `tls`. latchkey's certificate must be valid for the name `latchkey`, which Envoy
    /// asks for (SNI) and checks.
    pub async fn start_mtls(
        latchkey: SocketAddr,
        upstream: SocketAddr,
        tls: &EnvoyTls<'_>,
    ) -> Envoy {
        let config = test_config(&mtls_config(tls), "envoy-mtls.yaml", latchkey, upstream);
        Self::run(config).await
    }

    async fn run(config_text: String) -> Envoy {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, config_text).expect("config written");
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
        let mut child = Reaped(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = || std::fs::read_to_string(dir.path().join("envoy.log")).unwrap_or_default();
            if let Some(status) = child.try_wait().expect("envoy status") {
                panic!("envoy exited ({status}) before it was ready: {}", log());
            }
            assert!(
                Instant::now() < deadline,
                "envoy not ready in 30 s: {}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let admin = std::fs::read_to_string(&admin_file).ok();
            if let Some(admin) = admin.and_then(|a| a.trim().parse().ok())
                && let Some(ingress) = ingress_when_ready(admin).await
            {
                return Envoy {
                    _child: child,
                    _dir: dir,
                    ingress,
                };
            }
        }
    }
}

/// A deployment file (`file`, its text `yaml`) with the addresses replaced: latchkey's and the
/// upstream's by the test's, the listener's and the admin's by port 0.
fn test_config(yaml: &str, file: &str, latchkey: SocketAddr, upstream: SocketAddr) -> String {
    let latchkey_port = format!("port_value: {}\n", latchkey.port());
    let upstream_port = format!("port_value: {}\n", upstream.port());
    let replacements = [
        ("address: latchkey\n", "address: 127.0.0.1\n"),
        ("port_value: 50051\n", latchkey_port.as_str()),
        ("address: upstream\n", "address: 127.0.0.1\n"),
        ("port_value: 8000\n", upstream_port.as_str()),
        ("address: 0.0.0.0\n", "address: 127.0.0.1\n"),
        // Port 0 for the listener and the admin: Envoy tells which ones it bound.
        ("port_value: 10000\n", "port_value: 0\n"),
        ("port_value: 9901\n", "port_value: 0\n"),
    ];
    replace_each_once(yaml, file, &replacements)
}

/// deploy/envoy/envoy-mtls.yaml with its `/etc/envoy/tls/` files replaced by `tls`'s (its
/// addresses kept).
pub fn mtls_config(tls: &EnvoyTls<'_>) -> String {
    let [ca, cert, key] = [tls.ca, &tls.client.cert, &tls.client.key]
        .map(|path| format!("filename: {}\n", path.display()));
    let replacements = [
        ("filename: /etc/envoy/tls/ca.crt\n", ca.as_str()),
        ("filename: /etc/envoy/tls/envoy.crt\n", cert.as_str()),
        ("filename: /etc/envoy/tls/envoy.key\n", key.as_str()),
    ];
    replace_each_once(ENVOY_MTLS_YAML, "envoy-mtls.yaml", &replacements)
}

/// `yaml` with each named value replaced; every one must occur exactly once, so that a change to
/// the file cannot silently leave the test on the deployment's addresses or files.
fn replace_each_once(yaml: &str, file: &str, replacements: &[(&str, &str)]) -> String {
    let mut config = yaml.to_owned();
    for (from, to) in replacements {
        let found = config.matches(from).count();
        assert_eq!(found, 1, "deploy/envoy/{file} has {found} × {from:?}");
        config = config.replace(from, to);
    }
    config
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
