//! Reading one setting's text into its type, with an error that names the setting by its variable
//! and says what is allowed: the operator reads it at start-up, before anything runs.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};

/// `value`, or `default` when unset, as a humantime duration.
pub fn duration(var: &str, value: Option<String>, default: &str) -> anyhow::Result<Duration> {
    let text = value.unwrap_or_else(|| default.to_owned());
    humantime::parse_duration(&text)
        .with_context(|| format!("{var}={text:?} is not a duration such as {default}"))
}

/// A duration of at least `min`.
pub fn at_least(var: &str, value: Duration, min: Duration) -> anyhow::Result<Duration> {
    if value < min {
        bail!("{var}={} must be at least {}", show(value), show(min));
    }
    Ok(value)
}

/// A period of background work: zero would spin.
pub fn period(var: &str, value: Option<String>, default: &str) -> anyhow::Result<Duration> {
    let period = duration(var, value, default)?;
    if period.is_zero() {
        bail!("{var}=0s: a period must be longer than zero, such as {default}");
    }
    Ok(period)
}

/// A duration in milliseconds, as the domain counts time.
pub fn millis(var: &str, value: Duration) -> anyhow::Result<i64> {
    i64::try_from(value.as_millis()).with_context(|| format!("{var} is too long"))
}

pub fn address(var: &str, value: Option<String>, default: &str) -> anyhow::Result<SocketAddr> {
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse()
        .with_context(|| format!("{var}={text:?} is not an address such as {default}"))
}

/// Text that must say something.
pub fn non_empty(var: &str, value: Option<String>, default: &str) -> anyhow::Result<String> {
    let text = value.unwrap_or_else(|| default.to_owned());
    if text.trim().is_empty() {
        bail!("{var} is empty: set it to a non-empty value [default: {default}]");
    }
    Ok(text)
}

/// A number within `min..=max`.
pub fn within<T>(var: &str, value: Option<T>, default: T, (min, max): (T, T)) -> anyhow::Result<T>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    let value = value.unwrap_or(default);
    if value < min || value > max {
        bail!("{var}={value} must be between {min} and {max} [default: {default}]");
    }
    Ok(value)
}

/// A duration as the operator would write it.
pub fn show(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}
