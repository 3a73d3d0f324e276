//! The `notifier` example (examples/notifier.rs) as a user runs it, following a `latchkey serve`
//! child process: it tells of a new sign-in, keeps following while the server is killed, sees the
//! password change made meanwhile by the command line, and tells each thing once.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use latchkey::grpc::pb;

use crate::helpers::process::{Reaped, Server, run_latchkey};

/// The example, built beside the latchkey binary by `cargo test`.
fn binary() -> PathBuf {
    let latchkey = PathBuf::from(env!("CARGO_BIN_EXE_latchkey"));
    let notifier = latchkey.parent().unwrap().join("examples").join("notifier");
    assert!(
        notifier.exists(),
        "{} is missing: run `cargo test` (it builds the examples)",
        notifier.display()
    );
    notifier
}

/// The notifier following the latchkey at `port` with `token`; its standard output, line by line.
fn start(port: u16, token: &str) -> (Reaped, Arc<Mutex<Vec<String>>>) {
    let mut child = Reaped(
        Command::new(binary())
            .env_clear()
            .env("LATCHKEY_ADMIN_TOKEN", token)
            .args(["--latchkey", &format!("http://127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the notifier starts"),
    );
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (out, sink) = (child.stdout.take().unwrap(), lines.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

/// Waits (10 s at most) until some line contains `needle`.
async fn wait_line(lines: &Mutex<Vec<String>>, needle: &str) {
    let start = Instant::now();
    while !lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
        let all = lines.lock().unwrap().join("\n");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {needle:?} in:\n{all}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notifier_tells_each_event_once_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let grpc = format!("127.0.0.1:{port}");
    let vars = [("LATCHKEY_GRPC_ADDR", grpc.as_str())];
    let mut server = Server::start(dir.path(), &vars).await;
    server.ready().await;
    let mut add = server.command();
    add.args([
        "user",
        "add",
        "root",
        "--password-stdin",
        "--scope",
        "latchkey.admin",
    ]);
    run_latchkey(add, "root password\n").await;
    server.add_user("eve", "eve's password").await;
    let root = pb::LoginRequest {
        username: "root".into(),
        password: "root password".into(),
        scopes: vec!["latchkey.admin".into()],
        ..Default::default()
    };
    let token = server.client().login(root).await.expect("root logs in");
    let token = token.into_inner().access_token;
    let (_notifier, lines) = start(port, &token);
    wait_line(&lines, "notifier following events after 0").await;

    let eve = pb::LoginRequest {
        username: "eve".into(),
        password: "eve's password".into(),
        device: "laptop".into(),
        ..Default::default()
    };
    server.client().login(eve).await.expect("eve logs in");
    wait_line(&lines, "new sign-in from laptop at 127.0.0.1").await;

    // The server dies; the command line changes eve's password while it is down.
    server.kill();
    let mut change = server.command();
    change.args(["user", "set-password", "eve", "--password-stdin"]);
    run_latchkey(change, "another password\n").await;
    let restarted = Server::start(dir.path(), &vars).await;
    restarted.ready().await;
    wait_line(
        &lines,
        "your password was changed (by the command line; 1 session revoked)",
    )
    .await;

    // Root's own first sign-in (the admin's token) is news too.
    let told: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.starts_with("notifier"))
        .cloned()
        .collect();
    let messages: Vec<&str> = told
        .iter()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "new sign-in from 127.0.0.1",
            "new sign-in from laptop at 127.0.0.1",
            "your password was changed (by the command line; 1 session revoked)",
        ],
        "each event once, in order"
    );
    let seqs: Vec<u64> = told
        .iter()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("notifier following"))
            .count()
            >= 2,
        "it reconnected"
    );
}
