//! TLS settings (`tls_v1` and go-nsq's `tls_*` options) and their resolution into a rustls
//! client configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config_error::ConfigError;
use crate::tls_pinned::ChainOrPinned;

/// The lowest TLS version the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 or 1.3 (the default; nsqd negotiates 1.3 when it can).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// How the client verifies nsqd and, optionally, proves who it is.
///
/// The defaults: nsqd's certificate is checked against the webpki (Mozilla) roots and the name
/// in the configured address, TLS 1.2 and 1.3 are allowed, and no client certificate is sent.
/// Files are read when [`ConnConfigBuilder::build`](crate::ConnConfigBuilder::build) runs, so a
/// missing or malformed file fails before any connection is attempted; a certificate without its
/// key (or a key without its certificate) fails there too, so the two may be set in either order.
///
/// These settings only say *how*; whether TLS is used at all is go-nsq's `tls_v1` switch,
/// [`ConnConfigBuilder::enable_tls`](crate::ConnConfigBuilder::enable_tls) (which
/// [`ConnConfigBuilder::tls_v1`](crate::ConnConfigBuilder::tls_v1) turns on).
///
/// ```
/// use nsq_conn::TlsConfig;
///
/// let tls = TlsConfig::new()
///     .root_ca_file("/etc/nsq/ca.pem")
///     .client_cert("/etc/nsq/client.pem", "/etc/nsq/client.key")
///     .server_name("nsqd.internal");
/// # drop(tls);
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct TlsConfig {
    root_ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    min_version: TlsVersion,
    danger_accept_invalid_certs: bool,
    rustls: Option<Arc<ClientConfig>>,
}

