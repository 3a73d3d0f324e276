//! The deployment files, checked against the project without a Docker engine: `docker-compose.yml`
//! (parsed by PyYAML, from the peers' Python), the `Dockerfile` and `.dockerignore` (plain text),
//! and `deploy/envoy/envoy.yaml` (PyYAML, and Envoy's own `--mode validate`). Every path they name
//! exists, every `LATCHKEY_*` variable is a real setting of `latchkey serve`, the replicas share one
//! master key, Envoy's targets are the ports the services listen on, the image's health check is a
//! real subcommand and the image does not run as root. A missing peer fails, never skips.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::Value;

use crate::peers::INSTALL_PEERS;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const COMPOSE: &str = "docker-compose.yml";
const ENVOY: &str = "deploy/envoy/envoy.yaml";
const REPLICAS: [&str; 2] = ["latchkey-1", "latchkey-2"];

/// Exit status of the YAML loader when PyYAML is missing (as the scripts in tests/peers/).
const MISSING_MODULE: i32 = 3;

/// Loads YAML files (merge keys resolved, as Compose does) and prints them as one JSON array.
const YAML_TO_JSON: &str = r#"
import json, sys
try:
    import yaml
except ImportError as e:
    print(f"missing module: {e}", file=sys.stderr)
    sys.exit(3)
docs = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        docs.append(yaml.safe_load(f))
print(json.dumps(docs))
"#;

fn repo(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Standard output and standard error together.
fn text(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{stdout}{}", String::from_utf8_lossy(&output.stderr))
}

/// `[docker-compose.yml, deploy/envoy/envoy.yaml]` as JSON, parsed once by PyYAML.
fn yaml_docs() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let python = std::env::var("LATCHKEY_PEERS_PYTHON").unwrap_or_else(|_| "python3".into());
        let output = Command::new(&python)
            .args(["-c", YAML_TO_JSON, COMPOSE, ENVOY])
            .current_dir(ROOT)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the peer `{python}` ({e}): {INSTALL_PEERS}"));
        if output.status.code() == Some(MISSING_MODULE) {
            panic!(
                "the peer `{python}` lacks a module ({}): {INSTALL_PEERS}",
                text(&output)
            );
        }
        assert!(
            output.status.success(),
            "PyYAML cannot parse {COMPOSE} or {ENVOY}: {}",
            text(&output)
        );
        let docs: Vec<Value> = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("the YAML loader printed no JSON ({e}): {}", text(&output)));
        assert_eq!(docs.len(), 2, "two YAML documents expected");
        docs
    })
}

fn compose() -> &'static Value {
    &yaml_docs()[0]
}

fn envoy_config() -> &'static Value {
    &yaml_docs()[1]
}

fn service(name: &str) -> &'static Value {
    let service = &compose()["services"][name];
    assert!(
        service.is_object(),
        "{COMPOSE} has no service `{name}`: {:?}",
        compose()["services"]
            .as_object()
            .map(|s| s.keys().collect::<Vec<_>>())
    );
    service
}

/// A service's environment, in either of Compose's forms (a map, or a list of `NAME=value`).
fn environment(service: &Value) -> BTreeMap<String, String> {
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
fn aliases(service: &Value) -> BTreeSet<String> {
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
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("`{addr}` is not host:port"))
}

/// Runs the latchkey binary with `args`, with no `LATCHKEY_*` variable from the environment.
fn latchkey(args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("latchkey runs");
    assert!(
        output.status.success(),
        "latchkey {args:?} failed: {}",
        text(&output)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The subcommands `latchkey --help` lists.
fn subcommands() -> BTreeSet<String> {
    let help = latchkey(&["--help"]);
    let section = help
        .split_once("Commands:")
        .unwrap_or_else(|| panic!("no Commands: in latchkey --help:\n{help}"))
        .1;
    section
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuations joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn dockerfile() -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((&pending, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_uppercase(),
                    args: args.trim().to_owned(),
                });
                pending.clear();
            }
        }
    }
    assert!(
        pending.is_empty(),
        "Dockerfile ends inside a continued line"
    );
    instructions
}

/// The Dockerfile's stages: (`FROM` arguments, instructions).
fn stages() -> Vec<(String, Vec<Instruction>)> {
    let mut stages: Vec<(String, Vec<Instruction>)> = Vec::new();
    for instruction in dockerfile() {
        if instruction.keyword == "FROM" {
            stages.push((instruction.args, Vec::new()));
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{instruction:?} before any FROM"))
                .1
                .push(instruction);
        }
    }
    stages
}

/// The JSON array of an exec-form instruction (`["a", "b"]`).
fn exec_form(args: &str) -> Vec<String> {
    let start = args
        .find('[')
        .unwrap_or_else(|| panic!("`{args}` is not in exec form [\"…\"]"));
    serde_json::from_str(&args[start..])
        .unwrap_or_else(|e| panic!("`{args}` is not a JSON array: {e}"))
}

