//! Dialing: resolve the address, connect under the dial timeout, set `TCP_NODELAY`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpSocket, TcpStream, lookup_host};

use crate::config::ConnConfig;
use crate::error::ConnError;

/// Resolves the configured address and connects to the first address that accepts, all
/// within the dial timeout.
pub(crate) async fn dial(config: &ConnConfig) -> Result<TcpStream, ConnError> {
    let timeout = config.dial_timeout();
    match tokio::time::timeout(timeout, dial_any(config)).await {
        Ok(result) => result,
        Err(_) => Err(ConnError::ConnectTimeout {
            address: config.address().to_owned(),
            timeout,
        }),
    }
}

async fn dial_any(config: &ConnConfig) -> Result<TcpStream, ConnError> {
    let resolve_error = |source: io::Error| ConnError::Resolve {
        address: config.address().to_owned(),
        source: Arc::new(source),
    };
    let local = config.local_addr();
    let candidates: Vec<SocketAddr> = lookup_host(config.address())
        .await
        .map_err(resolve_error)?
        // A local address can only bind connections of its own family.
        .filter(|addr| local.is_none_or(|local| local.is_ipv4() == addr.is_ipv4()))
        .collect();
    let mut last_error = None;
    for addr in candidates {
        tracing::debug!(peer = %addr, "connecting");
        match connect_one(addr, local).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                tracing::info!(
                    peer = %addr,
                    local = ?stream.local_addr().ok(),
                    "TCP connected"
                );
                return Ok(stream);
            }
            Err(source) => {
                tracing::debug!(peer = %addr, error = %source, "connect failed");
                last_error = Some(ConnError::Connect {
                    address: addr,
                    source: Arc::new(source),
                });
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            match local {
                Some(_) => "no address of the local address's family",
                None => "no address found",
            },
        ))
    }))
}

async fn connect_one(addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = local {
        socket.bind(local)?;
    }
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn refused_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config = ConnConfig::builder(addr.to_string()).build().unwrap();
        let err = dial(&config).await.unwrap_err();
        assert!(matches!(err, ConnError::Connect { .. }), "{err}");
    }

    #[tokio::test]
    async fn binds_the_local_address_and_sets_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = ConnConfig::builder(listener.local_addr().unwrap().to_string())
            .local_addr("127.0.0.1:0".parse().unwrap())
            .dial_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let stream = dial(&config).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.local_addr().unwrap().ip().to_string(), "127.0.0.1");
        let config = ConnConfig::builder(listener.local_addr().unwrap().to_string())
            .local_addr("[::1]:0".parse().unwrap())
            .build()
            .unwrap();
        assert!(matches!(
            dial(&config).await.unwrap_err(),
            ConnError::Resolve { .. }
        ));
    }
}
