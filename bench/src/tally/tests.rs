//! The figures a run reports, from latencies, failures and CPU times made up here.

use super::*;

fn tally_of(latencies_ms: &[u64]) -> Tally {
    Tally {
        latencies: latencies_ms.iter().map(|ms| ms * 1_000_000).collect(),
        errors: BTreeMap::new(),
    }
}

#[test]
fn percentiles_are_nearest_rank_over_every_call() {
    let summary = tally_of(&(1..=100).rev().collect::<Vec<_>>()).summary(Duration::from_secs(2));
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

#[test]
fn the_cpu_time_of_the_window_is_reported_per_call_by_thread_name_and_for_the_generator() {
    let mut summary = tally_of(&[1, 2, 3, 4]).summary(Duration::from_secs(1));
    summary.cpu = Some(Usage {
        server_s: 0.2,
        threads: BTreeMap::from([(
            "tokio-rt-worker".to_owned(),
            crate::server_cpu::Threads {
                count: 2,
                cpu_s: 0.1,
                system_s: 0.04,
                voluntary: 12,
                involuntary: 2,
            },
        )]),
        client_s: 0.02,
    });
    let json = summary.json(json!({}));
    assert_eq!(json["server_cpu_ms_per_op"], 50.0);
    let workers = &json["server_threads"]["tokio-rt-worker"];
    assert_eq!(workers["threads"], 2);
    assert_eq!(workers["cpu_ms_per_op"], 25.0);
    assert_eq!(workers["system_ms_per_op"], 10.0);
    assert_eq!(workers["voluntary_switches_per_op"], 3.0);
    assert_eq!(workers["involuntary_switches_per_op"], 0.5);
    assert_eq!(json["client_cpu_ms_per_op"], 5.0);
    let text = summary.text("login");
    assert!(
        text.contains("server threads tokio-rt-worker  ×2  25.000 ms/call (kernel 10.000)"),
        "{text}"
    );
    assert!(text.ends_with("this generator 5.000 ms/call"), "{text}");
}
