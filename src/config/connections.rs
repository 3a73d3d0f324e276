//! The connection limits of the two ports: caps and handshake deadlines, the doors a client on the
//! network could otherwise hold open at no cost to itself.

use std::time::Duration;

use super::{
    ConfigArgs,
    check::{at_least, duration, within},
};
use crate::listen::{Connections, Limits};

/// More than any one process can hold open (its file descriptors run out first); a larger number
/// is a typo.
const MAX_CONNECTIONS: usize = 1_000_000;
/// A shorter deadline would close connections on an ordinary network hiccup.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

pub(super) fn connections(args: &ConfigArgs) -> anyhow::Result<Connections> {
    Ok(Connections {
        grpc: limits(
            ("LATCHKEY_MAX_CONNECTIONS", args.max_connections, 10_000),
            (
                "LATCHKEY_GRPC_HANDSHAKE_TIMEOUT",
                &args.grpc_handshake_timeout,
            ),
        )?,
        http: limits(
            (
                "LATCHKEY_HTTP_MAX_CONNECTIONS",
                args.http_max_connections,
                1024,
            ),
            ("LATCHKEY_HTTP_HEADER_TIMEOUT", &args.http_header_timeout),
        )?,
    })
}

fn limits(
    (max_var, max, default_max): (&str, Option<usize>, usize),
    (timeout_var, timeout): (&str, &Option<String>),
) -> anyhow::Result<Limits> {
    let handshake_timeout = duration(timeout_var, timeout.clone(), "10s")?;
    Ok(Limits {
        max_connections: within(max_var, max, default_max, (1, MAX_CONNECTIONS))?,
        handshake_timeout: at_least(timeout_var, handshake_timeout, MIN_TIMEOUT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn refusal(args: ConfigArgs) -> String {
        match Config::resolve(args) {
            Ok(config) => panic!("accepted: {:?}", config.connections),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn the_defaults_are_the_contract_and_each_setting_changes_its_own_limit() {
        let defaults = Config::resolve(ConfigArgs::default()).unwrap().connections;
        let ten = Duration::from_secs(10);
        assert_eq!(
            defaults.grpc,
            Limits {
                max_connections: 10_000,
                handshake_timeout: ten
            }
        );
        assert_eq!(
            defaults.http,
            Limits {
                max_connections: 1024,
                handshake_timeout: ten
            }
        );
        let args = ConfigArgs {
            max_connections: Some(3),
            grpc_handshake_timeout: Some("1s".into()),
            http_max_connections: Some(5),
            http_header_timeout: Some("2s".into()),
            ..Default::default()
        };
        let set = Config::resolve(args).unwrap().connections;
        assert_eq!((set.grpc.max_connections, set.http.max_connections), (3, 5));
        assert_eq!(set.grpc.handshake_timeout, Duration::from_secs(1));
        assert_eq!(set.http.handshake_timeout, Duration::from_secs(2));
    }

    #[test]
    fn no_connections_at_all_and_instant_deadlines_are_refused() {
        let error = refusal(ConfigArgs {
            max_connections: Some(0),
            ..Default::default()
        });
        assert!(
            error.starts_with("LATCHKEY_MAX_CONNECTIONS=0 must be between 1 and"),
            "{error}"
        );
        let error = refusal(ConfigArgs {
            http_max_connections: Some(2_000_000),
            ..Default::default()
        });
        assert!(
            error.starts_with("LATCHKEY_HTTP_MAX_CONNECTIONS="),
            "{error}"
        );
        let error = refusal(ConfigArgs {
            http_header_timeout: Some("0s".into()),
            ..Default::default()
        });
        assert!(
            error.starts_with("LATCHKEY_HTTP_HEADER_TIMEOUT=0s must be at least 100ms"),
            "{error}"
        );
        let error = refusal(ConfigArgs {
            grpc_handshake_timeout: Some("soon".into()),
            ..Default::default()
        });
        assert!(
            error.starts_with("LATCHKEY_GRPC_HANDSHAKE_TIMEOUT=\"soon\""),
            "{error}"
        );
    }
}
