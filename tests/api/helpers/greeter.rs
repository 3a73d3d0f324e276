//! The `greeter` example of `latchkey-verify` as a child process, as its users run it: a gRPC
//! service that verifies latchkey's tokens locally. Calls to it ([`Greeter::answer`]) and the
//! trials of the 1 s promise ([`measure`]): after each kind of revocation, how long until the
//! greeter refuses the tokens concerned.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use latchkey::{
    domain::types::Password,
    grpc::pb::{self, TokenResponse},
};
use tonic::{Code, Request, Status, transport::Channel};

use super::{
    app::{TestApp, spawn_app_in, use_store, username},
    client::{lazy_channel, reason, with_bearer},
    log,
    process::Reaped,
};

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
/// `TEST_LOG`; sends the address of each `greeter listening on ADDR` line to `listening`.
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
            .env("RUST_LOG", log::filter().unwrap_or_else(|| "warn".into()))
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

/// Checks that the greeter keeps accepting `token` after latchkey began to stop at `stopping`
/// (and was gone at `stopped`) until `max_staleness` since it last heard the feed (a heartbeat,
/// at most a second before `stopping`), then refuses it as stale. When that came, after `stopped`.
pub async fn goes_stale(
    greeter: &Greeter,
    token: &str,
    (stopping, stopped): (Instant, Instant),
    max_staleness: Duration,
) -> Duration {
    let within = max_staleness + Duration::from_secs(3);
    let (_, answer) = greeter.next_answer(token, &Answer::Accepted, within).await;
    let (since_stopping, since_stopped) = (stopping.elapsed(), stopped.elapsed());
    assert_eq!(
        answer,
        stale(),
        "after {since_stopped:?}:\n{}",
        greeter.log()
    );
    let heartbeat = Duration::from_secs(1);
    assert!(
        since_stopping + heartbeat >= max_staleness,
        "stale too early: {since_stopping:?} after latchkey began to stop"
    );
    assert!(
        since_stopped <= max_staleness + Duration::from_millis(500),
        "stale too late: {since_stopped:?} after latchkey stopped"
    );
    since_stopped
}

/// Waits (at most 10 s: the verifier's reconnection backoff is capped at 5 s) until the greeter
/// accepts `token` again after a stale spell; how long that took.
pub async fn recovers(greeter: &Greeter, token: &str) -> Duration {
    let within = Duration::from_secs(10);
    let (took, answer) = greeter.next_answer(token, &stale(), within).await;
    assert_eq!(
        answer,
        Answer::Accepted,
        "after {took:?}:\n{}",
        greeter.log()
    );
    took
}

/// Starts `app` again after a stop, on the same gRPC address (a greeter names one address), data
/// directory and database (with `master_key`, when the replicas of a fleet share one).
pub async fn restart_on_same_port(
    data_dir: tempfile::TempDir,
    grpc_addr: SocketAddr,
    database_url: &str,
    master_key: Option<&str>,
) -> TestApp {
    spawn_app_in(data_dir, |args| {
        use_store(args, database_url, master_key);
        args.grpc_addr = Some(grpc_addr.to_string());
    })
    .await
}

/// The ways a session dies that the verifier must honour within 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Revoke of an access token: its session.
    Revoke,
    /// LogoutAll by the user: every session.
    LogoutAll,
    /// An operator's password change: every session.
    PasswordChange,
    /// An operator's disable: every session.
    Disable,
    /// A spent refresh token presented again: its session.
    Reuse,
}

impl Revocation {
    pub const ALL: [Revocation; 5] = [
        Self::Revoke,
        Self::LogoutAll,
        Self::PasswordChange,
        Self::Disable,
        Self::Reuse,
    ];

    /// Whether the user's other sessions die too.
    fn whole_user(self) -> bool {
        !matches!(self, Self::Revoke | Self::Reuse)
    }
}

const PASSWORD: &str = "correct horse";

