//! Discovery of nodes through nsqlookupd: every configured nsqlookupd's `/nodes` is polled, the
//! lists are merged (a node is known by its broadcast address and TCP port, and a topic counts
//! as tombstoned on a node if any nsqlookupd says so), nodes that appear are added, and nodes
//! no longer listed are removed: what they have not written moves to other nodes, and they
//! close once what is in flight is answered. While every nsqlookupd fails, the last good list
//! is kept. Nodes given to the pool by address stay whatever nsqlookupd says.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Shared;
use crate::lookupd::{fetch_nodes, merge_nodes};

/// How long one poll of one nsqlookupd may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls until the pool is gone or closed.
pub(crate) async fn run(shared: Weak<Shared>) {
    let mut random = super::seed();
    loop {
        let interval = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.is_closed() {
                return;
            }
            let _failed = poll(&shared).await;
            shared.config.lookupd_poll_interval
        };
        // Up to a fifth shorter, at random.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let cut = interval.mul_f64((random % 1000) as f64 / 5000.0);
        tokio::time::sleep(interval - cut).await;
    }
}

/// Polls every nsqlookupd once and brings the pool's nodes in line with what they list.
/// Returns the errors of the nsqlookupd that failed, each naming its nsqlookupd.
pub(crate) async fn poll(shared: &Arc<Shared>) -> Vec<String> {
    let lookupds = &shared.config.lookupd;
    let answers =
        futures::future::join_all(lookupds.iter().map(|l| fetch_nodes(l, POLL_TIMEOUT))).await;
    let mut lists = Vec::new();
    let mut failed = Vec::new();
    for answer in answers {
        match answer {
            Ok(nodes) => lists.push(nodes),
            Err(err) => {
                tracing::warn!(lookupd = err.lookupd(), error = %err, "polling nsqlookupd failed");
                failed.push(err.to_string());
            }
        }
    }
    if lists.is_empty() {
        // Keep the last good list.
        return failed;
    }
    let listed = merge_nodes(lists);
    let mut seen = HashSet::new();
    for node in &listed {
        let addr = node.tcp_address();
        let tombstoned: Vec<String> = node
            .topics
            .iter()
            .filter(|t| t.tombstoned)
            .map(|t| t.name.clone())
            .collect();
        let known = shared.nodes().iter().any(|n| n.addr == addr);
        if !known {
            tracing::info!(%addr, "nsqlookupd lists a new node");
        }
        match shared.add_node(addr.clone(), true) {
            Ok(Some(node)) => node.set_tombstoned(tombstoned),
            Ok(None) => return failed,
            Err(err) => {
                tracing::warn!(%addr, error = %err, "cannot add the node nsqlookupd lists");
                continue;
            }
        }
        seen.insert(addr);
    }
    let gone: Vec<String> = shared
        .nodes()
        .iter()
        .filter(|n| n.discovered && !seen.contains(&n.addr))
        .map(|n| n.addr.clone())
        .collect();
    for addr in gone {
        shared.remove_node(&addr);
    }
    failed
}
