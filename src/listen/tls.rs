//! TLS on both ports (`LATCHKEY_TLS_CERT`, `LATCHKEY_TLS_KEY`), with client certificates required
//! on the gRPC port when `LATCHKEY_TLS_CLIENT_CA` is set (mTLS); rustls on aws-lc-rs.
//!
//! The files are read again every [`RELOAD_EVERY`]: when they changed and make a valid set, new
//! connections get the new certificate (or client CA) at once, without a restart, as certificate
//! managers expect when they rotate files in place. A set that does not load (a certificate
//! replaced before its key, a half-written file) is logged and skipped; the previous one stays in
//! use until the files are whole again.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::digest;
use tokio::{net::TcpStream, time::Instant};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        crypto::{CryptoProvider, aws_lc_rs::default_provider},
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
    server::TlsStream,
};
use tracing::{debug, info, warn};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use crate::domain::caller::CallerIdentity;

/// How often the files are read again: a replaced set reaches new connections within this, well
/// inside the 10 s promised.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Where the certificate, its key and the client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM bundle: the CAs client certificates must chain to; `None`: no client certificate asked.
    pub client_ca: Option<PathBuf>,
}

/// Which port a connection came to: gRPC speaks HTTP/2 and may require a client certificate,
/// HTTP speaks HTTP/1.1 and never asks for one (probes, JWKS fetchers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Grpc,
    Http,
}

impl Port {
    fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// The TLS settings of both ports as last loaded from the files.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    loaded: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// A digest of the files' bytes (the key is not kept), to tell when they change.
    digest: Vec<u8>,
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

impl Tls {
    /// Loads the files, or says which one is wrong and why.
    pub fn load(files: TlsFiles) -> anyhow::Result<Self> {
        let loaded = read(&files)?;
        Ok(Self {
            files,
            loaded: RwLock::new(loaded),
        })
    }

    /// What accepts a connection to `port` with the settings loaded now.
    pub fn acceptor(&self, port: Port) -> TlsAcceptor {
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsAcceptor::from(match port {
            Port::Grpc => loaded.grpc.clone(),
            Port::Http => loaded.http.clone(),
        })
    }

    /// Reads the files every [`RELOAD_EVERY`], for ever, and takes in a changed set that loads.
    pub async fn follow_files(self: Arc<Self>) {
        // The last set refused, so that it is reported once rather than every period.
        let mut refused = Vec::new();
        loop {
            tokio::time::sleep(RELOAD_EVERY).await;
            let tls = self.clone();
            let Ok(checked) = tokio::task::spawn_blocking(move || tls.check()).await else {
                continue;
            };
            match checked {
                Check::Same => {}
                Check::Loaded(loaded) => {
                    *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
                    refused.clear();
                    info!(
                        cert = %self.files.cert.display(),
                        "TLS certificate files changed: new connections use them"
                    );
                }
                Check::Refused { digest, error } if digest != refused => {
                    warn!(
                        error = %format!("{error:#}"),
                        "TLS certificate files changed but do not load; still serving the previous ones"
                    );
                    refused = digest;
                }
                Check::Refused { .. } => {}
            }
        }
    }

    /// Whether the files changed since they were loaded, and what they make now.
    fn check(&self) -> Check {
        let digest = match digest_of(&self.files) {
            Ok(digest) => digest,
            // Mid-replacement a file may be missing for a moment: the next period looks again.
            Err(error) => {
                return Check::Refused {
                    digest: b"unreadable".to_vec(),
                    error,
                };
            }
        };
        let current = self
            .loaded
            .read()
            .map(|l| l.digest.clone())
            .unwrap_or_default();
        if digest == current {
            return Check::Same;
        }
        match read(&self.files) {
            Ok(loaded) => Check::Loaded(loaded),
            Err(error) => Check::Refused { digest, error },
        }
    }
}

enum Check {
    Same,
    Loaded(Loaded),
    Refused {
        digest: Vec<u8>,
        error: anyhow::Error,
    },
}

/// A digest of what the files hold now.
fn digest_of(files: &TlsFiles) -> anyhow::Result<Vec<u8>> {
    let mut context = digest::Context::new(&digest::SHA256);
    let named = [
        ("LATCHKEY_TLS_CERT", Some(&files.cert)),
        ("LATCHKEY_TLS_KEY", Some(&files.key)),
        ("LATCHKEY_TLS_CLIENT_CA", files.client_ca.as_ref()),
    ];
    for (var, path) in named {
        let Some(path) = path else { continue };
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(path).with_context(|| format!("{var}: reading {}", path.display()))?,
        );
        context.update(&(bytes.len() as u64).to_be_bytes());
        context.update(&bytes);
    }
    Ok(context.finish().as_ref().to_vec())
}

