//! The hashing queue: its bound, and the places of callers that give up, with a hash running or
//! before one has started.

use super::{
    Cost, HashError, Hasher,
    tests::{cheap, pw},
};

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

/// One worker, hashing slowly enough (tens of ms) that a hash outlives what the test does meanwhile.
fn slow() -> Hasher {
    let cost = Cost {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    Hasher::new(cost, 1).unwrap()
}

/// Waits until the one worker of `h` has taken every job sent and `taken` slots are held.
async fn worker_has_taken_every_job(h: &Hasher, taken: usize) {
    let slots = h.jobs.max_capacity();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while h.admitted.available_permits() != slots - taken || h.jobs.capacity() != slots {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the worker takes the job");
}

/// The caller of a job that is running gives up: the job's slot stays taken until the job ends,
/// then is free again. The job stands in for a hash, so that the test knows when it has started
/// and decides when it ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_check_keeps_its_slot_until_its_hash_is_done() {
    let h = cheap();
    let slots = h.jobs.max_capacity();
    let (started, has_started) = tokio::sync::oneshot::channel();
    let (end, ends) = std::sync::mpsc::channel::<()>();
    let task = tokio::spawn(h.admit().unwrap().run(move |_| {
        let _ = started.send(());
        let _ = ends.recv();
    }));
    has_started.await.expect("the worker runs the job");
    task.abort();
    let _ = task.await;
    assert_eq!(
        h.admitted.available_permits(),
        slots - 1,
        "the job still runs, so its slot stays taken"
    );
    end.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while h.admitted.available_permits() != slots {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the slot is free once the job has ended");
}

/// Checks whose callers gave up while they waited in the queue are not hashed: once the hash
/// ahead of them is done, their slots are all free again in less time than a few hashes would
/// take, not after seven.
#[tokio::test(flavor = "multi_thread")]
async fn checks_whose_callers_left_while_queued_are_not_hashed() {
    let h = slow();
    let started = std::time::Instant::now();
    let first = tokio::spawn({
        let h = h.clone();
        async move { h.verify(pw("x"), None).await }
    });
    worker_has_taken_every_job(&h, 1).await;
    let queued: Vec<_> = (0..7)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.verify(pw("y"), None).await })
        })
        .collect();
    let slots = h.jobs.max_capacity();
    while h.admitted.available_permits() != slots - 8 {
        tokio::task::yield_now().await;
    }
    for task in queued {
        task.abort();
        let _ = task.await;
    }
    assert!(!first.await.unwrap().unwrap());
    let one_hash = started.elapsed();
    let done = std::time::Instant::now();
    while h.admitted.available_permits() != slots {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(
        done.elapsed() < one_hash * 3,
        "the seven slots took {:?} to free after a hash of {one_hash:?}",
        done.elapsed()
    );
}
