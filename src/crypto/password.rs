//! argon2id password hashing (OWASP parameters by default), run on tokio's blocking pool under a
//! bounded concurrency: each hash holds `m_cost` KiB, so an unbounded queue would be a memory bomb.
//! Beyond the bound callers are told `Overloaded` at once.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
use tracing::Span;

use crate::domain::types::Password;

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
        };
        hasher.dummy = Arc::from(hasher.hash_now(b"latchkey dummy password")?);
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

    /// A PHC string for a new password.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let this = self.clone();
        self.run(move || this.hash_now(password.expose().as_bytes()))
            .await?
    }

    /// Checks `password` against `phc`, or against the dummy hash when there is none (unknown user),
    /// so that both take the same time. A stored hash that does not parse never matches.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        let argon2 = self.argon2();
        let dummy = self.dummy.clone();
        self.run(move || {
            let known = phc.is_some();
            let hash = phc.as_deref().unwrap_or(&dummy);
            let matches = argon2
                .verify_password(password.expose().as_bytes(), hash)
                .is_ok();
            known && matches
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Overloaded)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Internal(e.to_string()))?;
        let span = Span::current();
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
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(
            Cost {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = cheap();
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(
            h.verify(pw("correct horse"), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify(pw("wrong"), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let h = cheap();
        assert!(!h.verify(pw("latchkey dummy password"), None).await.unwrap());
        assert!(
            !h.verify(pw("x"), Some("not a phc string".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_default_cost_is_owasps() {
        assert_eq!(
            Cost::default(),
            Cost {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[tokio::test]
    async fn beyond_the_queue_callers_are_turned_away_at_once() {
        let h = cheap();
        let held: Vec<_> = (0..8)
            .map(|_| h.admitted.clone().try_acquire_owned().unwrap())
            .collect();
        assert!(matches!(
            h.verify(pw("x"), None).await,
            Err(HashError::Overloaded)
        ));
        drop(held);
        assert!(h.verify(pw("x"), None).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_cancelled_check_keeps_its_slot_until_its_hash_is_done() {
        // Slow enough (tens of ms) that the hash outlives the cancellation.
        let h = Hasher::new(
            Cost {
                memory_kib: 64 * 1024,
                iterations: 3,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let task = tokio::spawn({
            let h = h.clone();
            async move { h.verify(pw("x"), None).await }
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while h.running.available_permits() == 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the hash starts");
        task.abort();
        let _ = task.await;
        assert_eq!(
            h.running.available_permits(),
            0,
            "the hash still runs, so its slot stays taken"
        );
    }
}
