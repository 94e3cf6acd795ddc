//! Test certificates, generated at run time: nothing private is ever committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;

/// A throw-away PKI in a temporary directory: a CA, a server certificate for `localhost`,
/// `127.0.0.1` and `::1` signed by it, a client certificate signed by it, and a second,
/// unrelated CA that trusts none of them.
///
/// Every file is PEM; keys are PKCS#8 ECDSA P-256, which both nsqd (Go) and rustls accept.
/// The directory and its files are deleted on drop.
///
/// ```no_run
/// use nsq_test_support::{NsqdOptions, TestPki};
///
/// let pki = TestPki::generate();
/// let options = NsqdOptions::new()
///     .tls_cert(pki.server_cert())
///     .tls_key(pki.server_key());
/// # drop(options);
/// ```
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// The common name of the client certificate.
    pub const CLIENT_COMMON_NAME: &'static str = "nsq-test-client";

    /// Generates the certificates and writes them to a fresh temporary directory.
    ///
    /// # Panics
    ///
    /// If generating or writing fails.
    pub fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nsq-test-pki-")
            .tempdir()
            .expect("create a temporary directory for test certificates");

        let (ca_params, ca_key) = ca("nsq test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .expect("server certificate names");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("sign the server certificate");

        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, Self::CLIENT_COMMON_NAME);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let client_key = KeyPair::generate().expect("client key");
        let client_cert = client
            .signed_by(&client_key, &issuer)
            .expect("sign the client certificate");

        let (other_params, other_key) = ca("unrelated CA");
        let other_ca = other_params
            .self_signed(&other_key)
            .expect("self-sign the unrelated CA");

        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem).expect("write a test certificate file");
        };
        write("ca.pem", ca_cert.pem());
        write("server.pem", server_cert.pem());
        write("server.key", server_key.serialize_pem());
        write("client.pem", client_cert.pem());
        write("client.key", client_key.serialize_pem());
        write("other-ca.pem", other_ca.pem());
        Self { dir }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate that signed the server and client certificates.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (for `localhost`, `127.0.0.1` and `::1`).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The client certificate (common name [`CLIENT_COMMON_NAME`](Self::CLIENT_COMMON_NAME)).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client certificate's key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// A CA that signed nothing here: trusting only it makes every certificate untrusted.
    pub fn unrelated_ca_cert(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// A rustls server configuration presenting the server certificate, for fake peers; only
    /// `versions` are offered.
    ///
    /// # Panics
    ///
    /// If the files cannot be read back.
    pub fn server_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let certs = CertificateDer::pem_file_iter(self.server_cert())
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .expect("read the server certificate");
        let key = PrivateKeyDer::from_pem_file(self.server_key()).expect("read the server key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate and key");
        Arc::new(config)
    }

    /// A rustls server configuration presenting the server certificate and requiring a client
    /// certificate signed by the CA (as nsqd with `--tls-client-auth-policy=require-verify`),
    /// for fake peers that check what a client presents. TLS 1.2 and 1.3 are offered.
    ///
    /// # Panics
    ///
    /// If the files cannot be read back.
    pub fn mutual_server_config(&self) -> Arc<rustls::ServerConfig> {
        let read = |path: PathBuf| {
            CertificateDer::pem_file_iter(&path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in read(self.ca_cert()) {
            roots.add(cert).expect("the CA certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("a client verifier");
        let key = PrivateKeyDer::from_pem_file(self.server_key()).expect("read the server key");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(read(self.server_cert()), key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params, KeyPair::generate().expect("CA key"))
}