impl TlsConfig {
    /// Verify nsqd against the webpki roots, with no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use a ready-made rustls configuration as is (roots, client certificate, versions);
    /// only the server name is still taken from the address or
    /// [`server_name`](Self::server_name).
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self {
            rustls: Some(config),
            ..Self::default()
        }
    }

    /// go-nsq `tls_root_ca_file`: trust the CA certificates in this PEM file instead of the
    /// webpki roots. As with go-nsq, a certificate in the file is also accepted when nsqd
    /// presents exactly it (a self-signed certificate, even one marked as a CA); its name and
    /// validity period are still checked.
    pub fn root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_ca_file = Some(path.into());
        self
    }

    /// go-nsq `tls_cert` and `tls_key`: present this certificate chain (PEM) and private key
    /// (PEM: PKCS#8, PKCS#1 or SEC1) to nsqd, for `--tls-client-auth-policy`.
    pub fn client_cert(self, cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        self.cert_file(cert_file).key_file(key_file)
    }

    /// go-nsq `tls_cert` alone: the client certificate chain (PEM). It needs
    /// [`key_file`](Self::key_file) too, set before or after.
    pub fn cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(path.into());
        self
    }

    /// go-nsq `tls_key` alone: the client certificate's private key (PEM). It needs
    /// [`cert_file`](Self::cert_file) too, set before or after.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// The name nsqd's certificate must carry (and the SNI sent); by default the host part of
    /// the address (a DNS name or an IP address).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// go-nsq `tls_min_version`: the lowest version accepted. TLS 1.0 and 1.1 are not
    /// supported at all.
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// go-nsq `tls_insecure_skip_verify`: accept any certificate for any name.
    ///
    /// The connection is still encrypted, but anyone on the path can impersonate nsqd and read
    /// everything, including the AUTH secret. Handshake signatures are still checked.
    pub fn danger_accept_invalid_certs(self) -> Self {
        self.insecure_skip_verify(true)
    }

    /// go-nsq `tls_insecure_skip_verify` as a switch: `true` is
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs), `false` (the default)
    /// verifies nsqd's certificate again.
    pub fn insecure_skip_verify(mut self, skip: bool) -> Self {
        self.danger_accept_invalid_certs = skip;
        self
    }

    /// Checks how the settings combine, without reading any file: a certificate needs its key
    /// and the reverse, and a ready-made rustls configuration takes none of the file options.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(ConfigError::Conflict {
                    option: "tls_key",
                    reason: "tls_cert is set without it; set both or neither",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Conflict {
                    option: "tls_cert",
                    reason: "tls_key is set without it; set both or neither",
                });
            }
            _ => {}
        }
        if self.rustls.is_some() {
            let set = [
                ("tls_root_ca_file", self.root_ca_file.is_some()),
                ("tls_cert", self.cert_file.is_some()),
                ("tls_min_version", self.min_version != TlsVersion::default()),
                ("tls_insecure_skip_verify", self.danger_accept_invalid_certs),
            ];
            if let Some((option, _)) = set.into_iter().find(|(_, set)| *set) {
                return Err(ConfigError::Conflict {
                    option,
                    reason: "has no effect on a ready-made rustls configuration (from_rustls)",
                });
            }
        }
        Ok(())
    }

    /// Builds the rustls configuration and the server name for a connection to `host`.
    pub(crate) fn resolve(&self, host: &str) -> Result<ResolvedTls, ConfigError> {
        self.check()?;
        let name = self.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| ConfigError::InvalidServerName(name.to_owned()))?;
        let config = match &self.rustls {
            Some(config) => config.clone(),
            None => Arc::new(self.build_rustls()?),
        };
        Ok(ResolvedTls {
            config,
            server_name,
        })
    }

    fn build_rustls(&self) -> Result<ClientConfig, ConfigError> {
        let provider = crypto_provider();
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|error| ConfigError::Tls {
                option: "tls_min_version",
                error,
            })?;
        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else if let Some(path) = &self.root_ca_file {
            // As go-nsq: a certificate of the root file is also accepted as nsqd's own (a
            // self-signed one, even if marked as a CA).
            let pinned = read_certs("tls_root_ca_file", path)?;
            let mut roots = RootCertStore::empty();
            for cert in &pinned {
                roots.add(cert.clone()).map_err(|error| ConfigError::Tls {
                    option: "tls_root_ca_file",
                    error,
                })?;
            }
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ConfigError::Tls {
                    option: "tls_root_ca_file",
                    error: rustls::Error::General(e.to_string()),
                })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOrPinned { chain, pinned }))
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots)
        };
        match (&self.cert_file, &self.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let chain = read_certs("tls_cert", cert_file)?;
                let key = PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|err| pem_error("tls_key", key_file, err))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| ConfigError::Tls {
                        option: "tls_key",
                        error,
                    })
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("root_ca_file", &self.root_ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("server_name", &self.server_name)
            .field("min_version", &self.min_version)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("custom_rustls_config", &self.rustls.is_some())
            .finish()
    }
}

/// A TLS configuration ready for connecting.
#[derive(Clone)]
pub(crate) struct ResolvedTls {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for ResolvedTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The crypto provider the application installed as rustls' process default, if any (one
/// with post-quantum key exchange, say), else ring's.
fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return installed.clone();
    }
    // rustls 0.23.48 deprecates ring's provider for its lack of post-quantum key exchange; it
    // is still the provider this crate is built with (the `ring` feature of rustls), and nsqd
    // negotiates classical key exchange with it.
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(ring)
}

fn read_certs(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_error(option, path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(option, path, err))?;
    if certs.is_empty() {
        return Err(ConfigError::TlsFile {
            option,
            path: path.to_owned(),
            reason: "no PEM certificate found".to_owned(),
        });
    }
    Ok(certs)
}

fn pem_error(option: &'static str, path: &Path, err: rustls::pki_types::pem::Error) -> ConfigError {
    ConfigError::TlsFile {
        option,
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

/// The verifier behind [`TlsConfig::danger_accept_invalid_certs`]: any certificate passes,
/// handshake signatures are still verified.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
