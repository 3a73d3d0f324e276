//! The binary as users run it, without a server: the local baselines' report, and the refusals
//! that stop a run before it starts (exit status 2). Runs against a server are `.ci/run`'s smoke.

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

fn bench(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-bench"))
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("latchkey-bench starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("stdin is written");
    drop(input);
    child.wait_with_output().expect("latchkey-bench ends")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_eddsa_baseline_reports_one_json_object_with_its_figures() {
    let output = bench(
        &[
            "--op",
            "eddsa",
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--json",
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["op"], "eddsa");
    assert_eq!(report["target"], "local");
    assert_eq!(report["errors"], 0);
    assert!(report["ops"].as_u64().expect("ops") > 0, "{report}");
    assert!(report["ops_per_sec"].as_f64().expect("ops/s") > 0.0);
    let (p50, p99, max) = (
        report["p50_ms"].as_f64().expect("p50"),
        report["p99_ms"].as_f64().expect("p99"),
        report["max_ms"].as_f64().expect("max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
}

#[test]
fn an_op_that_logs_in_refuses_to_start_without_a_password() {
    let output = bench(&["--op", "introspect", "--duration", "1s"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--password-stdin"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn an_empty_password_on_standard_input_is_refused() {
    let output = bench(&["--op", "login", "--password-stdin"], "\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no password"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_server_that_is_not_there_stops_the_run_before_it_starts() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let output = bench(&["--op", "health", "--target", "http://127.0.0.1:1"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("connecting to"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_https_target_needs_the_ca_of_its_certificate() {
    let output = bench(
        &["--op", "health", "--target", "https://localhost:50051"],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--ca"), "{}", stderr(&output));
}

#[test]
fn a_zero_duration_is_refused() {
    let output = bench(&["--op", "health", "--duration", "0s"], "");
    assert_eq!(output.status.code(), Some(2));
}
