//! The trials of the 1 s promise: after each kind of revocation, how long until the greeter
//! refuses the tokens concerned, polled as a client would ask.

use std::time::{Duration, Instant};

use latchkey::{
    domain::types::Password,
    grpc::pb::{self, TokenResponse},
    service::{Admin, UserRef},
};

use super::{Answer, Greeter, invalid};
use crate::helpers::{
    app::{TestApp, disable_user, username},
    client::{reason, with_bearer},
};

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
    /// An admin's DeleteUser: every session, and the user.
    Delete,
}

impl Revocation {
    pub const ALL: [Revocation; 6] = [
        Self::Revoke,
        Self::LogoutAll,
        Self::PasswordChange,
        Self::Disable,
        Self::Reuse,
        Self::Delete,
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
            let user = UserRef::Name(name);
            let admin = Admin::command_line();
            let changed = through.service.set_password(&user, password, &admin).await;
            Some(changed.expect("changed").revoked_sessions)
        }
        Revocation::Disable => Some(disable_user(&through.service, name.as_str()).await),
        Revocation::Delete => {
            let user = UserRef::Name(name);
            let deleted = through
                .service
                .delete_user(&user, &Admin::command_line())
                .await;
            Some(deleted.expect("deleted"))
        }
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

/// A trial's user, with two sessions: the first refreshed twice (so that presenting its first
/// refresh token again is reuse), and another.
struct Sessions {
    first: TokenResponse,
    /// The access tokens of the first session, one per refresh.
    first_access: [String; 3],
    other: TokenResponse,
}

/// Creates user `name` and opens its sessions through `through`; the greeter accepts them and
/// answers who the caller is.
async fn open_sessions(through: &TestApp, greeter: &Greeter, name: &str) -> Sessions {
    let user_id = through.add_user(name, PASSWORD, &["read", "write"]).await;
    let first = through.login(name, PASSWORD).await;
    let second = through.refresh(&first.refresh_token).await;
    let second = second.expect("refreshed");
    let third = through.refresh(&second.refresh_token).await;
    let third = third.expect("refreshed");
    let reply = greeter.hello(&third.access_token).await;
    let reply = reply.expect("a valid token is accepted");
    assert_eq!(
        (reply.sub, reply.session_id, reply.scope),
        (user_id, third.session_id.clone(), third.scope.clone())
    );
    let first_access = [
        first.access_token.clone(),
        second.access_token,
        third.access_token,
    ];
    let other = through.login(name, PASSWORD).await;
    Sessions {
        first,
        first_access,
        other,
    }
}

/// Asks the greeter about `tokens` at once, then every 10 ms (5 s at most), until it refuses them
/// all; how long after `since` the last was seen refused.
async fn until_refused(
    greeter: &Greeter,
    mut tokens: Vec<&str>,
    since: Instant,
    what: &str,
) -> Duration {
    loop {
        let mut left = Vec::new();
        for token in tokens {
            match greeter.answer(token).await {
                Answer::Accepted => left.push(token),
                answer => assert_eq!(answer, invalid(), "{what}"),
            }
        }
        tokens = left;
        let elapsed = since.elapsed();
        if tokens.is_empty() {
            return elapsed;
        }
        assert!(
            elapsed < Duration::from_secs(5),
            "{what}: still accepted after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One trial: user `name` opens its sessions through `through`, then `kind` is made through
/// `through`. How long after the call returned the greeter refused every access token concerned.
async fn trial(through: &TestApp, greeter: &Greeter, kind: Revocation, name: &str) -> Duration {
    let sessions = open_sessions(through, greeter, name).await;
    revoke(through, kind, name, &sessions.first).await;
    let returned = Instant::now();
    let mut concerned: Vec<&str> = sessions.first_access.iter().map(String::as_str).collect();
    if kind.whole_user() {
        concerned.push(&sessions.other.access_token);
    }
    let what = format!("{kind:?} ({name})");
    let delay = until_refused(greeter, concerned, returned, &what).await;
    if !kind.whole_user() {
        let answer = greeter.answer(&sessions.other.access_token).await;
        assert_eq!(answer, Answer::Accepted, "{what}: only its session");
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
