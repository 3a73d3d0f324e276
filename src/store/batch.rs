//! Group commit of rotations. A task takes the rotations that arrive together and hands them to
//! the backend's [`Commit`] in one go: on SQLite one transaction, so one fsync, on the one writer
//! (see `sqlite_batch.rs`); on PostgreSQL one statement, so one round trip and one commit, two
//! tasks taking turns (see `postgres_batch.rs`). One whose compare-and-swap fails (or whose statement errs) leaves the
//! others in, and each caller gets its own answer, only once its commit is durable.

use std::sync::Arc;

use tokio::sync::{
    Mutex,
    mpsc::{self, WeakSender},
    oneshot,
};

use super::{Rotation, StoreError, StoreResult};

/// Rotations committed together at most; more wait for the next commit.
const MAX_BATCH: usize = 256;
/// Rotations waiting, beyond which callers wait to hand theirs over.
const QUEUE: usize = 1024;

/// Makes a batch of rotations durable.
#[async_trait::async_trait]
pub(super) trait Commit: Send + Sync + 'static {
    /// Each rotation's answer, in order, valid once this returns: whether it was made, or `None`
    /// when it was left to its caller to make on its own; or an error of its own. `Err`: nothing
    /// of the batch was written, or (the connection lost after the commit was sent) whether it
    /// was is unknown; either way every caller hears the error, and a client's retry of the same
    /// token within the grace window gets the successor if it was.
    async fn commit(&self, batch: &[Rotation]) -> StoreResult<Vec<StoreResult<Option<bool>>>>;
}

/// Where rotations are handed to the task that commits them.
#[derive(Debug)]
pub(super) struct RotationBatches {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug)]
pub(super) struct Job {
    rotation: Rotation,
    answer: oneshot::Sender<StoreResult<Option<bool>>>,
}

impl RotationBatches {
    /// Starts `tasks` committing tasks, which take turns at the queue: while one commits, the next
    /// gathers the rotations arriving meanwhile. They end when the store is dropped.
    pub(super) fn start(commit: impl Commit, tasks: usize) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let (commit, queue) = (Arc::new(commit), Arc::new(Mutex::new(queue)));
        for _ in 0..tasks {
            tokio::spawn(run(commit.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// A handle that tells whether the store still takes rotations.
    pub(super) fn alive(&self) -> WeakSender<Job> {
        self.jobs.downgrade()
    }
}

impl RotationBatches {
    /// Whether the rotation was made (`false`: the session's generation had moved), once its
    /// commit is durable; `None`: the caller is to make it on its own.
    pub(super) async fn rotate(&self, rotation: Rotation) -> StoreResult<Option<bool>> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { rotation, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// The committing task is gone: only while the store is being dropped.
fn stopped() -> StoreError {
    StoreError::Unavailable(Box::new(sqlx::Error::PoolClosed))
}

async fn run(commit: Arc<impl Commit>, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.lock().await.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("latchkey_rotation_batch_size").record(batch.len() as f64);
        let (rotations, callers): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|j| (j.rotation, j.answer)).unzip();
        let answers = commit
            .commit(&rotations)
            .await
            .unwrap_or_else(|failed| each_failed(failed, rotations.len()));
        for (caller, answer) in callers.into_iter().zip(answers) {
            let _ = caller.send(answer);
        }
    }
}

/// The answers of `count` rotations that failed together with `failed`: the first gets the
/// driver's error itself, the others one of its kind.
fn each_failed(failed: StoreError, count: usize) -> Vec<StoreResult<Option<bool>>> {
    let unavailable = matches!(failed, StoreError::Unavailable(_));
    let mut failed = Some(failed);
    (0..count)
        .map(|_| {
            Err(failed.take().unwrap_or_else(|| {
                let cause = sqlx::Error::Protocol(
                    "the commit of the rotations batched with this one failed".into(),
                );
                if unavailable {
                    StoreError::Unavailable(Box::new(cause))
                } else {
                    StoreError::Other(Box::new(cause))
                }
            }))
        })
        .collect()
}
