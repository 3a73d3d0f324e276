//! One task's calls against the server: what it holds (a client on one connection, a token, its
//! own refresh chain) and what one call is. A call that fails answers its kind of failure, the
//! gRPC code in upper snake case (`UNAVAILABLE`), or `INACTIVE` / `DENIED` / `NOT_SERVING` when
//! the server answered but did not accept.

use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest,
    attribute_context::{HttpRequest, Request},
    authorization_client::AuthorizationClient,
};
use latchkey::grpc::pb::{self, auth_service_client::AuthServiceClient};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A task's state for one op.
pub enum Caller {
    Health(HealthClient<Channel>),
    Introspect {
        auth: AuthServiceClient<Channel>,
        token: String,
    },
    Check {
        authz: AuthorizationClient<Channel>,
        /// Boxed: a `CheckRequest` is over a kilobyte, the other variants a few hundred bytes.
        request: Box<CheckRequest>,
    },
    /// A refresh chain: `token` is the next refresh token to spend, `None` once the chain broke
    /// (a new one is opened by logging in again, outside the timed call).
    Refresh {
        auth: AuthServiceClient<Channel>,
        login: pb::LoginRequest,
        token: Option<String>,
    },
    Login {
        auth: AuthServiceClient<Channel>,
        request: pb::LoginRequest,
    },
}

/// Pause after a failed attempt to open a new chain, so that a refusing server is not spun on.
const RELOGIN_PAUSE: Duration = Duration::from_millis(100);

impl Caller {
    /// What must be done before the next timed call: a refresh task whose chain broke logs in
    /// again. A failure here is recorded as the task's next failure.
    pub async fn prepare(&mut self) -> Result<(), String> {
        if let Caller::Refresh { auth, login, token } = self
            && token.is_none()
        {
            match auth.login(login.clone()).await {
                Ok(pair) => *token = Some(pair.into_inner().refresh_token),
                Err(status) => {
                    tokio::time::sleep(RELOGIN_PAUSE).await;
                    return Err(kind(&status));
                }
            }
        }
        Ok(())
    }

    /// One timed call.
    pub async fn call(&mut self) -> Result<(), String> {
        match self {
            Caller::Health(health) => {
                let answer = health.check(HealthCheckRequest::default()).await;
                let status = answer.map_err(|s| kind(&s))?.into_inner().status;
                if status == ServingStatus::Serving as i32 {
                    Ok(())
                } else {
                    Err("NOT_SERVING".into())
                }
            }
            Caller::Introspect { auth, token } => {
                let request = pb::IntrospectRequest {
                    token: token.clone(),
                    token_type_hint: String::new(),
                };
                let answer = auth.introspect(request).await.map_err(|s| kind(&s))?;
                if answer.into_inner().active {
                    Ok(())
                } else {
                    Err("INACTIVE".into())
                }
            }
            Caller::Check { authz, request } => {
                let answer = authz
                    .check((**request).clone())
                    .await
                    .map_err(|s| kind(&s))?;
                match answer.into_inner().status {
                    Some(status) if status.code == Code::Ok as i32 => Ok(()),
                    _ => Err("DENIED".into()),
                }
            }
            Caller::Refresh { auth, token, .. } => {
                let Some(spent) = token.clone() else {
                    return Err("NO_CHAIN".into());
                };
                let request = pb::RefreshRequest {
                    refresh_token: spent,
                };
                match auth.refresh(request).await {
                    Ok(pair) => {
                        *token = Some(pair.into_inner().refresh_token);
                        Ok(())
                    }
                    Err(status) => {
                        // A lost answer (a broken connection is `UNKNOWN` to tonic) is retried
                        // with the same token: inside the grace window the server hands out the
                        // same successor. A refusal ends the chain.
                        let lost = [Code::Unavailable, Code::DeadlineExceeded, Code::Unknown];
                        if !lost.contains(&status.code()) {
                            *token = None;
                        }
                        Err(kind(&status))
                    }
                }
            }
            Caller::Login { auth, request } => auth
                .login(request.clone())
                .await
                .map(drop)
                .map_err(|s| kind(&s)),
        }
    }
}

/// The ext_authz request a sidecar sends for an HTTP request bearing `access_token`.
pub fn check_request(access_token: &str) -> CheckRequest {
    let http = HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: [("authorization".to_owned(), format!("Bearer {access_token}"))].into(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// `RESOURCE_EXHAUSTED` for `Code::ResourceExhausted`: the names of the gRPC status-code guide.
pub fn kind(status: &Status) -> String {
    let camel = format!("{:?}", status.code());
    let mut snake = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_uppercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_as_the_grpc_guide_names_them() {
        assert_eq!(kind(&Status::unavailable("")), "UNAVAILABLE");
        assert_eq!(kind(&Status::resource_exhausted("")), "RESOURCE_EXHAUSTED");
        assert_eq!(kind(&Status::unauthenticated("")), "UNAUTHENTICATED");
        assert_eq!(kind(&Status::deadline_exceeded("")), "DEADLINE_EXCEEDED");
    }
}