/// Reads and checks the files: the certificate and key must match, the client CA must hold at
/// least one usable certificate.
fn read(files: &TlsFiles) -> anyhow::Result<Loaded> {
    let digest = digest_of(files)?;
    let provider = Arc::new(default_provider());
    let chain = certificates(&files.cert).context("LATCHKEY_TLS_CERT")?;
    let key = private_key(&files.key).context("LATCHKEY_TLS_KEY")?;
    let base = |provider: &Arc<CryptoProvider>| {
        ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("TLS versions: {e}"))
    };
    let mut http = base(&provider)?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| {
            anyhow!(
                "LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY ({}, {}): {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    let grpc = match &files.client_ca {
        None => base(&provider)?.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path).context("LATCHKEY_TLS_CLIENT_CA")? {
                roots
                    .add(cert)
                    .map_err(|e| anyhow!("LATCHKEY_TLS_CLIENT_CA ({}): {e}", path.display()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| anyhow!("LATCHKEY_TLS_CLIENT_CA ({}): {e}", path.display()))?;
            base(&provider)?.with_client_cert_verifier(verifier)
        }
    };
    let mut grpc = grpc
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("LATCHKEY_TLS_CERT and LATCHKEY_TLS_KEY: {e}"))?;
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        digest,
        grpc: Arc::new(grpc),
        http: Arc::new(http),
    })
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: not PEM certificates: {e}", path.display()))?;
    if chain.is_empty() {
        bail!("{}: no PEM certificate in it", path.display());
    }
    Ok(chain)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    );
    // The parser's error says what it found, never the key's bytes.
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| anyhow!("{}: no usable PEM private key: {e}", path.display()))
}

/// The TLS handshake of a connection to `port`, to be done by `deadline`. The stream and the
/// client certificate's identity, or `None` when the handshake failed (plaintext to a TLS port, no
/// or an untrusted client certificate, or too slow): the connection is then dropped.
pub async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    deadline: Instant,
    port: Port,
) -> Option<(TlsStream<TcpStream>, Option<CallerIdentity>)> {
    let failed = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| identity(cert));
            return Some((tls, identity));
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no TLS handshake within the handshake timeout".to_owned(),
    };
    // The client's doing, and a flood would flood the log: counted, and logged at debug.
    debug!(port = port.name(), error = %failed, "TLS handshake failed");
    metrics::counter!("latchkey_tls_handshake_failures_total", "port" => port.name()).increment(1);
    None
}

/// The identity a client certificate names: its first URI SAN (a SPIFFE ID), else its first DNS
/// SAN, else its subject's common name. rustls has already checked that it chains to the client CA.
pub fn identity(cert: &CertificateDer<'_>) -> Option<CallerIdentity> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.as_slice())
        .unwrap_or_default();
    let uri = names.iter().find_map(|name| match name {
        GeneralName::URI(uri) => Some(*uri),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|name| match name {
            GeneralName::DNSName(dns) => Some(*dns),
            _ => None,
        })
    };
    let cn = || {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    };
    uri.or_else(dns).or_else(cn).and_then(CallerIdentity::new)
}

#[cfg(test)]
mod tests;
