//! The `latchkey` binary: parse the command line, read the settings, start telemetry, dispatch.
//! The settings come first: the log filter and format are among them, and a refused setting is
//! reported on stderr before anything starts.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = latchkey::cli::Cli::parse();
    let config = match cli.resolve_config() {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    latchkey::telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match runtime.block_on(cli.run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("latchkey: {e:#}");
    ExitCode::FAILURE
}
