//! User administration, the same for the CLI and AdminService: create, look up, list, change
//! password, scopes or disable, delete. Names, passwords and scopes arrive parsed; each change
//! commits with its account event, and the ones that end sessions revoke them in that same step.

use super::{Admin, Service, ServiceError, ServiceResult};
use crate::{
    domain::{
        UnixMs,
        event::EventKind,
        page::{PageKind, PageToken, page_size, prefix_range},
        types::{Password, Scope, Username},
    },
    store::{StoreError, UserRecord, UsersPage},
};

/// Longest user id looked up: ids are UUIDs; anything longer names nobody.
const MAX_USER_ID_BYTES: usize = 256;

/// A user as administration shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub user_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub created_at: UnixMs,
    pub live_sessions: u32,
}

impl UserView {
    fn new(user: UserRecord, live_sessions: i64) -> Self {
        Self {
            user_id: user.id,
            username: user.username,
            scopes: user.scopes,
            disabled: user.disabled,
            created_at: user.created_at,
            live_sessions: u32::try_from(live_sessions).unwrap_or(u32::MAX),
        }
    }
}

/// Names a user, by id (AdminService) or by name (the CLI, GetUser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name(Username),
}

/// A change that revoked sessions: the user after it, and how many sessions it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub user: UserView,
    pub revoked_sessions: u32,
}

/// One page of a user listing, and the token of the next (empty on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersListing {
    pub users: Vec<UserView>,
    pub next_page_token: String,
}

impl Service {
    /// Creates a user holding `scopes`.
    pub async fn create_user(
        &self,
        username: &Username,
        password: Password,
        scopes: Vec<Scope>,
        admin: &Admin,
    ) -> ServiceResult<UserView> {
        let password_hash = self.hasher.hash(password).await?;
        let user = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.as_str().to_owned(),
            password_hash: password_hash.into(),
            scopes: scopes.into_iter().map(Scope::into_string).collect(),
            disabled: false,
            not_before: 0,
            created_at: self.clock.now(),
        };
        let event = admin.event(&user.id, EventKind::UserCreated);
        match self.store.create_user(&user, &event).await {
            Ok(()) => {
                self.events.nudge();
                Ok(UserView::new(user, 0))
            }
            Err(StoreError::Conflict) => Err(ServiceError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_user(&self, user: &UserRef) -> ServiceResult<UserView> {
        let user = self.existing(user).await?;
        let live = self
            .store
            .count_user_sessions(&user.id, self.clock.now())
            .await?;
        Ok(UserView::new(user, live))
    }

    /// Users by name, those starting with `prefix`, a page at a time (`page_size` 0: the default).
    pub async fn list_users(
        &self,
        prefix: &str,
        page_size_asked: u32,
        page_token: &str,
    ) -> ServiceResult<UsersListing> {
        let limit = page_size(page_size_asked)?;
        let (from, until) = prefix_range(prefix);
        // A position before the prefix's range (a token of another listing) starts from its top.
        let after = match PageToken::parse(page_token, PageKind::Users)? {
            PageToken::AfterUsername(name) if name >= from => Some(name),
            _ => None,
        };
        let page = UsersPage {
            from: &from,
            until: &until,
            after: after.as_deref(),
            // One more than asked: whether it comes says whether there is a next page.
            limit: limit + 1,
            now: self.clock.now(),
        };
        let mut users: Vec<UserView> = self
            .store
            .users_page(&page)
            .await?
            .into_iter()
            .map(|(user, live)| UserView::new(user, live))
            .collect();
        let more = users.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_page_token = match users.last() {
            Some(last) if more => PageToken::AfterUsername(last.username.clone()).encode(),
            _ => String::new(),
        };
        Ok(UsersListing {
            users,
            next_page_token,
        })
    }

    /// Changes the password and revokes every session of the user.
    pub async fn set_password(
        &self,
        user: &UserRef,
        password: Password,
        admin: &Admin,
    ) -> ServiceResult<UserChange> {
        let user = self.existing(user).await?;
        let hash = self.hasher.hash(password).await?;
        let event = admin.event(&user.id, EventKind::PasswordChanged);
        let revoked = self.revoke_user(&user.id, event, Some(hash), false).await?;
        self.changed(&user.id, revoked).await
    }

    /// Replaces the scopes the user holds. Live sessions keep their grant until they end or
    /// refresh; a refresh grants only what the user still holds.
    pub async fn set_scopes(
        &self,
        user: &UserRef,
        scopes: Vec<Scope>,
        admin: &Admin,
    ) -> ServiceResult<UserView> {
        let user = self.existing(user).await?;
        let scopes: Vec<String> = scopes.into_iter().map(Scope::into_string).collect();
        let event = admin
            .event(&user.id, EventKind::ScopesChanged)
            .with_detail(format!("{}; scopes: {}", admin.by(), scopes.join(" ")));
        if !self
            .store
            .set_scopes(&user.id, &scopes, self.clock.now(), &event)
            .await?
        {
            return Err(ServiceError::UserNotFound);
        }
        self.events.nudge();
        self.get_user(&UserRef::Id(user.id)).await
    }

    /// Disables the user (logins fail with ACCOUNT_DISABLED; every session is revoked) or lets
    /// it log in again (tokens from before the disable stay dead). Setting what is already set
    /// changes nothing.
    pub async fn set_disabled(
        &self,
        user: &UserRef,
        disabled: bool,
        admin: &Admin,
    ) -> ServiceResult<UserChange> {
        let user = self.existing(user).await?;
        if user.disabled == disabled {
            return self.changed(&user.id, 0).await;
        }
        if disabled {
            let event = admin.event(&user.id, EventKind::Disabled);
            let revoked = self.revoke_user(&user.id, event, None, true).await?;
            return self.changed(&user.id, revoked).await;
        }
        let event = admin.event(&user.id, EventKind::Enabled);
        if !self
            .store
            .enable_user(&user.id, self.clock.now(), &event)
            .await?
        {
            return Err(ServiceError::UserNotFound);
        }
        self.events.nudge();
        self.changed(&user.id, 0).await
    }

    /// Revokes every session of the user, then forgets it; its account events stay. Returns how
    /// many sessions were revoked.
    pub async fn delete_user(&self, user: &UserRef, admin: &Admin) -> ServiceResult<u32> {
        let user = self.existing(user).await?;
        let event = admin.event(&user.id, EventKind::UserDeleted);
        let revoked = self.remove_user(&user.id, event).await?;
        self.usernames.forget(&user.id)?;
        Ok(revoked)
    }

    /// The user named, or `UserNotFound`.
    pub(super) async fn existing(&self, user: &UserRef) -> ServiceResult<UserRecord> {
        let found = match user {
            UserRef::Name(name) => self.store.user_by_name(name.as_str()).await?,
            UserRef::Id(id) if id.is_empty() => {
                return Err(ServiceError::InvalidArgument(
                    crate::domain::types::InputError::Missing("user_id"),
                ));
            }
            // No user id holds a NUL (PostgreSQL text cannot even be asked about one) or is
            // longer than a UUID by far.
            UserRef::Id(id) if id.contains('\0') || id.len() > MAX_USER_ID_BYTES => None,
            UserRef::Id(id) => self.store.user_by_id(id).await?,
        };
        found.ok_or(ServiceError::UserNotFound)
    }

    async fn changed(&self, user_id: &str, revoked_sessions: u32) -> ServiceResult<UserChange> {
        Ok(UserChange {
            user: self.get_user(&UserRef::Id(user_id.to_owned())).await?,
            revoked_sessions,
        })
    }
}
