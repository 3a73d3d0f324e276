//! User administration, as the CLI does it. Names, passwords and scopes arrive parsed.

use super::{Service, ServiceError};
use crate::{
    domain::{
        revocation::Reason,
        types::{Password, Scope, Username},
    },
    store::{StoreError, UserRecord},
};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user named {0:?}")]
    Unknown(String),
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl Service {
    /// Creates a user holding `scopes`; returns the new user id.
    pub async fn add_user(
        &self,
        username: &Username,
        password: Password,
        scopes: Vec<Scope>,
    ) -> Result<String, UserError> {
        let password_hash = self
            .hasher
            .hash(password)
            .await
            .map_err(ServiceError::from)?;
        let user = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.as_str().to_owned(),
            password_hash: password_hash.into(),
            scopes: scopes.into_iter().map(Scope::into_string).collect(),
            disabled: false,
            not_before: 0,
        };
        match self.store.create_user(&user, self.clock.now()).await {
            Ok(()) => Ok(user.id),
            Err(StoreError::Conflict) => Err(UserError::Exists(user.username)),
            Err(e) => Err(e.into()),
        }
    }

    async fn existing(&self, username: &Username) -> Result<UserRecord, UserError> {
        self.store
            .user_by_name(username.as_str())
            .await?
            .ok_or_else(|| UserError::Unknown(username.as_str().to_owned()))
    }

    /// Changes the password and revokes every session of the user.
    pub async fn set_password(
        &self,
        username: &Username,
        password: Password,
    ) -> Result<u32, UserError> {
        let user = self.existing(username).await?;
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(ServiceError::from)?;
        Ok(self
            .revoke_user(&user.id, Reason::PasswordChange, Some(hash), false)
            .await?)
    }

    /// Disables the user (logins fail with ACCOUNT_DISABLED) and revokes every session.
    pub async fn disable_user(&self, username: &Username) -> Result<u32, UserError> {
        let user = self.existing(username).await?;
        Ok(self
            .revoke_user(&user.id, Reason::Disable, None, true)
            .await?)
    }

    /// Lets the user log in again. Tokens from before the disable stay dead.
    pub async fn enable_user(&self, username: &Username) -> Result<(), UserError> {
        let user = self.existing(username).await?;
        self.store.enable_user(&user.id).await?;
        Ok(())
    }
}
