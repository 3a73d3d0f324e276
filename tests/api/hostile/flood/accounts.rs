//! The flood's account calls: AdminService's RPCs and AuthService's ListActivity and
//! ChangePassword. For each, a request of random field values, its path, what it may fail with and
//! what an OK answer is.

use latchkey::grpc::pb;
use prost::Message;

use super::{
    messages::{after_seq, user_id},
    random::{Known, Rng, text},
};

/// The account calls the flood makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Account {
    CreateUser,
    GetUser,
    ListUsers,
    SetPassword,
    SetScopes,
    SetDisabled,
    DeleteUser,
    RotateSigningKey,
    ListSigningKeys,
    ListEvents,
    WatchEvents,
    ListActivity,
    ChangePassword,
}

const STORE: &str = "STORE_UNAVAILABLE";
/// Every AdminService call: not an admin, or a request it refuses.
const ADMIN: [&str; 4] = [
    "ACCESS_TOKEN_INVALID",
    "NOT_ALLOWED",
    "INVALID_ARGUMENT",
    STORE,
];
/// Those naming a user.
const NAMING: [&str; 5] = [
    "ACCESS_TOKEN_INVALID",
    "NOT_ALLOWED",
    "INVALID_ARGUMENT",
    "USER_NOT_FOUND",
    STORE,
];

