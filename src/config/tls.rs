//! Transport security: the TLS files of both ports and the caller lists, which only mean something
//! with client certificates.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use super::ConfigArgs;
use crate::{
    domain::caller::{CallerList, Callers},
    listen::TlsFiles,
};

/// The TLS files, when TLS is on: a certificate needs its key and the other way round, and a
/// client CA means nothing without them.
pub(super) fn tls(args: &ConfigArgs) -> anyhow::Result<Option<TlsFiles>> {
    let path = |var: &str, value: &Option<String>| -> anyhow::Result<Option<PathBuf>> {
        match value.as_deref().map(str::trim) {
            None => Ok(None),
            Some("") => bail!("{var} is empty: give a PEM file, or leave it unset"),
            Some(path) => Ok(Some(PathBuf::from(path))),
        }
    };
    let cert = path("LATCHKEY_TLS_CERT", &args.tls_cert)?;
    let key = path("LATCHKEY_TLS_KEY", &args.tls_key)?;
    let client_ca = path("LATCHKEY_TLS_CLIENT_CA", &args.tls_client_ca)?;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert,
            key,
            client_ca,
        })),
        (None, None) if client_ca.is_some() => bail!(
            "LATCHKEY_TLS_CLIENT_CA needs TLS: set LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY too"
        ),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("LATCHKEY_TLS_CERT is set without LATCHKEY_TLS_KEY: set both"),
        (None, Some(_)) => bail!("LATCHKEY_TLS_KEY is set without LATCHKEY_TLS_CERT: set both"),
    }
}

/// The caller lists. A list names client certificates, so it needs `LATCHKEY_TLS_CLIENT_CA`:
/// without one no caller has an identity and a list would shut everyone out.
pub(super) fn callers(args: &ConfigArgs, tls: Option<&TlsFiles>) -> anyhow::Result<Callers> {
    let list = |var: &str, value: &Option<String>| -> anyhow::Result<CallerList> {
        let list = CallerList::parse(value.as_deref().unwrap_or_default())
            .map_err(|e| anyhow!("{var}: {e}"))?;
        if !list.is_open() && tls.is_none_or(|tls| tls.client_ca.is_none()) {
            bail!(
                "{var} names client certificates: set LATCHKEY_TLS_CLIENT_CA (with \
                 LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY) so that callers present one"
            );
        }
        Ok(list)
    };
    Ok(Callers {
        service: list("LATCHKEY_SERVICE_CALLERS", &args.service_callers)?,
        admin: list("LATCHKEY_ADMIN_CALLERS", &args.admin_callers)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, tests::refused};

    fn some(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    fn with(tweak: impl FnOnce(&mut ConfigArgs)) -> ConfigArgs {
        let mut args = ConfigArgs::default();
        tweak(&mut args);
        args
    }

    /// TLS with a client CA, and whatever `tweak` adds.
    fn mtls(tweak: impl FnOnce(&mut ConfigArgs)) -> ConfigArgs {
        with(|a| {
            (a.tls_cert, a.tls_key, a.tls_client_ca) =
                (some("s.crt"), some("s.key"), some("ca.pem"));
            tweak(a);
        })
    }

    #[test]
    fn tls_settings_come_whole_and_caller_lists_need_client_certificates() {
        let cert_only = with(|a| a.tls_cert = some("server.crt"));
        refused(cert_only, "LATCHKEY_TLS_CERT", "without LATCHKEY_TLS_KEY");
        let key_only = with(|a| a.tls_key = some("server.key"));
        refused(key_only, "LATCHKEY_TLS_KEY", "without LATCHKEY_TLS_CERT");
        let ca_only = with(|a| a.tls_client_ca = some("ca.pem"));
        refused(ca_only, "LATCHKEY_TLS_CLIENT_CA", "needs TLS");
        let blank = with(|a| (a.tls_cert, a.tls_key) = (some(" "), some("server.key")));
        refused(blank, "LATCHKEY_TLS_CERT", "is empty");
        // A list with TLS but no client CA: nobody would have an identity.
        let no_ca = with(|a| {
            (a.tls_cert, a.tls_key) = (some("server.crt"), some("server.key"));
            a.service_callers = some("spiffe://a/b");
        });
        refused(
            no_ca,
            "LATCHKEY_SERVICE_CALLERS",
            "set LATCHKEY_TLS_CLIENT_CA",
        );
        let admin = with(|a| a.admin_callers = some("ops"));
        refused(
            admin,
            "LATCHKEY_ADMIN_CALLERS",
            "set LATCHKEY_TLS_CLIENT_CA",
        );
        let star = mtls(|a| a.service_callers = some("spiffe://prod/*/x"));
        refused(star, "LATCHKEY_SERVICE_CALLERS", "trailing `/*`");

        let c = Config::resolve(mtls(|a| {
            a.service_callers = some("spiffe://prod/ns/a/*, gateway");
        }))
        .unwrap();
        let tls = c.tls.expect("TLS on");
        assert_eq!(
            tls.client_ca.as_deref(),
            Some(std::path::Path::new("ca.pem"))
        );
        assert!(!c.callers.service.is_open());
        assert!(c.callers.admin.is_open());
        // Empty lists are no lists, with or without TLS.
        let c = Config::resolve(with(|a| a.service_callers = some(" , "))).unwrap();
        assert!(c.tls.is_none() && c.callers.service.is_open());
    }
}
