//! The real third-party peers: grpcurl, Envoy, and a Python with PyJWT, grpcio and PyYAML. They
//! are installed by `bash .ci/run` (tests/peers/requirements.txt, into `.venv-peers/`); a missing
//! one fails the test with [`INSTALL_PEERS`], never skips it.

use std::{net::SocketAddr, process::Output, time::Duration};

use serde_json::Value;

use super::process::{run, text};

/// How to install the peers, for the message of a test that cannot find one.
pub const INSTALL_PEERS: &str = "run `bash .ci/run`, or `python3 -m venv .venv-peers && \
     .venv-peers/bin/pip install -r tests/peers/requirements.txt` and run the tests with \
     PATH=$PWD/.venv-peers/bin:$PATH LATCHKEY_PEERS_PYTHON=$PWD/.venv-peers/bin/python";

/// Exit status of the Python scripts in tests/peers/ when one of their modules is missing.
const MISSING_MODULE: i32 = 3;

pub const PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");

/// The Python that has the peers installed: `$LATCHKEY_PEERS_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("LATCHKEY_PEERS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a peer to completion (at most 60 s) in the repository, feeding it `stdin`.
pub async fn run_peer(program: &str, args: &[&str], stdin: &str) -> Output {
    let mut command = std::process::Command::new(program);
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    let output = run(command, stdin, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("cannot run the peer `{program}` ({e}): {INSTALL_PEERS}"));
    if output.status.code() == Some(MISSING_MODULE) {
        panic!(
            "the peer `{program}` lacks a module ({}): {INSTALL_PEERS}",
            text(&output)
        );
    }
    output
}

/// The JSON a peer printed, which must have succeeded.
pub fn json_of(output: &Output) -> Value {
    assert!(output.status.success(), "peer failed: {}", text(output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("peer printed no JSON ({e}): {}", text(output)))
}

/// `grpcurl -plaintext FLAGS ADDR REST`.
pub async fn grpcurl(grpc_addr: SocketAddr, flags: &[&str], rest: &[&str]) -> Output {
    let addr = grpc_addr.to_string();
    let mut args = vec!["-plaintext", "-max-time", "30"];
    args.extend_from_slice(flags);
    args.push(&addr);
    args.extend_from_slice(rest);
    run_peer("grpcurl", &args, "").await
}

/// Verifies `token` with PyJWT against the JWKS served at `http_addr` (tests/peers/verify_jwt.py).
pub async fn pyjwt_verify(http_addr: SocketAddr, token: &str) -> Output {
    let script = format!("{PEERS_DIR}/verify_jwt.py");
    run_peer(&python(), &[&script, &http_addr.to_string()], token).await
}

/// Loads YAML files of the repository with PyYAML (merge keys resolved, as Compose does): one JSON
/// value per file.
pub async fn load_yaml(paths: &[&str]) -> Vec<Value> {
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
    let mut args = vec!["-c", YAML_TO_JSON];
    args.extend_from_slice(paths);
    let output = run_peer(&python(), &args, "").await;
    assert!(
        output.status.success(),
        "PyYAML cannot parse {paths:?}: {}",
        text(&output)
    );
    let docs: Vec<Value> = json_of(&output).as_array().cloned().expect("a JSON array");
    assert_eq!(docs.len(), paths.len(), "one document per file");
    docs
}
