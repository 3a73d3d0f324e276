//! The `TEST_LOG` switch: quiet by default; `TEST_LOG=1` shows the server's logs at its default
//! level (`info`), and any other value is a `tracing` filter (`TEST_LOG=debug`,
//! `TEST_LOG=latchkey=debug,sqlx=warn`). In-process servers log through one subscriber for the
//! whole test binary, written to the running test's captured output; child processes get the
//! filter as `LATCHKEY_LOG` and their standard error is passed through. Shown for failing tests,
//! or for all with `-- --nocapture`.

use std::sync::Once;

/// The filter `TEST_LOG` asks for, if any.
pub fn filter() -> Option<String> {
    match std::env::var("TEST_LOG").ok()?.trim() {
        "" | "0" => None,
        "1" => Some("info".into()),
        filter => Some(filter.into()),
    }
}

/// Whether the servers' logs are to be shown.
pub fn enabled() -> bool {
    filter().is_some()
}

/// Installs the in-process subscriber, once per test binary; a no-op unless `TEST_LOG` is set.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Some(filter) = filter() else { return };
        let filter = tracing_subscriber::EnvFilter::try_new(&filter)
            .unwrap_or_else(|e| panic!("TEST_LOG={filter:?} is not a tracing filter: {e}"));
        // `with_test_writer` prints through the test harness, so each line lands in the output
        // of the test whose thread logged it (threads inherit that capture from their spawner).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    });
}
