//! Why a consumer could not start.

use std::fmt;

use nsq_conn::ConfigError;

use crate::conn::ConnectionError;

/// Why [`ConsumerBuilder::connect`](crate::ConsumerBuilder::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// An option is invalid; the error names it.
    #[error("invalid consumer configuration: {0}")]
    Config(#[from] ConfigError),
    /// Neither an nsqd nor an nsqlookupd address was given.
    #[error("no nsqd or nsqlookupd address to consume from")]
    NoAddress,
    /// An nsqlookupd address is not usable (not an HTTP address, or nsqd's TCP port).
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    #[error("nsqlookupd {address}: {source}")]
    Lookupd {
        /// The address given.
        address: String,
        /// What is wrong with it.
        #[source]
        source: Box<nsq_lookupd::LookupdError>,
    },
    /// No nsqd given directly could be connected and subscribed to, and no nsqlookupd was
    /// given to find others.
    #[error("no nsqd could be subscribed to: {}", Failures(.0))]
    NoNodeConnected(Vec<NodeError>),
}

/// One nsqd's connection or subscription failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("nsqd {address}: {error}")]
pub struct NodeError {
    /// The nsqd's address.
    pub address: String,
    /// What failed.
    #[source]
    pub error: ConnectionError,
}

struct Failures<'a>(&'a [NodeError]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