/// `ENV` settings of an instruction list (`NAME=value …` form).
fn env_settings(instructions: &[Instruction]) -> BTreeMap<String, String> {
    instructions
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| i.args.split_whitespace())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV `{pair}`: use the NAME=value form"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn dockerignore() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_matches('/').to_owned())
        .collect()
}

fn ignored(path: &str, patterns: &[String]) -> bool {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    patterns
        .iter()
        .any(|p| path == p || path.starts_with(&format!("{p}/")))
}

/// Top-level files and directories of the repository that `src/` includes at compile time
/// (`include_str!`, `include_bytes!` with a literal relative path).
fn compile_time_includes() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("read source");
                for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                    for (at, _) in source.match_indices(macro_name) {
                        let rest = &source[at + macro_name.len()..];
                        let literal = &rest[..rest.find('"').expect("closing quote")];
                        let target = path.parent().expect("parent").join(literal);
                        let Ok(target) = target.canonicalize() else {
                            panic!(
                                "{} includes {literal}, which does not exist",
                                path.display()
                            );
                        };
                        let root = Path::new(ROOT).canonicalize().expect("root");
                        if let Ok(relative) = target.strip_prefix(&root)
                            && let Some(first) = relative.components().next()
                        {
                            found.insert(first.as_os_str().to_string_lossy().into_owned());
                        }
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo("src"), &mut found);
    found
}

#[test]
fn compose_defines_postgres_two_replicas_envoy_and_an_upstream() {
    for name in ["postgres", "latchkey-1", "latchkey-2", "envoy", "upstream"] {
        service(name);
    }

    let postgres = service("postgres");
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
        let replica = service(name);
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
        REPLICAS.iter().any(|name| service(name)["ports"]
            .as_array()
            .is_some_and(|p| !p.is_empty())),
        "one replica publishes its ports"
    );
}

#[test]
fn every_path_the_deployment_names_exists() {
    let services = compose()["services"].as_object().expect("services");
    let declared_volumes: BTreeSet<&String> = compose()["volumes"]
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

    // The Dockerfile copies only what exists and what .dockerignore lets into the context, and
    // everything a cargo build of the binary reads.
    let patterns = dockerignore();
    for excluded in ["target", ".venv-peers", "latchkey-data"] {
        assert!(
            patterns.iter().any(|p| p == excluded),
            ".dockerignore must exclude {excluded}: {patterns:?}"
        );
    }
    let mut copied = BTreeSet::new();
    for (from, instructions) in stages() {
        for copy in instructions.iter().filter(|i| i.keyword == "COPY") {
            if copy.args.starts_with("--from") {
                continue;
            }
            let words: Vec<&str> = copy
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (_, sources) = words.split_last().expect("COPY SRC… DEST");
            for source in sources {
                assert!(
                    repo(source).exists(),
                    "{from}: COPY {source}, which does not exist"
                );
                assert!(
                    !ignored(source, &patterns),
                    "{from}: COPY {source}, which .dockerignore excludes"
                );
                copied.insert(
                    source
                        .trim_start_matches("./")
                        .trim_end_matches('/')
                        .to_owned(),
                );
            }
        }
    }
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "build.rs", "src", "proto"]
        .map(String::from)
        .into();
    needed.extend(compile_time_includes());
    for path in &needed {
        assert!(
            copied.contains(path),
            "the build needs {path}, which the Dockerfile does not COPY (copies {copied:?})"
        );
    }
}

