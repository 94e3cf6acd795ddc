//! Discovery of nodes through nsqlookupd: every configured nsqlookupd's `/nodes` is polled, the
//! lists are merged (a node is known by its broadcast address and TCP port, and a topic counts
//! as tombstoned on a node if any nsqlookupd says so), nodes that appear are added, and nodes
//! no longer listed are removed: what they have not written moves to other nodes, and they
//! close once what is in flight is answered. While every nsqlookupd fails, the last good list
//! is kept. Nodes given to the pool by address stay whatever nsqlookupd says.
//!
//! A list is not taken as the truth about nodes that work: an nsqlookupd that restarted lists
//! no node until each nsqd registers again (nsqd pings every 15 s, so up to 30 s later), and
//! one that lost a registration lists fewer. A node no longer listed is removed when its
//! connection fails (it is down), or once it has gone unlisted for
//! `PoolConfig::lookupd_grace_period`; until then it keeps its traffic. Listed again, it is no
//! longer counted unlisted.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use nsq_lookupd::{Lookupd, LookupdError, Node, merge_nodes};
use tokio::time::Instant;

use super::PoolShared;

/// How long one poll of one nsqlookupd may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls until the pool is gone or closed.
pub(crate) async fn run(shared: Weak<PoolShared>) {
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
pub(crate) async fn poll(shared: &Arc<PoolShared>) -> Vec<String> {
    let lookupds = &shared.config.lookupd;
    let answers =
        futures::future::join_all(lookupds.iter().map(String::as_str).map(nodes_of)).await;
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
    let listed: Vec<Listed> = merge_nodes(lists)
        .iter()
        .map(|node| Listed {
            addr: node.tcp_address(),
            tombstoned: node.tombstoned_topics().map(str::to_owned).collect(),
        })
        .collect();
    reconcile(shared, &listed, Instant::now());
    failed
}

/// The nodes one nsqlookupd lists, within [`POLL_TIMEOUT`].
async fn nodes_of(lookupd: &str) -> Result<Vec<Node>, LookupdError> {
    Lookupd::new(lookupd)?.timeout(POLL_TIMEOUT).nodes().await
}

/// A node as the nsqlookupds list it: its TCP address and the topics tombstoned on it.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) addr: String,
    pub(crate) tombstoned: Vec<String>,
}

/// Adds the nodes `listed` that the pool lacks, and removes the discovered nodes it no longer
/// lists that are down or have gone unlisted for the grace period, as of `now`.
pub(crate) fn reconcile(shared: &Arc<PoolShared>, listed: &[Listed], now: Instant) {
    let mut seen = HashSet::new();
    for node in listed {
        let addr = &node.addr;
        let known = shared.nodes().iter().any(|n| n.addr == *addr);
        if !known {
            tracing::info!(%addr, "nsqlookupd lists a new node");
        }
        match shared.add_node(addr.clone(), true) {
            Ok(Some(added)) => {
                added.set_tombstoned(node.tombstoned.clone());
                if added.listed_again() {
                    tracing::info!(%addr, "nsqlookupd lists the node again");
                }
            }
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%addr, error = %err, "cannot add the node nsqlookupd lists");
                continue;
            }
        }
        seen.insert(addr.as_str());
    }
    let grace = shared.config.lookupd_grace_period;
    let mut gone = Vec::new();
    for node in shared.nodes().iter() {
        if !node.discovered || seen.contains(node.addr.as_str()) {
            continue;
        }
        let since = node.unlisted_since(now);
        let unlisted = now.saturating_duration_since(since);
        let addr = &node.addr;
        // A slow node is connected: only its connection being down counts here.
        if !node.is_up() && !node.health.is_slow() {
            tracing::info!(
                %addr,
                "nsqlookupd no longer lists the node and it is down: removing it from the pool"
            );
            gone.push(addr.clone());
        } else if unlisted >= grace {
            tracing::info!(
                %addr,
                ?unlisted,
                ?grace,
                "nsqlookupd has not listed the node for the grace period: removing it from the pool"
            );
            gone.push(addr.clone());
        } else if since == now {
            tracing::info!(
                %addr,
                ?grace,
                "nsqlookupd no longer lists the node: it stays in the pool while it is up, for up to the grace period"
            );
        }
    }
    for addr in gone {
        shared.remove_node(&addr);
    }
}
