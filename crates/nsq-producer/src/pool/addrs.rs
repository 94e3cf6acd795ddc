//! The nsqd addresses a pool is given: two that lead to the same nsqd are one node.
//!
//! The same address twice, `localhost:4150` beside `127.0.0.1:4150`, or two names that
//! resolve to the same socket address are one nsqd; as two nodes they would split its share
//! of the load and, with a fan-out, store two "copies" on one server. [`Pool::new`] cannot
//! wait for DNS, so it compares what it knows without a lookup (IP literals, `localhost`, the
//! text); [`Pool::connect`] resolves every name first.
//!
//! [`Pool::new`]: super::Pool::new
//! [`Pool::connect`]: super::Pool::connect

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// `addrs` without the addresses that lead to an nsqd already listed, in order; `resolved`
/// gives the socket addresses an address is known to lead to (none when unknown: then only
/// the same text, case aside, counts as the same nsqd).
pub(crate) fn distinct(
    addrs: Vec<String>,
    resolved: impl Fn(&str) -> Vec<SocketAddr>,
) -> Vec<String> {
    let mut kept: Vec<(String, Vec<SocketAddr>)> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let sockets = resolved(&addr);
        let same = kept.iter().find(|(k, ks)| {
            k.eq_ignore_ascii_case(&addr) || ks.iter().any(|s| sockets.contains(s))
        });
        match same {
            Some((first, _)) => {
                tracing::info!(%addr, same_as = %first, "two nsqd addresses lead to one nsqd; keeping one node");
            }
            None => kept.push((addr, sockets)),
        }
    }
    kept.into_iter().map(|(addr, _)| addr).collect()
}

/// The socket addresses `addr` leads to without a DNS lookup: an IP literal, or `localhost`
/// (both loopback addresses).
pub(crate) fn literal(addr: &str) -> Vec<SocketAddr> {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return vec![socket];
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Vec::new();
    };
    let Ok(port) = port.parse::<u16>() else {
        return Vec::new();
    };
    if host.eq_ignore_ascii_case("localhost") {
        return vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ];
    }
    Vec::new()
}

/// How long [`resolve`] waits for one name; a name that takes longer is compared as text.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The socket addresses each of `addrs` resolves to (none for an address that does not
/// resolve in time: its connection reports why).
pub(crate) async fn resolve(addrs: &[String]) -> Vec<(String, Vec<SocketAddr>)> {
    let lookups = addrs.iter().map(|addr| async move {
        let mut sockets = literal(addr);
        if sockets.is_empty() {
            let lookup = tokio::net::lookup_host(addr.as_str());
            if let Ok(Ok(found)) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                sockets = found.collect();
            }
        }
        (addr.clone(), sockets)
    });
    futures::future::join_all(lookups).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(addrs: &[&str]) -> Vec<String> {
        addrs.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn addresses_of_one_nsqd_are_one_node() {
        let given = strings(&[
            "localhost:4150",
            "127.0.0.1:4150",
            "LOCALHOST:4150",
            "[::1]:4150",
            "127.0.0.1:4151",
            "nsqd-a:4150",
            "nsqd-a:4150",
            "nsqd-b:4150",
        ]);
        assert_eq!(
            distinct(given, literal),
            strings(&[
                "localhost:4150",
                "127.0.0.1:4151",
                "nsqd-a:4150",
                "nsqd-b:4150"
            ])
        );
    }

    #[test]
    fn different_loopback_families_are_not_merged_without_a_name_joining_them() {
        let given = strings(&["127.0.0.1:4150", "[::1]:4150"]);
        assert_eq!(distinct(given.clone(), literal), given);
    }
}
