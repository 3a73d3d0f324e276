//! Every setting, fed arbitrary text through `Config::resolve` (as clap or the TOML file hands it
//! over): never a panic, and a refusal always names the setting by its variable, as API.md promises
//! ("Refused at start-up"). The settings are found through serde, the way the TOML file reaches
//! them, so a setting added later is fuzzed without being listed here.

use std::{
    io::Write,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use latchkey::config::{Config, ConfigArgs};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Text a careless or hostile operator could set: anything, and things that nearly parse as each
/// kind of value (durations, some overflowing; addresses; URLs; algorithms; log filters; keys).
fn setting_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,25} ?(ns|us|ms|s|m|min|h|d|days|w|M|y|)( [0-9]{1,4}(s|ms))?",
        "-?[0-9]{0,4}\\.?[0-9]{0,4}(s|m)",
        "[0-9a-f:.\\[\\]%]{0,30}",
        "(sqlite|postgres|postgresql|mysql|)(:|://)[ -~]{0,30}",
        "(EdDSA|ES256|RS256|HS256|none|eddsa|)",
        "(text|json|info|[a-z_:]{1,8}=[a-z]{1,6}|\\[[^\\]]{0,10}\\]|[a-z]{0,4}\\{[^}]{0,8}\\})(,[a-z:=]{0,10})*",
        "[A-Za-z0-9+/]{40,46}={0,2}",
        Just(String::new()),
        Just("  \t ".to_owned()),
    ]
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0..5_000u64, Just(u64::from(u32::MAX) + 1)]
}

/// Every setting unset, as serde sees them: one key per setting.
fn unset() -> Map<String, Value> {
    let Ok(Value::Object(keys)) = serde_json::to_value(ConfigArgs::default()) else {
        panic!("settings serialise to a map");
    };
    keys
}

/// The variable that names a setting.
fn variable(key: &str) -> String {
    format!("LATCHKEY_{}", key.to_ascii_uppercase())
}

/// The settings with `set` given: as text, or as whatever else the setting's type takes (a
/// number, a list, a flag). `None` if the setting takes none of these.
fn args_with(set: &[(&str, &str, u64)]) -> Option<ConfigArgs> {
    let mut keys = unset();
    for (key, text, number) in set {
        let value = [
            json!(text),
            json!(number),
            json!(number % (u64::from(u32::MAX) + 1)),
            json!([text]),
            json!(number % 2 == 0),
        ]
        .into_iter()
        .find(|value| {
            let mut one = unset();
            one.insert((*key).to_owned(), value.clone());
            serde_json::from_value::<ConfigArgs>(Value::Object(one)).is_ok()
        })?;
        keys.insert((*key).to_owned(), value);
    }
    serde_json::from_value(Value::Object(keys)).ok()
}

/// Resolves; on refusal, the whole message with its causes, as `latchkey` prints it.
fn resolve(args: ConfigArgs) -> Result<Config, String> {
    Config::resolve(args).map_err(|e| format!("{e:#}"))
}

#[test]
fn the_settings_are_all_found() {
    let keys = unset();
    assert!(keys.len() >= 24, "{keys:?}");
    assert!(keys.contains_key("access_ttl") && keys.contains_key("master_key"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_value_of_any_setting_is_taken_or_refused_by_name(
        text in setting_text(),
        number in number(),
    ) {
        for key in unset().keys() {
            let Some(args) = args_with(&[(key, &text, number)]) else { continue };
            if let Err(message) = resolve(args) {
                prop_assert!(message.contains(&variable(key)), "{key}={text:?}: {message}");
            }
        }
    }

    #[test]
    fn any_values_of_every_setting_at_once_are_taken_or_one_is_named(
        values in proptest::collection::vec((setting_text(), number()), 48),
    ) {
        let keys = unset();
        let set: Vec<(&str, &str, u64)> = keys
            .keys()
            .zip(&values)
            .map(|(key, (text, number))| (key.as_str(), text.as_str(), *number))
            .collect();
        if let Some(Err(message)) = args_with(&set).map(resolve) {
            prop_assert!(message.contains("LATCHKEY_"), "{message}");
        }
    }

    /// A duration written as the operator would is read to the millisecond.
    #[test]
    fn an_access_ttl_written_in_humantime_is_read_exactly(ms in 1_000..14 * 86_400_000u64) {
        let text = humantime::format_duration(Duration::from_millis(ms)).to_string();
        let config = resolve(ConfigArgs { access_ttl: Some(text.clone()), ..Default::default() });
        let config = config.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(config.settings.lifetimes.access_ttl, i64::try_from(ms).unwrap());
    }

    #[test]
    fn a_listen_address_is_read_exactly(ip in any::<IpAddr>(), port in any::<u16>()) {
        let addr = SocketAddr::new(ip, port);
        let args = ConfigArgs { grpc_addr: Some(addr.to_string()), ..Default::default() };
        let config = resolve(args).map_err(TestCaseError::fail)?;
        prop_assert_eq!(config.grpc_addr, addr);
    }

    /// The TOML file: any content, known keys with any values, unknown keys.
    #[test]
    fn any_config_file_is_taken_or_refused_by_name(
        lines in proptest::collection::vec(
            (0..40usize, setting_text(), 0..3u8),
            0..6,
        ),
        junk in any::<String>(),
    ) {
        let keys: Vec<String> = unset().keys().cloned().collect();
        let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
        for (key, text, shape) in &lines {
            let key = keys.get(*key).map_or("no_such_setting", String::as_str);
            // A TOML string (JSON's escapes are TOML's), the bare text, or a list.
            let quoted = Value::from(text.as_str()).to_string();
            let value = match shape {
                0 => quoted,
                1 => text.clone(),
                _ => format!("[{quoted}]"),
            };
            writeln!(file, "{key} = {value}").expect("written");
        }
        if lines.is_empty() {
            file.write_all(junk.as_bytes()).expect("written");
        }
        let args = ConfigArgs { config: Some(file.path().to_owned()), ..Default::default() };
        if let Err(message) = resolve(args) {
            prop_assert!(message.contains("LATCHKEY_"), "{message}");
        }
    }
}
