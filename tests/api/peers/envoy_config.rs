//! `deploy/envoy/envoy.yaml`, checked against the project: Envoy's own `--mode validate` accepts
//! it, and its targets are the ports the Compose services listen on (both files parsed by PyYAML).
//! Its mTLS variant `envoy-mtls.yaml` is the same file but for the TLS to latchkey, which Envoy
//! accepts too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::helpers::{
    certs::{Identity, ServerTls},
    compose::{ENVOY, ENVOY_MTLS, REPLICAS, aliases, deployment, environment, port_of},
    envoy::{EnvoyTls, mtls_config},
    peers::{load_yaml, run_peer},
    process::text,
};

#[tokio::test]
async fn envoy_targets_are_the_ports_the_services_listen_on() {
    let d = deployment().await;
    // Where each name resolves inside the compose network, and the ports listening there.
    let mut listening: BTreeMap<String, Vec<(String, BTreeSet<u16>)>> = BTreeMap::new();
    for (name, service) in d.services() {
        let env = environment(service);
        let mut ports = BTreeSet::new();
        for key in ["LATCHKEY_GRPC_ADDR", "LATCHKEY_HTTP_ADDR"] {
            if let Some(addr) = env.get(key) {
                ports.insert(port_of(addr));
            }
        }
        if let Some(port) = env.get("HTTP_PORT") {
            // The echo server's setting.
            ports.insert(port.parse().expect("HTTP_PORT"));
        }
        if name == "postgres" {
            ports.insert(5432);
        }
        for dns_name in aliases(service).into_iter().chain([name.clone()]) {
            listening
                .entry(dns_name)
                .or_default()
                .push((name.clone(), ports.clone()));
        }
    }

    let clusters = d.envoy["static_resources"]["clusters"]
        .as_array()
        .expect("envoy clusters");
    let mut targets = BTreeMap::new();
    for cluster in clusters {
        let cluster_name = cluster["name"].as_str().expect("cluster name");
        for endpoints in cluster["load_assignment"]["endpoints"]
            .as_array()
            .expect("endpoints")
        {
            for endpoint in endpoints["lb_endpoints"].as_array().expect("lb_endpoints") {
                let socket = &endpoint["endpoint"]["address"]["socket_address"];
                let host = socket["address"].as_str().expect("address");
                let port = u16::try_from(socket["port_value"].as_u64().expect("port_value"))
                    .expect("a port");
                let backends = listening.get(host).unwrap_or_else(|| {
                    panic!("Envoy cluster {cluster_name} targets {host}, which no service is named or aliased")
                });
                for (service, ports) in backends {
                    assert!(
                        ports.contains(&port),
                        "Envoy cluster {cluster_name} targets {host}:{port}, but {service} listens on {ports:?}"
                    );
                }
                targets.insert(format!("{host}:{port}"), backends.len());
            }
        }
    }
    assert_eq!(
        targets.get("latchkey:50051"),
        Some(&REPLICAS.len()),
        "Envoy's latchkey:50051 reaches every replica: {targets:?}"
    );
    assert_eq!(targets.get("upstream:8000"), Some(&1), "{targets:?}");

    // Envoy runs the mounted file, and its listener is the port it publishes.
    let envoy = d.service("envoy");
    let mount = envoy["volumes"]
        .as_array()
        .expect("envoy volumes")
        .iter()
        .filter_map(Value::as_str)
        .find(|v| v.starts_with(&format!("./{ENVOY}:")))
        .unwrap_or_else(|| panic!("envoy mounts ./{ENVOY}"));
    let inside = mount.split(':').nth(1).expect("mount target");
    let command: Vec<&str> = envoy["command"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        command.windows(2).any(|w| w == ["-c", inside]),
        "envoy's command {command:?} runs {inside}"
    );
    let listener_ports: BTreeSet<u64> = d.envoy["static_resources"]["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .filter_map(|l| l["address"]["socket_address"]["port_value"].as_u64())
        .collect();
    let published: Vec<u64> = envoy["ports"]
        .as_array()
        .expect("envoy publishes its listener")
        .iter()
        .map(|p| {
            let p = p.as_str().expect("short port syntax");
            p.rsplit(':')
                .next()
                .unwrap()
                .parse()
                .expect("container port")
        })
        .collect();
    for port in &published {
        assert!(
            listener_ports.contains(port),
            "envoy publishes {port}, on which no listener of {ENVOY} is: {listener_ports:?}"
        );
    }

    // The replica that publishes ports publishes the ones it listens on.
    for name in REPLICAS {
        let env = environment(d.service(name));
        let own: BTreeSet<u16> = ["LATCHKEY_GRPC_ADDR", "LATCHKEY_HTTP_ADDR"]
            .iter()
            .map(|k| port_of(&env[*k]))
            .collect();
        for p in d.service(name)["ports"].as_array().into_iter().flatten() {
            let p = p.as_str().expect("short port syntax");
            let container: u16 = p.rsplit(':').next().unwrap().parse().expect("port");
            assert!(
                own.contains(&container),
                "{name} publishes {p} but listens on {own:?}"
            );
        }
    }
}

#[tokio::test]
async fn envoy_accepts_the_deployed_config() {
    let output = run_peer("envoy", &["--mode", "validate", "-c", ENVOY], "").await;
    assert!(
        output.status.success(),
        "envoy --mode validate -c {ENVOY} failed: {}",
        text(&output)
    );
}

#[tokio::test]
async fn the_mtls_variant_is_envoy_yaml_with_tls_to_latchkey() {
    let mut docs = load_yaml(&[ENVOY, ENVOY_MTLS]).await.into_iter();
    let plain = docs.next().expect("envoy.yaml");
    let mut mtls = docs.next().expect("envoy-mtls.yaml");
    let clusters = mtls["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters");
    let latchkey = clusters
        .iter_mut()
        .find(|c| c["name"] == "latchkey")
        .expect("a latchkey cluster");
    let host = latchkey["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ["address"]["socket_address"]["address"]
        .clone();
    let tls = latchkey
        .as_object_mut()
        .and_then(|c| c.remove("transport_socket"))
        .unwrap_or_else(|| panic!("{ENVOY_MTLS}: the latchkey cluster has no transport_socket"));

    assert_eq!(mtls, plain, "{ENVOY_MTLS} differs from {ENVOY} elsewhere");
    let context = &tls["typed_config"];
    assert_eq!(
        context["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    // Envoy asks for the host it dials and accepts only a certificate for that name.
    assert_eq!(context["sni"], host);
    let common = &context["common_tls_context"];
    assert_eq!(common["alpn_protocols"], json!(["h2"]));
    let checked = &common["validation_context"];
    assert!(checked["trusted_ca"]["filename"].is_string(), "{checked}");
    assert_eq!(
        checked["match_typed_subject_alt_names"],
        json!([{"san_type": "DNS", "matcher": {"exact": host}}])
    );
    let presented = &common["tls_certificates"][0];
    assert!(presented["certificate_chain"]["filename"].is_string());
    assert!(presented["private_key"]["filename"].is_string());
}

#[tokio::test]
async fn envoy_accepts_the_mtls_variant() {
    // Envoy reads the certificate files when it validates: the variant's, replaced by real ones.
    let files = ServerTls::new();
    let client = files.client(Identity::Uri("spiffe://test/ns/edge/sa/envoy"), "envoy");
    let tls = EnvoyTls {
        ca: &files.ca_file,
        client: &client,
    };
    let config = files.dir.path().join("envoy-mtls.yaml");
    std::fs::write(&config, mtls_config(&tls)).expect("config written");
    let config = config.display().to_string();

    let output = run_peer("envoy", &["--mode", "validate", "-c", &config], "").await;

    assert!(
        output.status.success(),
        "envoy --mode validate -c {ENVOY_MTLS} (its files replaced) failed: {}",
        text(&output)
    );
}
