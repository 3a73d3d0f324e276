//! The server's CPU time over the measured window (`--server-pid`, Linux): the user and system time
//! of all its threads, read from `/proc/PID/stat` as the window opens and as it closes. Per call,
//! it is what a call costs the server whatever else the machine runs: a steadier figure than the
//! rate on a shared, noisy machine, where the load generator shares the server's cores.

use anyhow::{Context, anyhow};
use tokio::time::{Instant, sleep_until};

use crate::tally::Window;

/// `/proc` counts CPU time in USER_HZ ticks: 100 a second on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// The server's CPU seconds between the opening and the closing of `window`.
pub async fn over(window: Window, pid: u32) -> anyhow::Result<f64> {
    sleep_until(Instant::from_std(window.measure_from)).await;
    let opened = cpu_seconds(pid)?;
    sleep_until(Instant::from_std(window.until)).await;
    Ok(cpu_seconds(pid)? - opened)
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse(&stat).ok_or_else(|| anyhow!("no CPU times in {path}"))
}

/// `utime + stime`, the 14th and 15th fields, counted after the command name (which may hold
/// spaces and parentheses, so the fields start after its last `)`).
fn parse(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_user_and_system_time_after_a_command_name_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 \
                    100 2000000 500 18446744073709551615";
        assert_eq!(parse(stat), Some(3.25));
    }

    #[test]
    fn a_line_without_the_fields_reads_as_none() {
        assert_eq!(parse("4242 (latchkey) S 1"), None);
        assert_eq!(parse("garbage"), None);
    }
}
