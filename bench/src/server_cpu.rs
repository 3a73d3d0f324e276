//! The server's CPU time over the measured window (`--server-pid`, Linux): the user and system time
//! of all its threads, read from `/proc/PID/stat` as the window opens and as it closes. Per call,
//! it is what a call costs the server whatever else the machine runs: a steadier figure than the
//! rate on a shared, noisy machine, where the load generator shares the server's cores.
//!
//! Beside it, the same by thread name (`/proc/PID/task/*`: tokio's workers and blocking threads,
//! the hashing workers, sqlx's SQLite threads), with how often those threads were switched out, by
//! going to sleep (voluntary) or by being preempted (involuntary); and the generator's own CPU
//! time (`/proc/self/stat`), which the server's cores share. A thread that ended inside the window
//! is in the total only; one that started inside it counts from zero.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use tokio::time::{Instant, sleep_until};

/// `/proc` counts CPU time in USER_HZ ticks: 100 a second on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// What the server, and the generator itself, did with the CPU over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The server's CPU seconds, all threads.
    pub server_s: f64,
    /// The server's threads, by name.
    pub threads: BTreeMap<String, Threads>,
    /// The generator's own CPU seconds.
    pub client_s: f64,
}

/// The server's threads of one name over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Threads {
    pub count: usize,
    /// User and system time.
    pub cpu_s: f64,
    /// Of which the kernel's (system time).
    pub system_s: f64,
    /// Times one of them went to sleep.
    pub voluntary: u64,
    /// Times one of them was preempted.
    pub involuntary: u64,
}

/// The CPU time of the server (`pid`) and of this process between the opening of the measured
/// window (`from`) and its closing (`until`).
pub async fn over(
    from: std::time::Instant,
    until: std::time::Instant,
    pid: u32,
) -> anyhow::Result<Usage> {
    sleep_until(Instant::from_std(from)).await;
    let opened = (
        cpu_seconds(&pid.to_string())?,
        threads(pid),
        cpu_seconds("self")?,
    );
    sleep_until(Instant::from_std(until)).await;
    let (server, client) = (cpu_seconds(&pid.to_string())?, cpu_seconds("self")?);
    Ok(Usage {
        server_s: server - opened.0,
        threads: by_name(&opened.1, &threads(pid)),
        client_s: client - opened.2,
    })
}

fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (_, ticks, _) = parse(&stat).ok_or_else(|| anyhow!("no CPU times in {path}"))?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// One thread as `/proc` shows it at one moment.
#[derive(Debug, Clone, PartialEq)]
struct Thread {
    name: String,
    ticks: u64,
    system_ticks: u64,
    voluntary: u64,
    involuntary: u64,
}

/// The server's threads now, by thread id; a thread that ends while they are read is left out.
fn threads(pid: u32) -> BTreeMap<u64, Thread> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let id = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let (name, ticks, system_ticks) = parse(&stat)?;
            let (voluntary, involuntary) = switches(&status)?;
            Some((
                id,
                Thread {
                    name,
                    ticks,
                    system_ticks,
                    voluntary,
                    involuntary,
                },
            ))
        })
        .collect()
}

/// What the threads alive at `closed` did since `opened`, summed by name.
fn by_name(
    opened: &BTreeMap<u64, Thread>,
    closed: &BTreeMap<u64, Thread>,
) -> BTreeMap<String, Threads> {
    let mut names = BTreeMap::<String, Threads>::new();
    for (id, now) in closed {
        let before = opened.get(id).filter(|then| then.name == now.name);
        let since = |field: fn(&Thread) -> u64| field(now).saturating_sub(before.map_or(0, field));
        let group = names.entry(now.name.clone()).or_default();
        group.count += 1;
        group.cpu_s += since(|t| t.ticks) as f64 / TICKS_PER_SECOND;
        group.system_s += since(|t| t.system_ticks) as f64 / TICKS_PER_SECOND;
        group.voluntary += since(|t| t.voluntary);
        group.involuntary += since(|t| t.involuntary);
    }
    names
}

/// The command name, `utime + stime` and `stime` (the 14th and 15th fields) of a `stat` line; the
/// name may hold spaces and parentheses, so the fields start after its last `)`.
fn parse(stat: &str) -> Option<(String, u64, u64)> {
    let (head, rest) = stat.rsplit_once(") ")?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime, stime))
}

/// The voluntary and involuntary context switches of a `status` file.
fn switches(status: &str) -> Option<(u64, u64)> {
    let count = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
    };
    Some((
        count("voluntary_ctxt_switches:")?,
        count("nonvoluntary_ctxt_switches:")?,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Thread, Threads, by_name, parse, switches};

    #[test]
    fn reads_the_name_and_the_times_after_a_command_name_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 \
                    100 2000000 500 18446744073709551615";
        assert_eq!(parse(stat), Some(("a (b) c".to_owned(), 325, 75)));
    }

    #[test]
    fn a_line_without_the_fields_reads_as_none() {
        assert_eq!(parse("4242 (latchkey) S 1"), None);
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn reads_both_kinds_of_switches_from_a_status_file() {
        let status = "Name:\ttokio-rt-worker\nvoluntary_ctxt_switches:\t412\n\
                      nonvoluntary_ctxt_switches:\t17\n";
        assert_eq!(switches(status), Some((412, 17)));
        assert_eq!(switches("Name:\tx\nvoluntary_ctxt_switches:\t3\n"), None);
    }

    fn thread(name: &str, ticks: u64, voluntary: u64) -> Thread {
        Thread {
            name: name.to_owned(),
            ticks,
            system_ticks: ticks / 2,
            voluntary,
            involuntary: 1,
        }
    }

    #[test]
    fn threads_are_summed_by_name_from_the_window_s_opening_or_from_their_start() {
        let opened = BTreeMap::from([
            (1, thread("worker", 100, 10)),
            (2, thread("worker", 50, 5)),
            (3, thread("gone", 70, 7)),
        ]);
        let closed = BTreeMap::from([
            (1, thread("worker", 300, 30)),
            (2, thread("worker", 150, 15)),
            (4, thread("hasher", 40, 2)),
        ]);
        let names = by_name(&opened, &closed);
        assert_eq!(
            names["worker"],
            Threads {
                count: 2,
                cpu_s: 3.0,
                system_s: 1.5,
                voluntary: 30,
                involuntary: 0,
            }
        );
        assert_eq!(names["hasher"].cpu_s, 0.4);
        assert_eq!(names["hasher"].involuntary, 1);
        assert!(
            !names.contains_key("gone"),
            "a thread that ended is in the total only"
        );
    }
}
