//! Certificates made by the tests (rcgen, on aws-lc-rs like the server): certificate authorities,
//! server certificates for `localhost` and `127.0.0.1`, and client certificates whose identity is a
//! URI SAN (SPIFFE style), a DNS SAN or only a subject CN. Each is PEM, written to files where a
//! server or a peer reads them; [`ServerTls`] is the set a TLS server is started with, in the test
//! process or as `latchkey serve`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use latchkey::config::ConfigArgs;
use tempfile::TempDir;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

use super::process::Server;

/// A certificate authority of the test's own.
pub struct Ca {
    /// Its certificate, PEM: what a peer trusts.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// What a client certificate names its holder by.
pub enum Identity<'a> {
    /// A URI SAN, such as `spiffe://test/ns/a/sa/api`.
    Uri(&'a str),
    /// A DNS SAN.
    Dns(&'a str),
    /// Only a subject common name (no SAN at all).
    CommonName(&'a str),
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("a CA certificate");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (host names, or IP addresses written as such).
    pub fn server(&self, names: &[&str]) -> Pair {
        let names = names
            .iter()
            .map(|&name| name.to_owned())
            .collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "latchkey test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A server certificate for `localhost` and `127.0.0.1`, where the tests' servers listen.
    pub fn localhost(&self) -> Pair {
        self.server(&["localhost", "127.0.0.1"])
    }

    /// A client certificate naming its holder `identity`.
    pub fn client(&self, identity: Identity<'_>) -> Pair {
        let mut params = CertificateParams::new(Vec::new()).expect("client parameters");
        match identity {
            Identity::Uri(uri) => {
                params.subject_alt_names = vec![SanType::URI(uri.try_into().expect("a URI"))];
                params
                    .distinguished_name
                    .push(DnType::CommonName, "uri client");
            }
            Identity::Dns(name) => {
                params.subject_alt_names =
                    vec![SanType::DnsName(name.try_into().expect("a DNS name"))];
                params
                    .distinguished_name
                    .push(DnType::CommonName, "dns client");
            }
            Identity::CommonName(cn) => params.distinguished_name.push(DnType::CommonName, cn),
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("a certificate");
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/name`; returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("writing a CA certificate");
        path
    }
}

/// Where a pair was written: `dir/name.crt` and `dir/name.key`.
pub struct PairFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pair {
    /// Writes the pair to `dir/name.crt` and `dir/name.key` (replacing what is there).
    pub fn write(&self, dir: &Path, name: &str) -> PairFiles {
        let files = PairFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, &self.cert).expect("writing a certificate");
        std::fs::write(&files.key, &self.key).expect("writing a key");
        files
    }
}

/// A server's TLS set-up: a CA, a `localhost` certificate it signed, and the files they were
/// written to (`ca.pem`, `server.crt`, `server.key`, in `dir`).
pub struct ServerTls {
    pub dir: TempDir,
    pub ca: Ca,
    pub ca_file: PathBuf,
    pub server: PairFiles,
}

impl ServerTls {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca = Ca::new("latchkey test CA");
        let ca_file = ca.write(dir.path(), "ca.pem");
        let server = ca.localhost().write(dir.path(), "server");
        Self {
            dir,
            ca,
            ca_file,
            server,
        }
    }

    /// TLS on both ports; mTLS with this CA as the client CA when `mtls`.
    pub fn args(&self, args: &mut ConfigArgs, mtls: bool) {
        args.tls_cert = Some(self.server.cert.display().to_string());
        args.tls_key = Some(self.server.key.display().to_string());
        if mtls {
            args.tls_client_ca = Some(self.ca_file.display().to_string());
        }
    }
}

/// The same set-up for `latchkey serve` as a child process, and the clients of its CA.
impl ServerTls {
    /// The settings of a server on these files: `LATCHKEY_TLS_CERT` and `LATCHKEY_TLS_KEY`, and
    /// with `mtls`, `LATCHKEY_TLS_CLIENT_CA` (this CA).
    pub fn vars(&self, mtls: bool) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("LATCHKEY_TLS_CERT", self.server.cert.display().to_string()),
            ("LATCHKEY_TLS_KEY", self.server.key.display().to_string()),
        ];
        if mtls {
            vars.push(("LATCHKEY_TLS_CLIENT_CA", self.ca_file.display().to_string()));
        }
        vars
    }

    /// A client certificate of this CA naming `identity`, written as `name.crt` and `name.key`.
    pub fn client(&self, identity: Identity<'_>, name: &str) -> PairFiles {
        self.ca.client(identity).write(self.dir.path(), name)
    }

    /// `latchkey serve` on these files (mTLS with `mtls`) and with the settings `extra`, its data
    /// directory beside them; once it is serving (at most 30 s).
    pub async fn serve(&self, mtls: bool, extra: &[(&'static str, &str)]) -> Server {
        let mut vars = self.vars(mtls);
        vars.extend(extra.iter().map(|&(name, value)| (name, value.to_owned())));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = Server::start(&self.dir.path().join("data"), &vars).await;
        let serving = server
            .wait_log("latchkey serving", Duration::from_secs(30))
            .await;
        assert!(serving, "not serving over TLS:\n{}", server.log());
        server
    }
}
