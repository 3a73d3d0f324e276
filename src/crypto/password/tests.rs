//! The hasher's hashes, their parameters, workers and memory; its queue is `queue_tests.rs`'s.

use argon2::{Algorithm, Argon2, Version};

use super::*;

pub(super) fn cheap() -> Hasher {
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

pub(super) fn pw(s: &str) -> Password {
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

#[tokio::test]
async fn hashes_are_those_of_the_argon2_crate_both_ways() {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};
    let h = cheap();
    let params = Params::new(64, 1, 1, None).unwrap();
    let argon2 = || Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let theirs = argon2()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    assert!(
        h.verify(pw("correct horse"), Some(theirs.clone()))
            .await
            .unwrap()
    );
    assert!(!h.verify(pw("wrong"), Some(theirs)).await.unwrap());
    let ours = h.hash(pw("correct horse")).await.unwrap();
    let ours = PasswordHash::new(&ours).unwrap();
    assert!(argon2().verify_password(b"correct horse", &ours).is_ok());
    let again = argon2()
        .hash_password_with_salt(b"correct horse", &ours.salt.unwrap())
        .unwrap();
    assert_eq!(again.to_string(), ours.to_string(), "the same PHC string");
}

#[tokio::test]
async fn hashes_under_other_algorithms_lengths_and_costs_still_verify() {
    use argon2::PasswordHasher as _;
    let h = cheap();
    let made = |algorithm, m_cost, output_len| {
        let params = Params::new(m_cost, 1, 1, Some(output_len)).unwrap();
        Argon2::new(algorithm, Version::V0x13, params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string()
    };
    for phc in [
        made(Algorithm::Argon2i, 64, 32),
        made(Algorithm::Argon2id, 64, 16),
        // Cheaper than today's: the front of the worker's memory.
        made(Algorithm::Argon2id, 8, 32),
        // Costlier than today's: memory for that call only.
        made(Algorithm::Argon2id, 256, 32),
    ] {
        assert!(
            h.verify(pw("correct horse"), Some(phc.clone()))
                .await
                .unwrap(),
            "{phc}"
        );
        assert!(
            !h.verify(pw("wrong"), Some(phc.clone())).await.unwrap(),
            "{phc}"
        );
    }
}

#[test]
fn a_worker_reuses_its_memory_and_never_outgrows_todays_cost() {
    let today = Params::new(64, 1, 1, None).unwrap();
    let mut memory = Memory::new(today.block_count());
    memory.phc(&today, b"x", b"saltsalt").unwrap();
    let (at, len) = (memory.blocks.as_ptr(), memory.blocks.len());
    assert_eq!(len, 64);
    let costlier = Params::new(256, 1, 1, None).unwrap();
    let cheaper = Params::new(8, 1, 1, None).unwrap();
    for params in [&today, &costlier, &cheaper, &today] {
        let phc = memory.phc(params, b"x", b"saltsalt").unwrap();
        assert!(memory.matches(b"x", &phc));
        assert_eq!((memory.blocks.as_ptr(), memory.blocks.len()), (at, len));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_run_on_one_thread_per_permit() {
    let h = Hasher::new(
        Cost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        2,
    )
    .unwrap();
    let threads = futures_util::future::join_all((0..16).map(|_| {
        let admission = h.admit().unwrap();
        admission.run(|_| thread::current().name().map(str::to_owned))
    }))
    .await;
    let threads: std::collections::BTreeSet<_> =
        threads.into_iter().map(|t| t.unwrap().unwrap()).collect();
    assert!(threads.len() <= 2, "{threads:?}");
    assert!(
        threads.iter().all(|t| t.starts_with("latchkey-argon2-")),
        "{threads:?}"
    );
}

/// The hashing threads run below the rest of the server, so that logins cannot starve the hot
/// paths of CPU; read back from the kernel (`/proc/self/task/TID/stat`, field 19: nice).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_hashing_threads_run_at_a_lower_priority() {
    let h = cheap();
    // One hash: the worker has set its priority before it takes its first job.
    h.hash(pw("warm")).await.unwrap();
    // The threads of every hasher in this test process are listed, other tests' too: one that has
    // just started may not have set its priority yet, so look again until every one has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let niceness = hashing_threads_niceness();
        assert!(!niceness.is_empty(), "no hashing thread found");
        if niceness.iter().all(|&n| n == NICENESS) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hashing threads at {niceness:?}, expected {NICENESS}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let own: Vec<&str> = own.rsplit_once(')').unwrap().1.split_whitespace().collect();
    assert_eq!(own[16], "0", "the caller's own priority is untouched");
}

/// The nice value of each hashing thread of this process.
#[cfg(target_os = "linux")]
fn hashing_threads_niceness() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            if !comm.starts_with("latchkey-argon2") {
                return None;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // After the command in parentheses: state is field 3, nice field 19.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            fields.get(16)?.parse().ok()
        })
        .collect()
}

/// A worker's memory asks the kernel for 2 MiB pages: the mapping under it carries the `hg` flag
/// (MADV_HUGEPAGE) whether or not the kernel has found huge pages for it yet. A kernel built
/// without transparent huge pages takes no such advice; there the memory must still be whole.
#[cfg(target_os = "linux")]
#[test]
fn a_workers_memory_asks_for_huge_pages() {
    let size = Params::DEFAULT_M_COST as usize;
    let memory = blocks(size);
    assert_eq!(memory.len(), size);
    if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
        return;
    }
    // 4 MiB in: past the first 2 MiB boundary, where the advice starts.
    let inside = memory.as_ptr().addr() + (4 << 20);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_mapping = false;
    let flags = smaps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        if let Some((start, end)) = range.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            in_mapping = (start..end).contains(&inside);
        }
        line.strip_prefix("VmFlags:").filter(|_| in_mapping)
    });
    let flags = flags.expect("the mapping of the memory in /proc/self/smaps");
    assert!(
        flags.split_whitespace().any(|f| f == "hg"),
        "VmFlags:{flags}"
    );
}
