//! argon2id password hashing (OWASP parameters by default) on a fixed set of worker threads, one
//! per permit of the hashing concurrency. Each worker owns one argon2 memory block of today's
//! cost and reuses it for every hash it runs, so that all hashing together holds
//! `concurrency × m_cost`, allocated once (hashes allocating afresh on tokio's blocking pool left
//! the allocator holding hundreds of MB). The bound is on memory as much as on CPU, so an
//! unbounded queue would be a memory bomb: a caller first takes an [`Admission`], a place in the
//! queue, or is told `Overloaded` at once. Login takes it before it does anything else, so a login
//! turned away has written nothing.
//!
//! The workers run at a lower scheduling priority ([`NICENESS`]) than the rest of the server: a
//! flood of logins keeps them busy, and Introspect, ext_authz Check and Refresh, which a whole
//! mesh waits on, must not queue behind it for CPU. Logins still get every cycle the rest leaves.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex, PoisonError},
    thread,
};

use argon2::{
    Params,
    password_hash::{generate_salt, phc::PasswordHash},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Span;

use crate::domain::{secret::Secret, types::Password};

mod memory;
use memory::Memory;
pub use memory::blocks;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks in flight")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> HashError {
    HashError::Internal(e.to_string())
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

/// The nice value of the hashing threads (Linux; 0 is the default, 19 the lowest): at 10 a busy
/// hashing thread gets about a tenth of a core that a busy thread at 0 also wants.
pub const NICENESS: i32 = 10;

/// Work handed to a hashing worker, given the worker's memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// Hashes running or waiting; past this, `Overloaded`.
    admitted: Arc<Semaphore>,
    /// To the workers, in the order admitted. Only a holder of an `admitted` permit sends, once,
    /// and the permit goes with the job, so the channel (one place per permit) is never full. A
    /// worker takes its next job as soon as it has finished one, without waiting to be woken.
    jobs: mpsc::Sender<Job>,
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
    /// `concurrency` hashes run at once, on as many threads (which stop when the last clone of the
    /// hasher is dropped); 8 × `concurrency` are admitted in all, running or waiting.
    pub fn new(cost: Cost, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(internal)?;
        let concurrency = concurrency.max(1);
        let blocks = params.block_count();
        let dummy =
            Memory::new(blocks).phc(&params, b"latchkey dummy password", &generate_salt())?;
        // `$argon2id$v=19$m=…,t=…,p=…$`: the fields before the salt.
        let prefix_len = dummy.match_indices('$').nth(3).map_or(0, |(i, _)| i + 1);
        let (jobs, queue) = mpsc::channel(concurrency * 8);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..concurrency {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("latchkey-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    work(&queue, Memory::new(blocks));
                })
                .map_err(internal)?;
        }
        Ok(Self {
            params,
            admitted: Arc::new(Semaphore::new(concurrency * 8)),
            jobs,
            current: Arc::from(&dummy[..prefix_len]),
            dummy: Arc::from(dummy),
        })
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
        let params = self.params.clone();
        self.admit()?
            .run(move |memory| memory.phc(&params, password.expose().as_bytes(), &generate_salt()))
            .await?
    }

    /// Checks `password` against `phc`, or against the dummy hash when there is none (unknown user),
    /// so that both take the same time. A stored hash that does not parse never matches.
    pub async fn verify(&self, password: Password, phc: Option<String>) -> Result<bool, HashError> {
        Ok(self.admit()?.check(password, phc).await?.matches)
    }

    /// `password` hashed under today's parameters with the salt of `phc`, unless `phc` already is
    /// of today's parameters.
    fn rehash(&self, memory: &mut Memory, password: &[u8], phc: &str) -> Option<Secret<String>> {
        if phc.starts_with(&*self.current) {
            return None;
        }
        let salt = PasswordHash::new(phc).ok()?.salt?;
        let hash = memory.phc(&self.params, password, &salt);
        hash.ok().map(Secret::new)
    }
}

/// The calling thread (one of the workers) at [`NICENESS`]. Raising one's own nice value needs no
/// privilege; should it fail all the same, the worker hashes at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS) {
        tracing::warn!(error = %e, "could not lower the priority of a hashing thread");
    }
}

/// A worker: runs jobs in its own memory until every sender is gone.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, mut memory: Memory) {
    loop {
        // The lock is held while waiting only: the worker holding it takes the next job, and the
        // next idle worker waits in its place while the job runs.
        let job = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(job) = job else { return };
        // A job that panics (none is expected) loses its answer, not the worker.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
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
        self.run(move |memory| {
            let password = password.expose().as_bytes();
            let Some(phc) = phc else {
                let _ = memory.matches(password, &hasher.dummy);
                return Verdict {
                    matches: false,
                    rehashed: None,
                };
            };
            let matches = memory.matches(password, &phc);
            Verdict {
                matches,
                rehashed: matches
                    .then(|| hasher.rehash(memory, password, &phc))
                    .flatten(),
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let span = Span::current();
        let permit = self.permit;
        let (answer, answered) = oneshot::channel();
        // The permit travels with the work: a caller that gives up (a cancelled call) frees its
        // slot only when the hash it started has finished, or when a worker reaches its job and
        // finds no one waiting for it (then it hashes nothing), so the bound holds whatever
        // clients do.
        let job: Job = Box::new(move |memory| {
            if answer.is_closed() {
                return;
            }
            let value = span.in_scope(|| work(memory));
            drop(permit);
            let _ = answer.send(value);
        });
        self.hasher
            .jobs
            .try_send(job)
            .map_err(|_| internal("the hashing workers are gone"))?;
        answered
            .await
            .map_err(|_| internal("a password hash panicked"))
    }
}

#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod tests;
