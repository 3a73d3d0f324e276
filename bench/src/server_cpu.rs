//! The server's CPU time over the measured window (`--server-pid`, Linux): the user and system time
//! of all its threads, read from `/proc/PID/stat` as the window opens and as it closes. Per call,
//! it is what a call costs the server whatever else the machine runs: a steadier figure than the
//! rate on a shared, noisy machine, where the load generator shares the server's cores.
//!
//! Beside it, the same by thread name (`/proc/PID/task/*`: `tokio-rt-worker`, tokio's name for its
//! workers and for the blocking threads that run `spawn_blocking` work alike; the hashing workers;
//! sqlx's SQLite threads), with how often those threads were switched out, by going to sleep
//! (voluntary) or by being preempted (involuntary); and the generator's own CPU time
//! (`/proc/self/stat`), which the server's cores share. A thread is known by its id and its start
//! time, so an id the kernel hands out again is another thread: one that ended inside the window
//! is in the total only, and one that started inside it counts from zero.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use tokio::time::{Instant, sleep_until};

/// `/proc` counts CPU time in USER_HZ ticks: 100 a second on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// What the server, and the generator itself, did with the CPU over one window.
#[derive(Debug)]
pub struct Usage {
    /// The server's CPU seconds, all threads.
    pub server_s: f64,
    /// The server's threads, by name.
    pub threads: BTreeMap<String, Threads>,
    /// The generator's own CPU seconds.
    pub client_s: f64,
}

/// The server's threads of one name over the window.
#[derive(Debug, Default, PartialEq)]
pub struct Threads {
    /// Those alive as the window closes.
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

/// What is read at each end of the window.
struct Reading {
    server_s: f64,
    threads: BTreeMap<ThreadId, Thread>,
    client_s: f64,
}

impl Reading {
    fn now(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            server_s: cpu_seconds(&pid.to_string())?,
            threads: threads(pid),
            client_s: cpu_seconds("self")?,
        })
    }
}

/// The CPU time of the server (`pid`) and of this process between the opening of the measured
/// window (`from`) and its closing (`until`).
pub async fn over(
    from: std::time::Instant,
    until: std::time::Instant,
    pid: u32,
) -> anyhow::Result<Usage> {
    sleep_until(Instant::from_std(from)).await;
    let opened = Reading::now(pid)?;
    sleep_until(Instant::from_std(until)).await;
    let closed = Reading::now(pid)?;
    Ok(Usage {
        server_s: closed.server_s - opened.server_s,
        threads: by_name(&opened.threads, &closed.threads),
        client_s: closed.client_s - opened.client_s,
    })
}

fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let fields = parse(&stat).ok_or_else(|| anyhow!("no CPU times in {path}"))?;
    Ok(fields.ticks as f64 / TICKS_PER_SECOND)
}

/// A thread: its id, and when it started (in clock ticks after boot), which tells it apart from a
/// later thread given the same id.
type ThreadId = (u64, u64);

/// One thread as `/proc` shows it at one moment.
#[derive(Debug)]
struct Thread {
    name: String,
    ticks: u64,
    system_ticks: u64,
    voluntary: u64,
    involuntary: u64,
}

/// The server's threads now; a thread that ends while they are read is left out.
fn threads(pid: u32) -> BTreeMap<ThreadId, Thread> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let id = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let fields = parse(&stat)?;
            let (voluntary, involuntary) = switches(&status)?;
            let thread = Thread {
                name: fields.name,
                ticks: fields.ticks,
                system_ticks: fields.system_ticks,
                voluntary,
                involuntary,
            };
            Some(((id, fields.started), thread))
        })
        .collect()
}

/// What the threads alive at `closed` did since `opened` (or since they started), summed by name.
fn by_name(
    opened: &BTreeMap<ThreadId, Thread>,
    closed: &BTreeMap<ThreadId, Thread>,
) -> BTreeMap<String, Threads> {
    let mut names = BTreeMap::<String, Threads>::new();
    for (id, now) in closed {
        let before = opened.get(id);
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

/// What a `stat` line says of its process or thread.
#[derive(Debug, PartialEq)]
struct Stat {
    name: String,
    /// `utime + stime` (the 14th and 15th fields), and `stime`, in ticks.
    ticks: u64,
    system_ticks: u64,
    /// `starttime` (the 22nd field), in ticks after boot.
    started: u64,
}

/// A `stat` line's fields; the command name may hold spaces and parentheses, so the fields start
/// after its last `)`.
fn parse(stat: &str) -> Option<Stat> {
    let (head, rest) = stat.rsplit_once(") ")?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let (utime, stime) = (field(14)?, field(15)?);
    Some(Stat {
        name,
        ticks: utime + stime,
        system_ticks: stime,
        started: field(22)?,
    })
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

    use super::{Stat, Thread, Threads, by_name, parse, switches};

    #[test]
    fn reads_the_name_the_times_and_the_start_after_a_command_name_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 \
                    100 2000000 500 18446744073709551615";
        let expected = Stat {
            name: "a (b) c".to_owned(),
            ticks: 325,
            system_ticks: 75,
            started: 100,
        };
        assert_eq!(parse(stat), Some(expected));
    }

    #[test]
    fn a_line_without_the_fields_reads_as_none() {
        assert_eq!(
            parse("4242 (latchkey) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75"),
            None
        );
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn reads_both_kinds_of_switches_from_a_status_file() {
        let status = "Name:\ttokio-rt-worker\nnonvoluntary_ctxt_switches:\t17\n\
                      voluntary_ctxt_switches:\t412\n";
        assert_eq!(switches(status), Some((412, 17)));
        assert_eq!(switches("Name:\tx\nnonvoluntary_ctxt_switches:\t3\n"), None);
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
            ((1, 10), thread("worker", 100, 10)),
            ((2, 10), thread("worker", 50, 5)),
            ((3, 10), thread("gone", 70, 7)),
            ((5, 10), thread("hasher", 900, 90)),
        ]);
        let closed = BTreeMap::from([
            ((1, 10), thread("worker", 300, 30)),
            ((2, 10), thread("worker", 150, 15)),
            ((4, 20), thread("hasher", 40, 2)),
            // Thread 5 ended and its id went to a new thread, which counts from its own start.
            ((5, 30), thread("hasher", 60, 3)),
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
        assert_eq!(names["hasher"].count, 2);
        assert_eq!(names["hasher"].cpu_s, 1.0);
        assert_eq!(names["hasher"].voluntary, 5);
        assert!(
            !names.contains_key("gone"),
            "a thread that ended is in the total only"
        );
    }
}
