//! The `greeter` example of `latchkey-verify` as a child process, as its users run it: a gRPC
//! service that verifies latchkey's tokens locally, and calls to it ([`Greeter::answer`]). Then
//! [`trials`] of the 1 s promise, and a greeter through a latchkey [`outage`].

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tonic::{Code, Request, Status, transport::Channel};

use super::{
    client::{lazy_channel, reason, with_bearer},
    log,
    process::Reaped,
};

pub mod outage;
pub mod trials;

/// The example's messages (`verify/proto/latchkey/example/v1/greeter.proto`), by hand: the
/// generated code lives in the verify crate's build, and two messages are all a client needs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    #[prost(string, tag = "1")]
    pub sub: String,
    #[prost(string, tag = "2")]
    pub session_id: String,
    #[prost(string, tag = "3")]
    pub scope: String,
}

/// What the greeter says to a token: accepted, or refused with a status code and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Refused(Code, String),
}

/// The refusal of a forged, expired or revoked token.
pub fn invalid() -> Answer {
    Answer::Refused(Code::Unauthenticated, "ACCESS_TOKEN_INVALID".into())
}

/// The refusal of every token once the revocation feed has been silent too long.
pub fn stale() -> Answer {
    Answer::Refused(Code::Unavailable, "REVOCATIONS_STALE".into())
}

/// The example binary, built next to the latchkey binary by `cargo test --workspace`.
fn binary() -> PathBuf {
    let latchkey = PathBuf::from(env!("CARGO_BIN_EXE_latchkey"));
    let dir = latchkey.parent().expect("the binary's directory");
    let greeter = dir.join("examples").join("greeter");
    assert!(
        greeter.exists(),
        "{} is missing: run `cargo build -p latchkey-verify --example greeter` \
         (or `cargo test --workspace`, which builds it)",
        greeter.display()
    );
    greeter
}

/// A running greeter, killed when dropped.
pub struct Greeter {
    child: Reaped,
    pub addr: SocketAddr,
    channel: Channel,
    log: Arc<Mutex<String>>,
}

/// Drains a pipe of the child into `log` (so it never blocks on a full pipe), passed through under
/// `TEST_LOG` (at the example's one level: it reads no filter); sends the address of each
/// `greeter listening on ADDR` line to `listening`.
fn drain(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    listening: tokio::sync::mpsc::UnboundedSender<SocketAddr>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("greeter listening on ") {
                let addr = addr.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
                let _ = listening.send(addr);
            }
            if log::enabled() {
                eprintln!("greeter: {line}");
            }
            let mut log = log.lock().expect("log lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
}

impl Greeter {
    /// Starts the greeter on a free port, following the latchkey at `latchkey` (plus `args`), and
    /// waits until it says it listens: its verifier has loaded the keys and the feed.
    pub async fn start(latchkey: SocketAddr, args: &[&str]) -> Greeter {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .env("NO_COLOR", "1")
            .args(["--latchkey", &format!("http://{latchkey}")])
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Reaped(command.spawn().expect("the greeter starts"));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, mut listening) = tokio::sync::mpsc::unbounded_channel();
        drain(child.stdout.take().expect("piped"), log.clone(), tx.clone());
        drain(child.stderr.take().expect("piped"), log.clone(), tx);
        let within = Duration::from_secs(15);
        let addr = match tokio::time::timeout(within, listening.recv()).await {
            Ok(Some(addr)) => addr,
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                let log = log.lock().expect("log lock").clone();
                // It listens once its verifier has heard the feed's first heartbeat.
                panic!("the greeter is not listening ({outcome:?}, {status:?}):\n{log}")
            }
        };
        Greeter {
            child,
            addr,
            channel: lazy_channel(addr),
            log,
        }
    }

    /// Everything the greeter wrote so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Whether the process is still the one started (it never restarts itself).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `Greeter/Hello` with `authorization: Bearer <token>`.
    pub async fn hello(&self, token: &str) -> Result<HelloReply, Status> {
        self.call(with_bearer(HelloRequest {}, token)).await
    }

    /// `Greeter/Hello` as given (a test may leave out the bearer).
    pub async fn call(&self, request: Request<HelloRequest>) -> Result<HelloReply, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/latchkey.example.v1.Greeter/Hello");
        let codec = tonic_prost::ProstCodec::default();
        let response = grpc.unary(request, path, codec).await?;
        Ok(response.into_inner())
    }

    /// What the greeter answers `Hello` with `token` as the bearer.
    pub async fn answer(&self, token: &str) -> Answer {
        match self.hello(token).await {
            Ok(_) => Answer::Accepted,
            Err(status) => Answer::Refused(status.code(), reason(&status)),
        }
    }

    /// Asks about `token` every 10 ms while the answer stays `from` (at most `within`): when it
    /// changed, and to what.
    pub async fn next_answer(
        &self,
        token: &str,
        from: &Answer,
        within: Duration,
    ) -> (Duration, Answer) {
        let started = Instant::now();
        loop {
            let answer = self.answer(token).await;
            if answer != *from || started.elapsed() > within {
                return (started.elapsed(), answer);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
