//! `latchkey-bench`: a load generator for any running latchkey, over gRPC (plaintext, TLS or
//! mTLS). It keeps `--conc` calls in flight over `--conns` HTTP/2 connections for `--duration`
//! after a `--warmup`, and prints ops/s, p50/p99/max latency and the failures by gRPC code, as a
//! line of text or (`--json`) one JSON object. `benches/matrix.sh` runs it over every op against
//! a fresh server, on SQLite and on PostgreSQL, for BENCHMARKS.md.
//!
//! - [`args`]: the command line (passwords only from standard input or a variable);
//! - [`remote`]: connecting, logging in before the clock starts, and the tasks' loop;
//! - [`calls`]: what one call of each op is, and each task's state (its own refresh chain);
//! - [`local`]: the raw argon2id and EdDSA rates of this machine, as baselines;
//! - [`server_cpu`]: the server's CPU time per call, by thread name too, and the generator's own
//!   (`--server-pid`);
//! - [`tally`]: latencies and failures, and the figures made of them.
#![forbid(unsafe_code)]

mod args;
mod calls;
mod local;
mod remote;
mod server_cpu;
mod tally;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use crate::{
    args::{Args, Op},
    tally::{Summary, Window},
};

fn main() -> ExitCode {
    let args = Args::parse();
    let summary = match args.op {
        Op::Argon2 => local::argon2(window(&args), local::Layout::Server),
        Op::Argon2Plain => local::argon2(window(&args), local::Layout::Plain),
        Op::Eddsa => local::eddsa(window(&args)),
        _ => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(remote::run(&args))),
    };
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("latchkey-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    report(&args, &summary);
    if summary.ops > 0 && summary.error_count() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn window(args: &Args) -> Window {
    Window::starting_now(args.warmup, args.duration)
}

fn report(args: &Args, summary: &Summary) {
    let local = matches!(args.op, Op::Argon2 | Op::Argon2Plain | Op::Eddsa);
    let (target, conc, conns) = if local {
        ("local".to_owned(), local::threads(), 0)
    } else {
        (args.target.clone(), args.conc as usize, args.conns as usize)
    };
    if args.json {
        let run = json!({
            "op": args.op.name(),
            "target": target,
            "conc": conc,
            "conns": conns,
            "duration_s": args.duration.as_secs_f64(),
            "warmup_s": args.warmup.as_secs_f64(),
        });
        println!("{}", summary.json(run));
    } else if local {
        let label = format!("{:<10}  threads {conc}", args.op.name());
        println!("{}", summary.text(&label));
    } else {
        let label = format!("{:<10}  conc {conc}  conns {conns}", args.op.name());
        println!("{}", summary.text(&label));
    }
}
