use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};

use super::*;

fn ca() -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    Issuer::new(params, key)
}

fn der(params: CertificateParams, ca: &Issuer<'static, KeyPair>) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, ca).unwrap().der().clone()
}

fn named(sans: Vec<SanType>, cn: Option<&str>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans;
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params
}

fn identity_of(sans: Vec<SanType>, cn: Option<&str>) -> Option<String> {
    identity(&der(named(sans, cn), &ca())).map(|id| id.to_string())
}

#[test]
fn the_identity_is_the_first_uri_san_else_the_first_dns_san_else_the_common_name() {
    let uri = |u: &str| SanType::URI(u.try_into().unwrap());
    let dns = |d: &str| SanType::DnsName(d.try_into().unwrap());
    assert_eq!(
        identity_of(
            vec![
                dns("api.internal"),
                uri("spiffe://prod/ns/a/sa/api"),
                uri("spiffe://other")
            ],
            Some("cn")
        ),
        Some("spiffe://prod/ns/a/sa/api".into())
    );
    assert_eq!(
        identity_of(vec![dns("api.internal"), dns("second")], Some("cn")),
        Some("api.internal".into())
    );
    assert_eq!(
        identity_of(Vec::new(), Some("billing")),
        Some("billing".into())
    );
    assert_eq!(identity_of(Vec::new(), None), None);
}

#[test]
fn a_certificate_that_does_not_parse_names_nobody() {
    assert_eq!(
        identity(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
        None
    );
}

/// Writes a CA-signed `localhost` certificate and its key to `dir`.
fn write_pair(dir: &Path, ca: &Issuer<'static, KeyPair>) -> TlsFiles {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca: None,
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

fn refusal(files: TlsFiles) -> String {
    format!("{:#}", Tls::load(files).unwrap_err())
}

#[test]
fn files_that_do_not_make_a_certificate_and_its_key_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), &ca());
    Tls::load(files.clone()).unwrap();

    let missing = TlsFiles {
        cert: dir.path().join("nowhere.crt"),
        ..files.clone()
    };
    let said = refusal(missing);
    assert!(
        said.contains("LATCHKEY_TLS_CERT") && said.contains("nowhere.crt"),
        "{said}"
    );

    // A key that is not the certificate's: the other pair's key.
    let other = tempfile::tempdir().unwrap();
    let other = write_pair(other.path(), &ca());
    let said = refusal(TlsFiles {
        key: other.key.clone(),
        ..files.clone()
    });
    assert!(said.contains("LATCHKEY_TLS_KEY"), "{said}");

    // The certificate where the key should be, and the other way round.
    let said = refusal(TlsFiles {
        key: files.cert.clone(),
        ..files.clone()
    });
    assert!(
        said.contains("LATCHKEY_TLS_KEY") && said.contains("no usable PEM private key"),
        "{said}"
    );
    let said = refusal(TlsFiles {
        cert: files.key.clone(),
        ..files.clone()
    });
    assert!(
        said.contains("LATCHKEY_TLS_CERT") && said.contains("no PEM certificate"),
        "{said}"
    );
    // A client CA file with no certificate in it.
    let said = refusal(TlsFiles {
        client_ca: Some(files.key.clone()),
        ..files
    });
    assert!(said.contains("LATCHKEY_TLS_CLIENT_CA"), "{said}");
}

#[test]
fn the_key_never_appears_in_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), &ca());
    let key_pem = std::fs::read_to_string(&files.key).unwrap();
    let body = key_pem.lines().nth(1).unwrap().to_owned();
    let said = refusal(TlsFiles {
        cert: files.key.clone(),
        ..files
    });
    assert!(!said.contains(&body), "{said}");
}

#[tokio::test]
async fn a_changed_set_is_taken_in_and_a_broken_one_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_pair(dir.path(), &ca());
    let tls = Tls::load(files.clone()).unwrap();
    let served = |tls: &Tls| tls.loaded.read().unwrap().digest.clone();
    let first = served(&tls);
    assert!(matches!(tls.check(), Check::Same));

    // A certificate replaced before its key: refused, the first set stays.
    let fresh = tempfile::tempdir().unwrap();
    let next = write_pair(fresh.path(), &ca());
    std::fs::copy(&next.cert, &files.cert).unwrap();
    assert!(matches!(tls.check(), Check::Refused { .. }));
    assert_eq!(served(&tls), first);
    // Then the key: the new set loads.
    std::fs::copy(&next.key, &files.key).unwrap();
    let Check::Loaded(loaded) = tls.check() else {
        panic!("the new pair is not taken in");
    };
    assert_ne!(loaded.digest, first);
}
