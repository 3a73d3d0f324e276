//! User administration, as the CLI does it.

use super::{Service, ServiceError};
use crate::{
    domain::{
        revocation::Reason,
        types::{Password, Username},
    },
    store::{StoreError, UserRecord},
};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user named {0:?}")]
    Unknown(String),
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("{0:?} is not a scope: scopes are single words")]
    BadScope(String),
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
        name: &str,
        password: String,
        scopes: Vec<String>,
    ) -> Result<String, UserError> {
        let username = Username::parse(name).map_err(ServiceError::from)?;
        let password = Password::parse(password).map_err(ServiceError::from)?;
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(UserError::BadScope(bad.clone()));
        }
        let password_hash = self
            .hasher
            .hash(password)
            .await
            .map_err(ServiceError::from)?;
        let user = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.as_str().to_owned(),
            password_hash: password_hash.into(),
            scopes,
            disabled: false,
            not_before: 0,
        };
        match self.store.create_user(&user, self.clock.now()).await {
            Ok(()) => Ok(user.id),
            Err(StoreError::Conflict) => Err(UserError::Exists(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    async fn existing(&self, name: &str) -> Result<UserRecord, UserError> {
        self.store
            .user_by_name(name)
            .await?
            .ok_or_else(|| UserError::Unknown(name.to_owned()))
    }

    /// Changes the password and revokes every session of the user.
    pub async fn set_password(&self, name: &str, password: String) -> Result<u32, UserError> {
        let user = self.existing(name).await?;
        let password = Password::parse(password).map_err(ServiceError::from)?;
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
    pub async fn disable_user(&self, name: &str) -> Result<u32, UserError> {
        let user = self.existing(name).await?;
        Ok(self
            .revoke_user(&user.id, Reason::Disable, None, true)
            .await?)
    }

    /// Lets the user log in again. Tokens from before the disable stay dead.
    pub async fn enable_user(&self, name: &str) -> Result<(), UserError> {
        let user = self.existing(name).await?;
        self.store.enable_user(&user.id).await?;
        Ok(())
    }
}
