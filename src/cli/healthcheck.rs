//! `latchkey healthcheck`, for container health checks: asks the running server whether it is
//! serving. Without TLS it asks gRPC health on the gRPC port. With TLS it asks `GET /readyz` on
//! the HTTP port over HTTPS (switched with gRPC health, and never asking for a client certificate,
//! so this works under mTLS too), and trusts exactly the certificate in `LATCHKEY_TLS_CERT`: the
//! server it reaches must be the one configured beside it.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, ClientConfig, DigitallySignedStruct, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    },
};
// rustls' own signature checks, on the tree's one provider.
use tokio_rustls::rustls::crypto::{
    WebPkiSupportedAlgorithms, aws_lc_rs::default_provider, verify_tls12_signature,
    verify_tls13_signature,
};

use crate::config::Config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(3);

/// Prints `SERVING` or `NOT_SERVING`; fails unless serving.
pub async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let serving = match &config.tls {
        None => grpc_health(loopback(config.grpc_addr)).await?,
        Some(tls) => tokio::time::timeout(
            TIMEOUT,
            ready_over_https(loopback(config.http_addr), &tls.cert),
        )
        .await
        .map_err(|_| anyhow!("no answer from the HTTPS port within {TIMEOUT:?}"))??,
    };
    println!("{}", if serving { "SERVING" } else { "NOT_SERVING" });
    if !serving {
        bail!("not serving");
    }
    Ok(())
}

/// A server listening on every interface is asked on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

async fn grpc_health(addr: SocketAddr) -> anyhow::Result<bool> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .context("connecting to the gRPC port")?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status();
    Ok(status == ServingStatus::Serving)
}

async fn ready_over_https(addr: SocketAddr, cert: &Path) -> anyhow::Result<bool> {
    let pinned = std::fs::read(cert)
        .ok()
        .and_then(|pem| CertificateDer::pem_slice_iter(&pem).next()?.ok())
        .with_context(|| {
            format!(
                "LATCHKEY_TLS_CERT: no PEM certificate in {}",
                cert.display()
            )
        })?;
    let provider = default_provider();
    let mut tls = ClientConfig::builder_with_provider(Arc::new(provider.clone()))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            cert: pinned,
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connecting to the HTTPS port {addr}: timed out"))?
        .with_context(|| format!("connecting to the HTTPS port {addr}"))?;
    let stream = TlsConnector::from(Arc::new(tls))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .with_context(|| {
            format!(
                "TLS to the HTTPS port {addr} (is its certificate the one in {}?)",
                cert.display()
            )
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP over TLS")?;
    tokio::spawn(connection);
    let request = http::Request::get("/readyz")
        .header(http::header::HOST, addr.to_string())
        .body(String::new())?;
    let response = sender.send_request(request).await.context("GET /readyz")?;
    Ok(response.status() == http::StatusCode::OK)
}

/// Accepts exactly one certificate, whoever issued it, and checks that the server holds its key.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