/// Makes `kind` of revocation through `through`, on the session of `pair` (of user `name`); the
/// call has returned when this does.
async fn revoke(through: &TestApp, kind: Revocation, name: &str, pair: &TokenResponse) {
    let name = username(name);
    // The whole-user kinds say how many sessions they ended: both of the trial's.
    let ended = match kind {
        Revocation::Revoke => {
            let revoked = through.revoke(&pair.access_token).await;
            revoked.unwrap_or_else(|e| panic!("Revoke: {e:?}"));
            None
        }
        Revocation::LogoutAll => {
            let request = with_bearer(pb::LogoutAllRequest::default(), &pair.access_token);
            let response = through.client.clone().logout_all(request).await;
            Some(response.expect("LogoutAll").into_inner().revoked_sessions)
        }
        Revocation::PasswordChange => {
            let password = Password::parse("another horse".into()).expect("a valid password");
            Some(
                through
                    .service
                    .set_password(&name, password)
                    .await
                    .expect("changed"),
            )
        }
        Revocation::Disable => Some(through.service.disable_user(&name).await.expect("disabled")),
        Revocation::Reuse => {
            let refused = through.refresh(&pair.refresh_token).await.unwrap_err();
            assert_eq!(reason(&refused), "REFRESH_TOKEN_REUSED");
            None
        }
    };
    if let Some(ended) = ended {
        assert_eq!(ended, 2, "{kind:?}: sessions revoked");
    }
}

/// One trial: user `name` opens two sessions through `through` (the first refreshed twice, so
/// that presenting its first refresh token again is reuse), the greeter accepts them; `kind` is
/// made through `through`. How long after the call returned the greeter refused every access
/// token concerned (polled every 10 ms, for 5 s at most).
pub async fn trial(through: &TestApp, greeter: &Greeter, kind: Revocation, name: &str) -> Duration {
    let user_id = through.add_user(name, PASSWORD, &["read", "write"]).await;
    let first = through.login(name, PASSWORD).await;
    let second = through
        .refresh(&first.refresh_token)
        .await
        .expect("refreshed");
    let third = through
        .refresh(&second.refresh_token)
        .await
        .expect("refreshed");
    let other = through.login(name, PASSWORD).await;
    let reply = greeter
        .hello(&third.access_token)
        .await
        .expect("a valid token is accepted");
    assert_eq!(
        (reply.sub, reply.session_id, reply.scope),
        (user_id, third.session_id.clone(), third.scope.clone())
    );

    revoke(through, kind, name, &first).await;
    let returned = Instant::now();
    let mut concerned = vec![
        &first.access_token,
        &second.access_token,
        &third.access_token,
    ];
    if kind.whole_user() {
        concerned.push(&other.access_token);
    }
    while !concerned.is_empty() {
        assert!(
            returned.elapsed() < Duration::from_secs(5),
            "{kind:?} ({name}): still accepted after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut left = Vec::new();
        for token in concerned {
            match greeter.answer(token).await {
                Answer::Accepted => left.push(token),
                answer => assert_eq!(answer, invalid(), "{kind:?} ({name})"),
            }
        }
        concerned = left;
    }
    let delay = returned.elapsed();
    if !kind.whole_user() {
        let answer = greeter.answer(&other.access_token).await;
        assert_eq!(
            answer,
            Answer::Accepted,
            "{kind:?} ({name}): only its session"
        );
    }
    delay
}

/// `trials` trials of each kind of revocation through `through`, the greeter following
/// `latchkey` with its own verifier; prints p50 and max of each kind, and asserts every max < 1 s.
pub async fn measure(through: &TestApp, greeter: &Greeter, trials: usize, label: &str) {
    let mut summary = Vec::new();
    for kind in Revocation::ALL {
        let mut delays = Vec::with_capacity(trials);
        for i in 0..trials {
            let name = format!("{kind:?}-{i}").to_lowercase();
            delays.push(trial(through, greeter, kind, &name).await);
        }
        delays.sort();
        let (p50, max) = (delays[trials / 2], delays[trials - 1]);
        eprintln!("{label}: {kind:?} refused after p50 {p50:?}, max {max:?} ({trials} trials)");
        summary.push((kind, max));
    }
    for (kind, max) in summary {
        assert!(
            max < Duration::from_secs(1),
            "{label}: {kind:?} took {max:?}"
        );
    }
}
