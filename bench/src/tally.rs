//! What a run measured: every successful call's latency and the failures by kind, merged from all
//! tasks, then summed up as ops/s and percentiles (nearest rank over the sorted latencies: exact,
//! and a few MB for a ten-second run at tens of thousands of calls a second).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::server_cpu::Usage;

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
            cpu: None,
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
    /// The server's CPU time over the measured window, and the generator's, when asked for
    /// (`--server-pid`).
    pub cpu: Option<Usage>,
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
        self.cpu
            .as_ref()
            .and_then(|cpu| self.per_call(cpu.server_s * 1e3))
    }

    /// `total` spread over the calls made in the window, if any were.
    fn per_call(&self, total: f64) -> Option<f64> {
        let calls = self.ops + self.error_count();
        (calls > 0).then(|| total / calls as f64)
    }

    /// The server's threads by name, per call made in the window.
    fn threads_per_call(&self) -> Vec<ThreadsPerCall<'_>> {
        let Some(cpu) = &self.cpu else {
            return Vec::new();
        };
        cpu.threads
            .iter()
            .filter_map(|(name, t)| {
                Some(ThreadsPerCall {
                    name,
                    threads: t.count,
                    cpu_ms: self.per_call(t.cpu_s * 1e3)?,
                    system_ms: self.per_call(t.system_s * 1e3)?,
                    asleep: self.per_call(t.voluntary as f64)?,
                    preempted: self.per_call(t.involuntary as f64)?,
                })
            })
            .collect()
    }

    /// The generator's own CPU time per call made in the window, in milliseconds.
    fn client_cpu_ms_per_op(&self) -> Option<f64> {
        self.cpu
            .as_ref()
            .and_then(|cpu| self.per_call(cpu.client_s * 1e3))
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// One line: `introspect  conc 64  conns 1  10.0 s  12345 ops/s  p50 …`; with the CPU time of
    /// the window (`--server-pid`), a line after it for each name of the server's threads and one
    /// for the generator.
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
        let mut text = format!(
            "{label}  {:.1} s  {:.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  errors {errors}{cpu}",
            self.seconds,
            self.ops_per_sec(),
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
        );
        for t in self.threads_per_call() {
            text.push_str(&format!(
                "\n  server threads {:<16} ×{:<2} {:.3} ms/call (kernel {:.3})  \
                 switched out {:.2} asleep, {:.2} preempted per call",
                t.name, t.threads, t.cpu_ms, t.system_ms, t.asleep, t.preempted,
            ));
        }
        if let Some(ms) = self.client_cpu_ms_per_op() {
            text.push_str(&format!("\n  this generator {ms:.3} ms/call"));
        }
        text
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
            let threads: serde_json::Map<_, _> = self
                .threads_per_call()
                .into_iter()
                .map(|t| {
                    let figures = json!({
                        "threads": t.threads,
                        "cpu_ms_per_op": t.cpu_ms,
                        "system_ms_per_op": t.system_ms,
                        "voluntary_switches_per_op": t.asleep,
                        "involuntary_switches_per_op": t.preempted,
                    });
                    (t.name.to_owned(), figures)
                })
                .collect();
            object.insert("server_threads".into(), threads.into());
            object.insert(
                "client_cpu_ms_per_op".into(),
                json!(self.client_cpu_ms_per_op()),
            );
        }
        if let (Some(object), serde_json::Value::Object(run)) = (object.as_object_mut(), run) {
            object.extend(run);
        }
        object
    }
}

/// The server's threads of one name, per call made in the window.
struct ThreadsPerCall<'a> {
    name: &'a str,
    threads: usize,
    /// CPU time in milliseconds, and its kernel part.
    cpu_ms: f64,
    system_ms: f64,
    /// Times one of them went to sleep, and was preempted.
    asleep: f64,
    preempted: f64,
}

#[cfg(test)]
mod tests;
