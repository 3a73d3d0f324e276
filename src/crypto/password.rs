//! argon2id password hashing (OWASP parameters by default), run on tokio's blocking pool under a
//! bounded concurrency: each hash holds `m_cost` KiB, so an unbounded queue would be a memory bomb.
//! A caller first takes an [`Admission`], a place in the queue, or is told `Overloaded` at once:
//! Login takes it before it does anything else, so a login turned away has written nothing.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
    password_hash::phc::PasswordHash,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Span;

use crate::domain::{secret::Secret, types::Password};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks in flight")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Cost {
    /// OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// Hashes running now.
    running: Arc<Semaphore>,
    /// Hashes running or waiting; past this, `Overloaded`.
    admitted: Arc<Semaphore>,
    /// Verified against when the user is unknown, so that both paths cost the same.
    dummy: Arc<str>,
    /// What every hash made now starts with (`$argon2id$v=19$m=…,t=…,p=…$`): a stored hash that
    /// does not was made under other parameters.
    current: Arc<str>,
}

/// A place in the hashing queue, held until the hash it is spent on has finished.
pub struct Admission {
    hasher: Hasher,
    permit: OwnedSemaphorePermit,
}

/// What a password check found.
pub struct Verdict {
    pub matches: bool,
    /// The password hashed again under today's parameters, when it matched a hash made under
    /// others. Its salt is the old hash's, so that concurrent logins re-hash to the same value.
    pub rehashed: Option<Secret<String>>,
}

impl Hasher {
    /// `concurrency` hashes run at once and as many again per slot may wait for one.
    pub fn new(cost: Cost, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError::Internal(e.to_string()))?;
        let concurrency = concurrency.max(1);
        let mut hasher = Self {
            params,
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency * 8)),
            dummy: Arc::from(""),
            current: Arc::from(""),
        };
        let dummy = hasher.hash_now(b"latchkey dummy password")?;
        // `$argon2id$v=19$m=…,t=…,p=…$`: the fields before the salt.
        let prefix_len = dummy.match_indices('$').nth(3).map_or(0, |(i, _)| i + 1);
        hasher.current = Arc::from(&dummy[..prefix_len]);
        hasher.dummy = Arc::from(dummy);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &[u8]) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Internal(e.to_string()))
    }

    /// A place in the queue, or `Overloaded` at once when it is full.
    pub fn admit(&self) -> Result<Admission, HashError> {
        let permit = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Overloaded)?;
        Ok(Admission {
            hasher: self.clone(),
            permit,
        })
    }

    /// A PHC string for a new password.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let this = self.clone();
        self.admit()?
            .run(move || this.hash_now(password.expose().as_bytes()))
            .await?
    }

    /// Checks `password` against `phc`, or against the dummy hash when there is none (unknown user),
    /// so that both take the same time. A stored hash that does not parse never matches.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        Ok(self.admit()?.check(password, phc).await?.matches)
    }

    /// `password` hashed under today's parameters with the salt of `phc`, unless `phc` already is
    /// of today's parameters.
    fn rehash(&self, password: &[u8], phc: &str) -> Option<Secret<String>> {
        if phc.starts_with(&*self.current) {
            return None;
        }
        let salt = PasswordHash::new(phc).ok()?.salt?;
        let hash = self.argon2().hash_password_with_salt(password, &salt);
        hash.ok().map(|h| Secret::new(h.to_string()))
    }
}

impl Admission {
    /// [`Hasher::verify`], in this place of the queue, also re-hashing a match made under other
    /// parameters (one more hash, once per user and change of parameters).
    pub async fn check(
        self,
        password: Password,
        phc: Option<String>,
    ) -> Result<Verdict, HashError> {
        let hasher = self.hasher.clone();
        self.run(move || {
            let password = password.expose().as_bytes();
            let Some(phc) = phc else {
                let _ = hasher.argon2().verify_password(password, &*hasher.dummy);
                return Verdict {
                    matches: false,
                    rehashed: None,
                };
            };
            let matches = hasher
                .argon2()
                .verify_password(password, phc.as_str())
                .is_ok();
            Verdict {
                matches,
                rehashed: matches.then(|| hasher.rehash(password, &phc)).flatten(),
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let running = self
            .hasher
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Internal(e.to_string()))?;
        let span = Span::current();
        let admitted = self.permit;
        // The permits travel with the work: a caller that gives up (a cancelled call) frees its
        // slot only when the hash it started has finished, so the bound holds whatever clients do.
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            span.in_scope(work)
        })
        .await
        .map_err(|e| HashError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
