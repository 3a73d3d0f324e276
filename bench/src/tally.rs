//! What a run measured: every successful call's latency and the failures by kind, merged from all
//! tasks, then summed up as ops/s and percentiles (nearest rank over the sorted latencies: exact,
//! and a few MB for a ten-second run at tens of thousands of calls a second).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::json;

/// When measuring starts (the warm-up before it is not counted) and when calls stop being made.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub until: Instant,
}

impl Window {
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            until: measure_from + duration,
        }
    }
}

/// One task's (or the whole run's) record.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each successful call started inside the window, in nanoseconds.
    latencies: Vec<u64>,
    /// Failed calls started inside the window, by kind (a gRPC code such as `UNAVAILABLE`, or
    /// `INACTIVE`/`DENIED` when the server answered but refused the token).
    errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Records one call started at `started`, if the window was measuring then.
    pub fn record(&mut self, window: &Window, started: Instant, outcome: Result<(), String>) {
        if started < window.measure_from {
            return;
        }
        match outcome {
            Ok(()) => {
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.latencies.push(nanos);
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }

    /// The figures of the run, `elapsed` being how long the measured part lasted.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies.sort_unstable();
        let ms = |nanos: u64| nanos as f64 / 1e6;
        let rank = |p: f64| {
            let n = self.latencies.len();
            let index = ((p * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
            self.latencies.get(index).copied().map_or(0.0, ms)
        };
        Summary {
            ops: self.latencies.len() as u64,
            seconds: elapsed.as_secs_f64(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: self.latencies.last().copied().map_or(0.0, ms),
            errors: self.errors,
            server_cpu_s: None,
        }
    }
}

/// The figures one run reports.
#[derive(Debug)]
pub struct Summary {
    pub ops: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: BTreeMap<String, u64>,
    /// The server's CPU seconds over the measured window, when asked for (`--server-pid`).
    pub server_cpu_s: Option<f64>,
}

impl Summary {
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The server's CPU time per call made in the window, in milliseconds.
    pub fn server_cpu_ms_per_op(&self) -> Option<f64> {
        let calls = self.ops + self.error_count();
        self.server_cpu_s
            .filter(|_| calls > 0)
            .map(|cpu| cpu * 1e3 / calls as f64)
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// One line: `introspect  conc 64  conns 1  10.0 s  12345 ops/s  p50 …`.
    pub fn text(&self, label: &str) -> String {
        let errors = if self.errors.is_empty() {
            "0".to_owned()
        } else {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            format!("{} ({})", self.error_count(), kinds.join(", "))
        };
        let cpu = self
            .server_cpu_ms_per_op()
            .map_or_else(String::new, |ms| format!("  server CPU {ms:.3} ms/call"));
        format!(
            "{label}  {:.1} s  {:.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  errors {errors}{cpu}",
            self.seconds,
            self.ops_per_sec(),
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
        )
    }

    /// The same as a JSON object, with the settings of the run in `run`.
    pub fn json(&self, run: serde_json::Value) -> serde_json::Value {
        let mut object = json!({
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_sec": self.ops_per_sec(),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "errors": self.error_count(),
            "errors_by_kind": self.errors,
        });
        if let (Some(cpu), Some(object)) = (self.server_cpu_ms_per_op(), object.as_object_mut()) {
            object.insert("server_cpu_ms_per_op".into(), json!(cpu));
        }
        if let (Some(object), serde_json::Value::Object(run)) = (object.as_object_mut(), run) {
            object.extend(run);
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(latencies_ms: &[u64]) -> Tally {
        Tally {
            latencies: latencies_ms.iter().map(|ms| ms * 1_000_000).collect(),
            errors: BTreeMap::new(),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_over_every_call() {
        let summary =
            tally_of(&(1..=100).rev().collect::<Vec<_>>()).summary(Duration::from_secs(2));
        assert_eq!(summary.ops, 100);
        assert_eq!(summary.ops_per_sec(), 50.0);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
    }

    #[test]
    fn an_empty_run_reports_zeros_not_a_panic() {
        let summary = Tally::default().summary(Duration::ZERO);
        assert_eq!(
            (summary.ops, summary.ops_per_sec(), summary.p99_ms),
            (0, 0.0, 0.0)
        );
    }

    #[test]
    fn calls_started_in_the_warm_up_are_not_counted_and_errors_are_by_kind() {
        let window = Window::starting_now(Duration::from_secs(60), Duration::from_secs(1));
        let mut tally = Tally::default();
        tally.record(&window, Instant::now(), Ok(()));
        tally.record(&window, Instant::now(), Err("UNAVAILABLE".into()));
        let after = window.measure_from;
        tally.record(&window, after, Err("UNAVAILABLE".into()));
        tally.record(&window, after, Err("INACTIVE".into()));
        let summary = tally.summary(Duration::from_secs(1));
        assert_eq!(summary.ops, 0);
        assert_eq!(summary.error_count(), 2);
        assert_eq!(summary.errors["UNAVAILABLE"], 1);
        let json = summary.json(json!({"op": "introspect"}));
        assert_eq!(json["op"], "introspect");
        assert_eq!(json["errors_by_kind"]["INACTIVE"], 1);
    }
}
