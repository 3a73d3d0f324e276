//! `docker-compose.yml` and `deploy/envoy/envoy.yaml` as the tests read them: parsed once by the
//! peers' PyYAML (as Compose reads YAML, merge keys included), with the accessors the deployment
//! checks share. `deploy/envoy/envoy-mtls.yaml` is checked against `envoy.yaml`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::peers::load_yaml;

pub const COMPOSE: &str = "docker-compose.yml";
pub const ENVOY: &str = "deploy/envoy/envoy.yaml";
/// The mTLS variant of [`ENVOY`]: the same but for the TLS of its `latchkey` cluster.
pub const ENVOY_MTLS: &str = "deploy/envoy/envoy-mtls.yaml";
pub const REPLICAS: [&str; 2] = ["latchkey-1", "latchkey-2"];

/// The two deployment files, parsed.
pub struct Deployment {
    pub compose: Value,
    pub envoy: Value,
}

/// The deployment files, parsed on first use.
pub async fn deployment() -> &'static Deployment {
    static PARSED: OnceCell<Deployment> = OnceCell::const_new();
    PARSED
        .get_or_init(|| async {
            let mut docs = load_yaml(&[COMPOSE, ENVOY]).await.into_iter();
            let (compose, envoy) = (docs.next(), docs.next());
            Deployment {
                compose: compose.expect("the compose file"),
                envoy: envoy.expect("the Envoy configuration"),
            }
        })
        .await
}

impl Deployment {
    /// A Compose service, which must exist.
    pub fn service(&self, name: &str) -> &Value {
        let service = &self.compose["services"][name];
        assert!(
            service.is_object(),
            "{COMPOSE} has no service `{name}`: {:?}",
            self.compose["services"]
                .as_object()
                .map(|s| s.keys().collect::<Vec<_>>())
        );
        service
    }

    /// Every Compose service, by name.
    pub fn services(&self) -> &serde_json::Map<String, Value> {
        self.compose["services"].as_object().expect("services")
    }
}

/// A service's environment, in either of Compose's forms (a map, or a list of `NAME=value`).
pub fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Null => BTreeMap::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .map(|item| {
                let item = item.as_str().expect("environment entries are strings");
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        other => panic!("unexpected environment: {other}"),
    }
}

/// Network aliases of a service on any network.
pub fn aliases(service: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Some(networks) = service["networks"].as_object() {
        for network in networks.values() {
            for alias in network["aliases"].as_array().into_iter().flatten() {
                names.insert(alias.as_str().expect("alias").to_owned());
            }
        }
    }
    names
}

/// The port of a `host:port` listen address.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` is not host:port"))
}