impl Account {
    pub const ALL: [Account; 13] = [
        Self::CreateUser,
        Self::GetUser,
        Self::ListUsers,
        Self::SetPassword,
        Self::SetScopes,
        Self::SetDisabled,
        Self::DeleteUser,
        Self::RotateSigningKey,
        Self::ListSigningKeys,
        Self::ListEvents,
        Self::WatchEvents,
        Self::ListActivity,
        Self::ChangePassword,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::CreateUser => "/latchkey.v1.AdminService/CreateUser",
            Self::GetUser => "/latchkey.v1.AdminService/GetUser",
            Self::ListUsers => "/latchkey.v1.AdminService/ListUsers",
            Self::SetPassword => "/latchkey.v1.AdminService/SetPassword",
            Self::SetScopes => "/latchkey.v1.AdminService/SetScopes",
            Self::SetDisabled => "/latchkey.v1.AdminService/SetDisabled",
            Self::DeleteUser => "/latchkey.v1.AdminService/DeleteUser",
            Self::RotateSigningKey => "/latchkey.v1.AdminService/RotateSigningKey",
            Self::ListSigningKeys => "/latchkey.v1.AdminService/ListSigningKeys",
            Self::ListEvents => "/latchkey.v1.AdminService/ListEvents",
            Self::WatchEvents => "/latchkey.v1.AdminService/WatchEvents",
            Self::ListActivity => "/latchkey.v1.AuthService/ListActivity",
            Self::ChangePassword => "/latchkey.v1.AuthService/ChangePassword",
        }
    }

    /// The reasons the call may fail with (API.md).
    pub fn reasons(self) -> &'static [&'static str] {
        match self {
            Self::CreateUser => &[
                "ACCESS_TOKEN_INVALID",
                "NOT_ALLOWED",
                "INVALID_ARGUMENT",
                "USERNAME_TAKEN",
                "OVERLOADED",
                STORE,
            ],
            Self::SetPassword => &[
                "ACCESS_TOKEN_INVALID",
                "NOT_ALLOWED",
                "INVALID_ARGUMENT",
                "USER_NOT_FOUND",
                "OVERLOADED",
                STORE,
            ],
            Self::GetUser | Self::SetScopes | Self::SetDisabled | Self::DeleteUser => &NAMING,
            Self::ListUsers | Self::RotateSigningKey | Self::ListSigningKeys | Self::ListEvents => {
                &ADMIN
            }
            Self::WatchEvents => &[
                "ACCESS_TOKEN_INVALID",
                "NOT_ALLOWED",
                "INVALID_ARGUMENT",
                "OVERLOADED",
                STORE,
            ],
            Self::ListActivity => &["ACCESS_TOKEN_INVALID", "INVALID_ARGUMENT", STORE],
            Self::ChangePassword => &[
                "ACCESS_TOKEN_INVALID",
                "INVALID_ARGUMENT",
                "INVALID_CREDENTIALS",
                "TOO_MANY_ATTEMPTS",
                "OVERLOADED",
                STORE,
            ],
        }
    }

    /// Whether `body` decodes as the call's request.
    pub fn decodes(self, body: &[u8]) -> bool {
        match self {
            Self::CreateUser => pb::CreateUserRequest::decode(body).is_ok(),
            Self::GetUser => pb::GetUserRequest::decode(body).is_ok(),
            Self::ListUsers => pb::ListUsersRequest::decode(body).is_ok(),
            Self::SetPassword => pb::SetPasswordRequest::decode(body).is_ok(),
            Self::SetScopes => pb::SetScopesRequest::decode(body).is_ok(),
            Self::SetDisabled => pb::SetDisabledRequest::decode(body).is_ok(),
            Self::DeleteUser => pb::DeleteUserRequest::decode(body).is_ok(),
            Self::RotateSigningKey => pb::RotateSigningKeyRequest::decode(body).is_ok(),
            Self::ListSigningKeys => pb::ListSigningKeysRequest::decode(body).is_ok(),
            Self::ListEvents => pb::ListEventsRequest::decode(body).is_ok(),
            Self::WatchEvents => pb::WatchEventsRequest::decode(body).is_ok(),
            Self::ListActivity => pb::ListActivityRequest::decode(body).is_ok(),
            Self::ChangePassword => pb::ChangePasswordRequest::decode(body).is_ok(),
        }
    }

    /// Whether an OK answer is the call's response, as the contract describes it.
    pub fn answer_fits(self, answer: &[u8]) -> bool {
        match self {
            Self::CreateUser
            | Self::GetUser
            | Self::SetPassword
            | Self::SetScopes
            | Self::SetDisabled => pb::User::decode(answer).is_ok_and(|u| !u.user_id.is_empty()),
            Self::ListUsers => pb::ListUsersResponse::decode(answer)
                .is_ok_and(|l| l.users.windows(2).all(|w| w[0].username < w[1].username)),
            Self::DeleteUser => pb::DeleteUserResponse::decode(answer).is_ok(),
            Self::RotateSigningKey => {
                pb::SigningKey::decode(answer).is_ok_and(|k| k.state == "active")
            }
            Self::ListSigningKeys => pb::ListSigningKeysResponse::decode(answer).is_ok(),
            Self::ListEvents => pb::ListEventsResponse::decode(answer)
                .is_ok_and(|l| l.events.windows(2).all(|w| w[0].seq > w[1].seq)),
            Self::WatchEvents => pb::AccountEvent::decode(answer).is_ok(),
            Self::ListActivity => pb::ListActivityResponse::decode(answer).is_ok(),
            Self::ChangePassword => pb::ChangePasswordResponse::decode(answer).is_ok(),
        }
    }

    /// A well-formed request of random field values.
    pub fn message(self, rng: &mut Rng, known: &Known) -> Vec<u8> {
        match self {
            Self::CreateUser => pb::CreateUserRequest {
                username: name(rng, known),
                password: text(rng, known),
                scopes: scopes(rng, known),
            }
            .encode_to_vec(),
            Self::GetUser => pb::GetUserRequest {
                user_id: user_id(rng, known),
                username: name(rng, known),
            }
            .encode_to_vec(),
            Self::ListUsers => pb::ListUsersRequest {
                page_size: page_size(rng),
                page_token: text(rng, known),
                username_prefix: name(rng, known),
            }
            .encode_to_vec(),
            Self::SetPassword => pb::SetPasswordRequest {
                user_id: user_id(rng, known),
                password: text(rng, known),
            }
            .encode_to_vec(),
            Self::SetScopes => pb::SetScopesRequest {
                user_id: user_id(rng, known),
                scopes: scopes(rng, known),
            }
            .encode_to_vec(),
            Self::SetDisabled => pb::SetDisabledRequest {
                user_id: user_id(rng, known),
                disabled: rng.chance(50),
            }
            .encode_to_vec(),
            Self::DeleteUser => pb::DeleteUserRequest {
                user_id: user_id(rng, known),
            }
            .encode_to_vec(),
            Self::RotateSigningKey => pb::RotateSigningKeyRequest {}.encode_to_vec(),
            Self::ListSigningKeys => pb::ListSigningKeysRequest {}.encode_to_vec(),
            Self::ListEvents => pb::ListEventsRequest {
                user_id: user_id(rng, known),
                kinds: (0..rng.below(4)).map(|_| kind(rng, known)).collect(),
                page_size: page_size(rng),
                page_token: text(rng, known),
            }
            .encode_to_vec(),
            Self::WatchEvents => pb::WatchEventsRequest {
                after_seq: after_seq(rng),
            }
            .encode_to_vec(),
            Self::ListActivity => pb::ListActivityRequest {
                page_size: page_size(rng),
                page_token: text(rng, known),
            }
            .encode_to_vec(),
            Self::ChangePassword => pb::ChangePasswordRequest {
                current_password: (*rng.pick(&["correct horse", "battery staple"])).to_owned(),
                new_password: text(rng, known),
            }
            .encode_to_vec(),
        }
    }
}

fn name(rng: &mut Rng, known: &Known) -> String {
    match rng.below(4) {
        0 => (*rng.pick(&["alice", "root", "mallory", "a", ""])).to_owned(),
        1 => format!("user{}", rng.below(50)),
        _ => text(rng, known),
    }
}

fn scopes(rng: &mut Rng, known: &Known) -> Vec<String> {
    let scope = |rng: &mut Rng| match rng.below(3) {
        0 => (*rng.pick(&["read", "write", "latchkey.admin"])).to_owned(),
        _ => text(rng, known),
    };
    (0..rng.below(4)).map(|_| scope(rng)).collect()
}

fn kind(rng: &mut Rng, known: &Known) -> String {
    match rng.below(3) {
        0 => (*rng.pick(&["login", "login_failed", "user_deleted", "Login"])).to_owned(),
        _ => text(rng, known),
    }
}

fn page_size(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => 0,
        1 => u32::try_from(rng.below(1001)).unwrap_or(0),
        2 => 1001,
        _ => rng.next() as u32,
    }
}
