//! The `latchkey` binary: parse the command line, start telemetry, dispatch.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = latchkey::cli::Cli::parse();
    latchkey::telemetry::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("latchkey: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
