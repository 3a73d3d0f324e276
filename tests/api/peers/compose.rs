//! The Compose file, checked against the project without a Docker engine: `docker-compose.yml`
//! (parsed by PyYAML, from the peers' Python). Every path it names exists, every `LATCHKEY_*`
//! variable (the Dockerfile's included) is a real setting of `latchkey serve`, and the replicas
//! share one database and one master key. Envoy's file: `peers::envoy_config`; the Dockerfile's own
//! checks need no peer: `binary::dockerfile`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::helpers::{
    compose::{COMPOSE, ENVOY, REPLICAS, deployment, environment, port_of},
    dockerfile::{self, repo},
    process::{latchkey, run_latchkey},
};

/// `latchkey serve --help`, which lists every setting with its variable.
async fn serve_help() -> String {
    let mut command = latchkey();
    command.args(["serve", "--help"]);
    run_latchkey(command, "").await
}

#[tokio::test]
async fn compose_defines_postgres_two_replicas_envoy_and_an_upstream() {
    let d = deployment().await;
    for name in ["postgres", "latchkey-1", "latchkey-2", "envoy", "upstream"] {
        d.service(name);
    }

    let postgres = d.service("postgres");
    let image = postgres["image"].as_str().expect("postgres image");
    assert!(image.starts_with("postgres:16"), "postgres image: {image}");
    let test = postgres["healthcheck"]["test"].to_string();
    assert!(test.contains("pg_isready"), "postgres healthcheck: {test}");
    let volumes: Vec<&str> = postgres["volumes"]
        .as_array()
        .expect("postgres volumes")
        .iter()
        .map(|v| v.as_str().expect("short volume syntax"))
        .collect();
    assert!(
        volumes
            .iter()
            .any(|v| v.ends_with(":/var/lib/postgresql/data")),
        "postgres keeps its data in a volume: {volumes:?}"
    );

    for name in REPLICAS {
        let replica = d.service(name);
        assert_eq!(
            replica["depends_on"]["postgres"]["condition"], "service_healthy",
            "{name} waits for a healthy postgres"
        );
        assert_eq!(
            replica["build"]["dockerfile"], "Dockerfile",
            "{name} is built from the repository's Dockerfile"
        );
    }
    assert!(
        REPLICAS.iter().any(|name| d.service(name)["ports"]
            .as_array()
            .is_some_and(|p| !p.is_empty())),
        "one replica publishes its ports"
    );
}

#[tokio::test]
async fn every_path_the_deployment_names_exists() {
    let d = deployment().await;
    let services = d.services();
    let declared_volumes: BTreeSet<&String> = d.compose["volumes"]
        .as_object()
        .map(|v| v.keys().collect())
        .unwrap_or_default();
    let mut checked = Vec::new();
    for (name, service) in services {
        if let Some(build) = service.get("build") {
            let (context, dockerfile) = match build {
                Value::String(context) => (context.as_str(), "Dockerfile"),
                _ => (
                    build["context"].as_str().unwrap_or("."),
                    build["dockerfile"].as_str().unwrap_or("Dockerfile"),
                ),
            };
            assert!(repo(context).is_dir(), "{name}: no build context {context}");
            let file = repo(context).join(dockerfile);
            assert!(file.is_file(), "{name}: no {}", file.display());
            checked.push(format!("{name}: build {context} {dockerfile}"));
        }
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().expect("short volume syntax");
            let source = volume.split(':').next().expect("source");
            if source.starts_with("./") || source.starts_with("../") || source.starts_with('/') {
                assert!(
                    !source.starts_with('/'),
                    "{name}: {volume} binds a host path outside the project"
                );
                assert!(
                    repo(source).exists(),
                    "{name}: {volume} binds {source}, which does not exist"
                );
                checked.push(format!("{name}: bind {source}"));
            } else {
                assert!(
                    declared_volumes.contains(&source.to_owned()),
                    "{name}: named volume {source} is not declared under volumes:"
                );
            }
        }
    }
    assert!(
        checked.iter().any(|c| c.contains(ENVOY)),
        "Envoy mounts {ENVOY}: {checked:?}"
    );
}

#[tokio::test]
async fn every_latchkey_variable_is_a_setting_of_serve() {
    let d = deployment().await;
    let help = serve_help().await;
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    for (name, service) in d.services() {
        for (key, _) in environment(service) {
            if key.starts_with("LATCHKEY_") {
                variables.insert(key, format!("{COMPOSE} {name}"));
            }
        }
    }
    for (from, instructions) in dockerfile::stages() {
        for key in dockerfile::env_settings(&instructions).into_keys() {
            if key.starts_with("LATCHKEY_") {
                variables.insert(key, format!("Dockerfile {from}"));
            }
        }
    }
    for key in [
        "LATCHKEY_DATABASE_URL",
        "LATCHKEY_MASTER_KEY",
        "LATCHKEY_GRPC_ADDR",
    ] {
        assert!(variables.contains_key(key), "{key} is set: {variables:?}");
    }
    for (key, place) in &variables {
        assert!(
            help.contains(&format!("[env: {key}=")) || help.contains(&format!("[env: {key}]")),
            "{place} sets {key}, which is no setting of `latchkey serve`:\n{help}"
        );
    }

    // The values: listening beyond loopback in the containers, and the database the postgres
    // service creates, under the name Compose gives it.
    let postgres = environment(d.service("postgres"));
    for name in REPLICAS {
        let env = environment(d.service(name));
        for key in ["LATCHKEY_GRPC_ADDR", "LATCHKEY_HTTP_ADDR"] {
            let addr = &env[key];
            assert!(addr.starts_with("0.0.0.0:"), "{name} {key}={addr}");
            port_of(addr);
        }
        let expected = format!(
            "postgres://{}:{}@postgres:5432/{}",
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
        );
        assert_eq!(env["LATCHKEY_DATABASE_URL"], expected, "{name}");
    }
    let runtime = dockerfile::stages().pop().expect("a runtime stage").1;
    for (key, value) in dockerfile::env_settings(&runtime) {
        if key.ends_with("_ADDR") {
            assert!(value.starts_with("0.0.0.0:"), "Dockerfile {key}={value}");
        }
    }
}

#[tokio::test]
async fn both_replicas_take_the_same_required_master_key() {
    let d = deployment().await;
    let keys: Vec<String> = REPLICAS
        .iter()
        .map(|name| {
            environment(d.service(name))
                .remove("LATCHKEY_MASTER_KEY")
                .unwrap_or_else(|| panic!("{name} has no LATCHKEY_MASTER_KEY"))
        })
        .collect();
    assert_eq!(keys[0], keys[1], "the replicas' master keys differ");
    // From the environment of `docker compose`, never written in the file, and required: Compose
    // stops with the message when it is unset or empty.
    let key = &keys[0];
    let message = key
        .strip_prefix("${LATCHKEY_MASTER_KEY:?")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| {
            panic!("LATCHKEY_MASTER_KEY={key}: expected ${{LATCHKEY_MASTER_KEY:?message}}")
        });
    assert!(
        message.len() > 10,
        "the required-variable message says what to set: {key}"
    );
    let databases: BTreeSet<String> = REPLICAS
        .iter()
        .map(|name| environment(d.service(name))["LATCHKEY_DATABASE_URL"].clone())
        .collect();
    assert_eq!(
        databases.len(),
        1,
        "the replicas share one database: {databases:?}"
    );
}
