//! Envoy (a peer, see [`super::peers`]) running the deployable `deploy/envoy/envoy.yaml` with
//! latchkey as its ext_authz server, only its addresses replaced.

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::{client::send, peers::INSTALL_PEERS, process::Reaped};

const ENVOY_YAML: &str = include_str!("../../../deploy/envoy/envoy.yaml");

/// A running Envoy, killed when dropped (a failing test included).
pub struct Envoy {
    _child: Reaped,
    /// Its configuration and log, kept while it runs.
    _dir: TempDir,
    /// Where the `ingress` listener took requests.
    pub ingress: SocketAddr,
}

impl Envoy {
    /// Starts Envoy in front of `upstream`, checking with latchkey at `latchkey`, and waits (at
    /// most 30 s) until it is ready and its listener is bound.
    pub async fn start(latchkey: SocketAddr, upstream: SocketAddr) -> Envoy {
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
