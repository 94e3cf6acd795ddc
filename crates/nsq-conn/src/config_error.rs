//! `ConfigError`: a configuration value that nsqd or the client would refuse, naming the
//! option at fault.

/// A configuration value that nsqd (or the client) would refuse.
///
/// [`option`](Self::option) names the option at fault with go-nsq's name (`heartbeat_interval`,
/// `tls_key`, ...). The producer crate uses this same type for its own options.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The address is not `host:port`.
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value outside the accepted range, or one that does not parse.
    #[error("invalid {option} {value}: expected {expected}")]
    InvalidValue {
        /// go-nsq's name of the option.
        option: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// An option name that is not known.
    #[error("unknown option {0:?}")]
    UnknownOption(String),
    /// Options that only work together disagree: one is set without the other it needs, or
    /// they contradict each other.
    #[error("invalid {option}: {reason}")]
    Conflict {
        /// The option at fault.
        option: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Snappy and deflate were both asked for; nsqd would refuse the IDENTIFY.
    #[error("snappy and deflate cannot be enabled together")]
    BothCompressions,
    /// The TLS server name is neither a DNS name nor an IP address.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// A certificate or key file could not be read or holds no usable PEM item.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error("cannot use TLS file {} ({option}): {reason}", path.display())]
    TlsFile {
        /// The option that names the file: `tls_root_ca_file`, `tls_cert` or `tls_key`.
        option: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the TLS settings (a bad certificate or key, say).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error("invalid TLS settings ({option}): {error}")]
    Tls {
        /// The option whose value rustls refused.
        option: &'static str,
        /// rustls's error.
        error: rustls::Error,
    },
}

impl ConfigError {
    /// The option at fault, by go-nsq's name: `address` for the address, `deflate` when snappy
    /// and deflate are both asked for, `tls_server_name` for the TLS server name, the unknown
    /// name itself for an unknown option.
    pub fn option(&self) -> &str {
        match self {
            Self::InvalidAddress { .. } => "address",
            Self::InvalidValue { option, .. } | Self::Conflict { option, .. } => option,
            Self::UnknownOption(option) => option,
            Self::BothCompressions => "deflate",
            #[cfg(feature = "tls")]
            Self::InvalidServerName(_) => "tls_server_name",
            #[cfg(feature = "tls")]
            Self::TlsFile { option, .. } | Self::Tls { option, .. } => option,
        }
    }
}
