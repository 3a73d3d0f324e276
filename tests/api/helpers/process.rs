//! The `latchkey` binary (and any other program) as a child process: one builder for latchkey's
//! command line, one reaper for every child, and [`Server`], a `latchkey serve` process.
//!
//! Children never inherit the test's environment (a stray `LATCHKEY_*` variable would change what
//! they do). Under `TEST_LOG` they log with that filter and their standard error is passed through
//! to the test's output (see [`super::log`]).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use latchkey::grpc::pb::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use super::{
    app::{PASSWORD_ITERATIONS, PASSWORD_MEMORY_KIB},
    client::{lazy_channel, wait_health},
    log,
};

/// The latchkey binary with an empty environment (only `NO_COLOR`, and `LATCHKEY_LOG` under
/// `TEST_LOG`).
pub fn latchkey() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.env_clear().env("NO_COLOR", "1");
    if let Some(filter) = log::filter() {
        command.env("LATCHKEY_LOG", filter);
    }
    command
}

/// The latchkey binary with the test settings: `data_dir`, port 0 everywhere, cheap argon2.
pub fn latchkey_in(data_dir: &Path) -> Command {
    let mut command = latchkey();
    command
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_GRPC_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_ADDR", "127.0.0.1:0")
        .env(
            "LATCHKEY_PASSWORD_MEMORY_KIB",
            PASSWORD_MEMORY_KIB.to_string(),
        )
        .env(
            "LATCHKEY_PASSWORD_ITERATIONS",
            PASSWORD_ITERATIONS.to_string(),
        );
    command
}

/// A child process, killed (SIGKILL) and reaped when dropped: a failing test leaves nothing behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Runs `command` to completion (killed after `within`), feeding it `stdin`; fails only if it
/// cannot be started at all.
pub async fn run(mut command: Command, stdin: &str, within: Duration) -> std::io::Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Reaped(command.spawn()?);
    let mut input = child.stdin.take().expect("stdin is piped");
    // A child that never reads its input must not block us: written from a thread of its own.
    let stdin = stdin.to_owned();
    std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "`{program}` still running after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (stdout, stderr) = (stdout.await.expect("stdout"), stderr.await.expect("stderr"));
    if log::enabled() {
        eprint!("{}", String::from_utf8_lossy(&stderr));
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Runs latchkey to completion (30 s at most); its standard output, which it must succeed.
pub async fn run_latchkey(command: Command, stdin: &str) -> String {
    let output = run(command, stdin, Duration::from_secs(30)).await;
    let output = output.expect("latchkey starts");
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Standard output and standard error together.
pub fn text(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{stdout}{}", String::from_utf8_lossy(&output.stderr))
}

/// A `latchkey serve` process, killed (SIGKILL) when dropped.
pub struct Server {
    child: Reaped,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    data_dir: PathBuf,
    vars: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
}

fn address(line: &str, key: &str) -> SocketAddr {
    let value = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"));
    value.parse().unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

/// Drains a child's standard error into `log` until it closes (so the child never blocks on a full
/// pipe); sends each `latchkey listening` line (it names the bound ports) to `serving`.
fn drain_stderr(
    stderr: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    serving: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let pass_through = log::enabled();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("latchkey listening") {
                let _ = serving.send(line.clone());
            }
            if pass_through {
                eprintln!("{line}");
            }
            let mut log = log.lock().expect("log lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
}

impl Server {
    /// Starts `latchkey serve` on `data_dir` with the test settings plus `vars`, and waits until it
    /// announces its ports (not until it is ready: see [`Server::ready`]).
    pub async fn start(data_dir: &Path, vars: &[(&str, &str)]) -> Server {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut command = latchkey_in(data_dir);
        command.arg("serve").envs(vars.iter().cloned());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("latchkey starts");
        let mut child = Reaped(child);
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, mut serving) = tokio::sync::mpsc::unbounded_channel();
        drain_stderr(child.stderr.take().expect("stderr piped"), log.clone(), tx);
        let unbound: SocketAddr = "0.0.0.0:0".parse().expect("an address");
        let mut server = Server {
            child,
            grpc_addr: unbound,
            http_addr: unbound,
            data_dir: data_dir.to_owned(),
            vars,
            log,
        };
        match tokio::time::timeout(Duration::from_secs(30), serving.recv()).await {
            Ok(Some(line)) => {
                server.grpc_addr = address(&line, "grpc=");
                server.http_addr = address(&line, "http=");
                server
            }
            Ok(None) => {
                let status = server.child.wait();
                panic!(
                    "latchkey exited ({status:?}) before serving:\n{}",
                    server.log()
                )
            }
            Err(_) => panic!(
                "latchkey not serving after 30 s (a TEST_LOG filter that hides `latchkey \
                 serving` at info stalls this):\n{}",
                server.log()
            ),
        }
    }

    /// Everything the process wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits (at most `within`) until the log has a line containing `needle`.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.log().contains(needle)
    }

    pub fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(lazy_channel(self.grpc_addr))
    }

    /// Runs a latchkey command beside this server: same data directory, same settings.
    pub fn command(&self) -> Command {
        let mut command = latchkey_in(&self.data_dir);
        command.envs(self.vars.iter().cloned());
        command
    }

    /// Creates a user with the CLI (`latchkey user add`), as an operator would.
    pub async fn add_user(&self, name: &str, password: &str) {
        let mut command = self.command();
        command.args(["user", "add", name, "--password-stdin"]);
        run_latchkey(command, &format!("{password}\n")).await;
    }

    /// SIGKILL, and the process reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and how the process ended.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.expect("kill runs").success(), "SIGTERM sent to {pid}");
        self.child.wait().expect("the process ends")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (15 s at most) until health says SERVING.
    pub async fn ready(&self) -> Duration {
        self.wait_health(ServingStatus::Serving, Duration::from_secs(15))
            .await
    }

    /// Polls gRPC health until both services say `want`; how long that took.
    pub async fn wait_health(&self, want: ServingStatus, within: Duration) -> Duration {
        wait_health(self.grpc_addr, want, within)
            .await
            .unwrap_or_else(|seen| panic!("{seen}\n{}", self.log()))
    }
}