#[test]
fn every_latchkey_variable_is_a_setting_of_serve() {
    let help = latchkey(&["serve", "--help"]);
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    for (name, service) in compose()["services"].as_object().expect("services") {
        for (key, _) in environment(service) {
            if key.starts_with("LATCHKEY_") {
                variables.insert(key, format!("{COMPOSE} {name}"));
            }
        }
    }
    for (from, instructions) in stages() {
        for key in env_settings(&instructions).into_keys() {
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
    let postgres = environment(service("postgres"));
    for name in REPLICAS {
        let env = environment(service(name));
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
    let runtime = stages().pop().expect("a runtime stage").1;
    for (key, value) in env_settings(&runtime) {
        if key.ends_with("_ADDR") {
            assert!(value.starts_with("0.0.0.0:"), "Dockerfile {key}={value}");
        }
    }
}

#[test]
fn both_replicas_take_the_same_required_master_key() {
    let keys: Vec<String> = REPLICAS
        .iter()
        .map(|name| {
            environment(service(name))
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
        .map(|name| environment(service(name))["LATCHKEY_DATABASE_URL"].clone())
        .collect();
    assert_eq!(
        databases.len(),
        1,
        "the replicas share one database: {databases:?}"
    );
}

#[test]
fn envoy_targets_are_the_ports_the_services_listen_on() {
    // Where each name resolves inside the compose network, and the ports listening there.
    let mut listening: BTreeMap<String, Vec<(String, BTreeSet<u16>)>> = BTreeMap::new();
    for (name, service) in compose()["services"].as_object().expect("services") {
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

    let clusters = envoy_config()["static_resources"]["clusters"]
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
    let envoy = service("envoy");
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
    let listener_ports: BTreeSet<u64> = envoy_config()["static_resources"]["listeners"]
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
        let env = environment(service(name));
        let own: BTreeSet<u16> = ["LATCHKEY_GRPC_ADDR", "LATCHKEY_HTTP_ADDR"]
            .iter()
            .map(|k| port_of(&env[*k]))
            .collect();
        for p in service(name)["ports"].as_array().into_iter().flatten() {
            let p = p.as_str().expect("short port syntax");
            let container: u16 = p.rsplit(':').next().unwrap().parse().expect("port");
            assert!(
                own.contains(&container),
                "{name} publishes {p} but listens on {own:?}"
            );
        }
    }
}

#[test]
fn envoy_accepts_the_deployed_config() {
    let output = Command::new("envoy")
        .args(["--mode", "validate", "-c", ENVOY])
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the peer `envoy` ({e}): {INSTALL_PEERS}"));
    assert!(
        output.status.success(),
        "envoy --mode validate -c {ENVOY} failed: {}",
        text(&output)
    );
}

#[test]
fn the_image_health_check_and_command_are_latchkey_subcommands() {
    let subcommands = subcommands();
    let runtime = stages().pop().expect("a runtime stage").1;
    let find = |keyword: &str| {
        runtime
            .iter()
            .rfind(|i| i.keyword == keyword)
            .unwrap_or_else(|| panic!("the runtime stage has no {keyword}"))
    };

    assert_eq!(exec_form(&find("ENTRYPOINT").args), ["latchkey"]);
    let cmd = exec_form(&find("CMD").args);
    assert!(
        cmd.first().is_some_and(|c| subcommands.contains(c)),
        "CMD {cmd:?} is not a subcommand among {subcommands:?}"
    );
    // The binary is where the entrypoint finds it.
    assert!(
        runtime.iter().any(|i| i.keyword == "COPY"
            && i.args.starts_with("--from=")
            && i.args.ends_with("/usr/local/bin/latchkey")),
        "the runtime stage copies the binary to /usr/local/bin/latchkey"
    );

    let healthcheck = &find("HEALTHCHECK").args;
    let (options, command) = healthcheck
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {healthcheck}: expected [OPTIONS] CMD [...]"));
    assert!(
        options.split_whitespace().all(|o| o.starts_with("--")),
        "HEALTHCHECK options: {options}"
    );
    let command = exec_form(command);
    assert_eq!(
        command.first().map(String::as_str),
        Some("latchkey"),
        "HEALTHCHECK CMD {command:?}"
    );
    let check = command.get(1).expect("HEALTHCHECK CMD latchkey SUBCOMMAND");
    assert!(
        subcommands.contains(check),
        "HEALTHCHECK runs `latchkey {check}`, which is not among {subcommands:?}"
    );
}

#[test]
fn the_image_is_built_with_a_recent_enough_rust_and_runs_as_non_root() {
    let stages = stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let (builder, build) = &stages[0];
    let version = builder
        .strip_prefix("rust:")
        .and_then(|rest| rest.split('-').next())
        .unwrap_or_else(|| panic!("builder FROM {builder}: expected rust:<version>-…"));
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml rust-version");
    let parse =
        |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().expect("number")).collect() };
    assert!(
        parse(version) >= parse(required),
        "builder Rust {version} is older than rust-version {required}"
    );
    assert!(
        build
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the builder runs cargo build --release --locked"
    );

    let (base, runtime) = stages.last().expect("runtime stage");
    assert!(
        base.starts_with("debian:bookworm-slim"),
        "runtime FROM {base}"
    );
    assert!(
        runtime
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("ca-certificates")),
        "the runtime image has ca-certificates"
    );
    let user = runtime
        .iter()
        .rfind(|i| i.keyword == "USER")
        .map(|i| i.args.clone())
        .unwrap_or_else(|| panic!("the runtime stage sets no USER: it would run as root"));
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !matches!(name, "root" | "0" | ""),
        "the runtime stage runs as USER {user}"
    );
    // The process starts as that user: the last USER comes before the ENTRYPOINT.
    let last_user = runtime.iter().rposition(|i| i.keyword == "USER").unwrap();
    let entry = runtime
        .iter()
        .rposition(|i| i.keyword == "ENTRYPOINT")
        .unwrap();
    assert!(last_user < entry, "USER comes before ENTRYPOINT");
}
