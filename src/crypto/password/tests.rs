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

fn other_cost() -> Hasher {
    Hasher::new(
        Cost {
            memory_kib: 64,
            iterations: 2,
            parallelism: 1,
        },
        1,
    )
    .unwrap()
}

#[tokio::test]
async fn a_match_under_other_parameters_is_rehashed_to_todays_with_its_old_salt() {
    let old = cheap().hash(pw("correct horse")).await.unwrap();
    let h = other_cost();
    let verdict = h
        .admit()
        .unwrap()
        .check(pw("correct horse"), Some(old.clone()));
    let new = verdict.await.unwrap().rehashed.unwrap().expose().clone();
    assert!(new.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{new}");
    let salt = |phc: &str| phc.split('$').nth(4).unwrap().to_owned();
    assert_eq!(salt(&new), salt(&old));
    assert!(
        h.verify(pw("correct horse"), Some(new.clone()))
            .await
            .unwrap()
    );

    let again = h.admit().unwrap().check(pw("correct horse"), Some(new));
    assert!(again.await.unwrap().rehashed.is_none(), "already today's");
    let wrong = h.admit().unwrap().check(pw("wrong"), Some(old));
    let wrong = wrong.await.unwrap();
    assert!(!wrong.matches && wrong.rehashed.is_none());
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
