//! One random call: a body for the method (half the time a well-formed message of random field
//! values, half the time bytes that are not the message) and an `authorization` value or none.

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context,
};
use latchkey::grpc::pb;
use prost::Message;
use tonic_health::pb::HealthCheckRequest;

use super::{
    contract::Method,
    random::{Known, Rng, damaged, garbage, real, text},
};

/// The users the flood logs in as: name, password, scopes. The last one is disabled.
pub const USERS: [(&str, &str, &[&str]); 3] = [
    ("alice", "correct horse", &["read", "write"]),
    ("root", "battery staple", &["latchkey.admin", "read"]),
    ("mallory", "disabled long ago", &["read"]),
];
/// A name no user has, tried again and again: its throttle locks.
const STRANGER: &str = "nobody";

/// The request body of one call.
pub fn body(method: Method, rng: &mut Rng, known: &Known) -> Vec<u8> {
    let valid = message(method, rng, known);
    if rng.chance(50) {
        valid
    } else {
        garbage(rng, &valid)
    }
}

/// A well-formed request of random field values.
fn message(method: Method, rng: &mut Rng, known: &Known) -> Vec<u8> {
    match method {
        Method::Login => login(rng, known).encode_to_vec(),
        Method::Refresh => pb::RefreshRequest {
            refresh_token: token(rng, known),
        }
        .encode_to_vec(),
        Method::Revoke => pb::RevokeRequest {
            token: text(rng, known),
            token_type_hint: hint(rng, known),
        }
        .encode_to_vec(),
        Method::Introspect => pb::IntrospectRequest {
            token: token(rng, known),
            token_type_hint: hint(rng, known),
        }
        .encode_to_vec(),
        Method::LogoutAll => pb::LogoutAllRequest {
            user_id: user_id(rng, known),
        }
        .encode_to_vec(),
        Method::ListSessions => pb::ListSessionsRequest {}.encode_to_vec(),
        Method::GetJwks => pb::GetJwksRequest {}.encode_to_vec(),
        Method::WatchRevocations => pb::WatchRevocationsRequest {
            after_seq: after_seq(rng),
        }
        .encode_to_vec(),
        Method::HealthCheck => HealthCheckRequest {
            service: match rng.below(3) {
                0 => String::new(),
                1 => "latchkey.v1.AuthService".into(),
                _ => text(rng, known),
            },
        }
        .encode_to_vec(),
        Method::ExtAuthzCheck => check(rng, known).encode_to_vec(),
        Method::Account(call) => call.message(rng, known),
    }
}

/// A login as a known user (mostly with the right password and plain fields: the sessions it
/// opens feed the flood real tokens) or as anyone with anything.
fn login(rng: &mut Rng, known: &Known) -> pb::LoginRequest {
    let (username, password, plain) = if rng.chance(50) {
        let (name, password, _) = rng.pick(&USERS);
        let password = if rng.chance(75) {
            (*password).to_owned()
        } else {
            text(rng, known)
        };
        ((*name).to_owned(), password, rng.chance(75))
    } else if rng.chance(20) {
        (STRANGER.to_owned(), text(rng, known), true)
    } else {
        (text(rng, known), text(rng, known), false)
    };
    let field = |rng: &mut Rng| {
        if plain || rng.chance(30) {
            (*rng.pick(&["", "read", "write", "latchkey.admin", "laptop"])).to_owned()
        } else {
            text(rng, known)
        }
    };
    pb::LoginRequest {
        username,
        password,
        scopes: (0..rng.below(4)).map(|_| field(rng)).collect(),
        client_id: field(rng),
        device: field(rng),
    }
}

/// A token field: often one the server issued (live, spent or revoked by now), else any text.
fn token(rng: &mut Rng, known: &Known) -> String {
    if rng.chance(40) {
        real(rng, known)
    } else {
        text(rng, known)
    }
}

fn hint(rng: &mut Rng, known: &Known) -> String {
    match rng.below(4) {
        0 => "access_token".into(),
        1 => "refresh_token".into(),
        2 => String::new(),
        _ => text(rng, known),
    }
}

/// A user to log out: the caller's own (empty), a real user, or any text (NUL bytes included, which
/// PostgreSQL cannot store).
pub fn user_id(rng: &mut Rng, known: &Known) -> String {
    match rng.below(5) {
        0 => String::new(),
        1 if !known.user_ids.is_empty() => rng.pick(&known.user_ids).clone(),
        2 => format!("{}\0", uuid::Uuid::from_u64_pair(rng.next(), rng.next())),
        _ => text(rng, known),
    }
}

pub fn after_seq(rng: &mut Rng) -> u64 {
    let half = 1u64 << 63;
    match rng.below(6) {
        0 => 0,
        1 => rng.next() >> 54,
        2 => half - 1,
        3 => half,
        4 => u64::MAX,
        _ => rng.next(),
    }
}

/// An `authorization` value: none, a real bearer token, a damaged or forged one, another scheme,
/// raw bytes (some not even text).
pub fn authorization(rng: &mut Rng, known: &Known) -> Option<Vec<u8>> {
    let access = |rng: &mut Rng| {
        if known.access.is_empty() {
            String::new()
        } else {
            rng.pick(&known.access).clone()
        }
    };
    let value = match rng.below(10) {
        0 | 1 => return None,
        2..=4 => format!("Bearer {}", access(rng)),
        5 => {
            let token = access(rng);
            format!("Bearer {}", damaged(rng, &token))
        }
        6 => {
            let scheme = *rng.pick(&["bearer", "BEARER", "Basic", "", "Bearer ", "Bearer\t"]);
            format!("{scheme} {}", real(rng, known))
        }
        7 => format!("Bearer {}", text(rng, known)),
        8 => text(rng, known),
        _ => {
            return Some(
                (0..rng.below(60))
                    .map(|_| 0x20 + rng.below(0xE0) as u8)
                    .collect(),
            );
        }
    };
    Some(value.into_bytes())
}

/// An ext_authz request as Envoy would send it, with random headers, or an empty one.
fn check(rng: &mut Rng, known: &Known) -> CheckRequest {
    if rng.chance(10) {
        return CheckRequest::default();
    }
    let mut headers = HashMap::new();
    if let Some(value) = authorization(rng, known) {
        headers.insert(
            "authorization".to_owned(),
            String::from_utf8_lossy(&value).into_owned(),
        );
    }
    for _ in 0..rng.below(4) {
        let name = match rng.below(3) {
            0 => (*rng.pick(&[
                "x-latchkey-sub",
                "X-Latchkey-Admin",
                "x-latchkey-",
                "cookie",
            ]))
            .to_owned(),
            _ => text(rng, known),
        };
        headers.insert(name, text(rng, known));
    }
    let http = attribute_context::HttpRequest {
        method: "GET".into(),
        path: text(rng, known),
        headers,
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}
