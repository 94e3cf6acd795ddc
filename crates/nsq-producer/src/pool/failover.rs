//! A node's policy: what its router cannot deliver goes back to the pool.
//!
//! Each node's producer is built with a [`NodePolicy`]. When the node's nsqd is unreachable
//! (from a lost connection or a failed attempt to the next connection) or slow, its router
//! gives up what it has queued, and the policy hands it to the pool's rebalancer, which queues
//! it on another node. Written requests nsqd certainly did not execute, and with
//! `retry_unknown` those whose outcome is unknown, go the same way, marked with the outcome
//! they end with if no other node takes them (the retry budget decides, in `rebalance.rs`).
//! The policy also keeps the node's health where the pool's routing reads it, and judges
//! whether the node is slow ([`health`](super::health)).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::PoolShared;
use super::health::{Change, Judge, NodeHealth, Peers, SlowRule, Verdict};
use super::route::{NodeId, route_mut, take_failed};
use crate::error::{PublishError, Publisher};
use crate::policy::{Health, Judgement, Policy, ReplyTiming, Takes};
use crate::request::Request;

/// The policy of one node's router.
#[derive(Debug)]
pub(crate) struct NodePolicy {
    pub(super) addr: String,
    /// The node's identity in a request's route.
    pub(super) node: NodeId,
    /// Written requests whose outcome is unknown go back too (at least once delivery).
    pub(super) retry_unknown: bool,
    /// The rebalancer's inbox. Only the router holds this policy, so that the inbox closes
    /// once every node's router has ended.
    pub(super) to: mpsc::UnboundedSender<Request>,
    /// The pool, for comparing the node with the others. Weak, so that a pool dropped without
    /// `close` lets its producers go.
    pub(super) pool: Weak<PoolShared>,
    /// `None`: the node is never judged slow.
    pub(super) rule: Option<SlowRule>,
    /// Where the pool reads the node's health.
    pub(super) health: Arc<NodeHealth>,
    pub(super) judge: Mutex<Judged>,
}

/// The judgement, and whether the node is down (from a failure to the next connection).
#[derive(Debug, Default)]
pub(super) struct Judged {
    judge: Judge,
    down: bool,
}

impl NodePolicy {
    fn judged(&self) -> std::sync::MutexGuard<'_, Judged> {
        self.judge.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool's nodes as this one compares itself with them.
    fn peers(&self) -> Peers {
        let mut peers = Peers {
            fastest: None,
            others_up: false,
        };
        let Some(pool) = self.pool.upgrade() else {
            return peers;
        };
        for node in pool.nodes().iter() {
            if !node.is_up() {
                continue;
            }
            if node.id != self.node {
                peers.others_up = true;
            }
            if let Some(pace) = node.health.pace() {
                peers.fastest = Some(peers.fastest.map_or(pace, |f| f.min(pace)));
            }
        }
        peers
    }

    /// Tells the pool that the node became slow or came back, as a change of its connection
    /// does: publishes waiting for a node and parked requests look again.
    fn changed(&self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.health.send_modify(|n| *n += 1);
        }
    }
}

impl Policy for NodePolicy {
    fn takes(&self) -> Takes {
        Takes {
            unwritten: true,
            not_executed: true,
            unknown: self.retry_unknown,
            prompt_redial: true,
            judge_after: self.rule.map(|rule| rule.after),
            publisher: Publisher::Pool,
        }
    }

    fn never_written(&self, mut request: Request) -> Result<(), Request> {
        route_mut(&mut request).tried.insert(self.node);
        self.to.send(request).map_err(|returned| returned.0)
    }

    fn not_executed(&self, requests: Vec<(Request, PublishError)>) {
        for (mut request, outcome) in requests {
            let route = route_mut(&mut request);
            route.tried.insert(self.node);
            route.failed = Some(outcome);
            if let Err(returned) = self.to.send(request) {
                // The pool is gone: the request ends with its outcome here.
                let mut request = returned.0;
                let outcome =
                    take_failed(&mut request).unwrap_or(PublishError::Closed(Publisher::Pool));
                request.responder.complete(Err(outcome));
            }
        }
    }

    fn health(&self, health: Health) {
        let mut judged = self.judged();
        if judged.judge.clear(Instant::now()) {
            self.health.set_slow(false);
        }
        judged.down = health == Health::Down;
        self.health.set_up(!judged.down);
    }

    fn paced(&self, pace: Duration) {
        self.health.set_pace(pace);
    }

    fn judge(&self, timing: &ReplyTiming, now: Instant) -> Judgement {
        let Some(rule) = self.rule else {
            return Judgement {
                slow: false,
                again_at: None,
            };
        };
        let mut judged = self.judged();
        let (judgement, change) = judged.judge.judge(rule, timing, now, || self.peers());
        match change {
            None => {}
            Some(Change::Slow(verdict, waited, limit)) => {
                self.health.set_slow(true);
                self.health.set_up(false);
                let why = match verdict {
                    Verdict::Silent => "has answered nothing",
                    Verdict::FarSlower => "answers far more slowly than the fastest node",
                };
                tracing::warn!(
                    addr = %self.addr,
                    waited_ms = waited.as_millis() as u64,
                    limit_ms = limit.as_millis() as u64,
                    "pool node is slow: it {why}; no new publishes go to it until it has answered what was written to it"
                );
                self.changed();
            }
            Some(Change::Back) => {
                self.health.set_slow(false);
                self.health.set_up(!judged.down);
                tracing::info!(addr = %self.addr, "pool node answered what was written to it; publishes go to it again");
                self.changed();
            }
        }
        judgement
    }
}
