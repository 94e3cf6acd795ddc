//! Requests handed back by nodes that went down, queued again on nodes that are up.
//!
//! A node hands back what it has not written when its connection is lost or a connection
//! attempt fails, so that nothing waits behind a dead node while another is up. Such a request
//! was never written: queuing it elsewhere cannot duplicate it. It keeps its caller's slot, so
//! the caller's [`Publish`](crate::Publish) resolves wherever the request ends. When no node has
//! room or none is up, the request is parked here until one does or its deadline passes (with
//! `fail_fast`, it fails at once instead).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use crate::error::{NotSentReason, PublishError};
use crate::request::Request;

/// How often parked requests are tried again (also at every change of a node's health).
const RETRY_PARKED: Duration = Duration::from_millis(10);

/// Runs until every node and the pool have dropped their senders: at close.
pub(crate) async fn run(shared: Arc<Shared>, mut handed: mpsc::UnboundedReceiver<Request>) {
    let mut parked: VecDeque<Request> = VecDeque::new();
    let mut health = shared.health.subscribe();
    loop {
        tokio::select! {
            request = handed.recv() => match request {
                Some(request) => {
                    // A request nsqd did not execute was written: sending it again spends the
                    // retry budget.
                    let written = request.route.as_ref().is_some_and(|r| r.failed.is_some());
                    if written && !shared.may_resend() {
                        tracing::debug!("retry budget spent: a publish ends with its outcome on its node");
                        shared.fail(request, NotSentReason::Closed);
                    } else if let Err(request) = place(&shared, request) {
                        if shared.config.producer.fail_fast {
                            // Publishes do not wait: not for room, not for a node.
                            let up = shared.pick(request.avoid(), request.payload.topic());
                            let reason = match up {
                                Some(_) => NotSentReason::QueueFull,
                                None => NotSentReason::NoNodeUp(shared.nodes_down(u64::MAX)),
                            };
                            shared.fail(request, reason);
                        } else {
                            parked.push_back(request);
                        }
                    }
                }
                None => break,
            },
            changed = health.changed(), if !parked.is_empty() => {
                if changed.is_ok() {
                    retry(&shared, &mut parked);
                }
            }
            () = tokio::time::sleep(RETRY_PARKED), if !parked.is_empty() => {
                retry(&shared, &mut parked);
            }
        }
        shared.parked.store(parked.len() as u64, Ordering::Relaxed);
        shared.rebalanced.notify_waiters();
    }
    for request in parked.drain(..) {
        shared.fail(request, NotSentReason::Closed);
    }
    shared.parked.store(0, Ordering::Relaxed);
    shared.rebalanced.notify_waiters();
}

fn retry(shared: &Shared, parked: &mut VecDeque<Request>) {
    for _ in 0..parked.len() {
        let Some(request) = parked.pop_front() else {
            break;
        };
        if let Err(request) = place(shared, request) {
            parked.push_back(request);
        }
    }
}

/// Queues `request` on a node that is up and has room, preferring nodes it was not queued on
/// before; gives it back when there is none. Requests whose caller withdrew them, whose deadline
/// passed, or that were already queued on as many nodes as allowed, end here.
fn place(shared: &Shared, mut request: Request) -> Result<(), Request> {
    if request.responder.is_abandoned() {
        shared.counters.withdrawn();
        return Ok(());
    }
    if shared.closed.load(Ordering::Acquire) {
        shared.fail(request, NotSentReason::Closed);
        return Ok(());
    }
    if request.deadline.is_some_and(|d| d <= Instant::now()) {
        let reason = shared.expiry_reason(request.tried());
        shared.fail(request, reason);
        return Ok(());
    }
    if request.tried().count_ones() >= shared.config.max_attempts {
        let reason = NotSentReason::NoNodeUp(shared.nodes_down(request.tried()));
        shared.fail(request, reason);
        return Ok(());
    }
    // Nodes not tried yet first, then any node that is up, but never one that holds another
    // copy of the message.
    for avoid in [request.tried() | request.avoid(), request.avoid()] {
        let mut full = 0;
        while let Some(node) = shared.pick(avoid | full, request.payload.topic()) {
            match node.producer.requeue(request) {
                Ok(()) => return Ok(()),
                Err(back) => {
                    request = back;
                    full |= node.bit;
                }
            }
        }
    }
    Err(request)
}

impl Shared {
    /// Ends a request the pool holds, counted in the pool's own counters: with the outcome it
    /// had on its last node if it was written there, else as not sent for `reason`.
    pub(crate) fn fail(&self, request: Request, reason: NotSentReason) {
        if request.responder.is_abandoned() {
            self.counters.withdrawn();
            return;
        }
        let outcome = match request.route.and_then(|r| r.failed) {
            Some(outcome) => outcome,
            None => PublishError::NotSent(reason),
        };
        self.counters.ended(&outcome);
        request.responder.complete(Err(outcome));
    }
}
