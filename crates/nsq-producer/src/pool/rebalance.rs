//! Requests handed back by nodes that went down, queued again on nodes that are up.
//!
//! A node hands back what it has not written when its connection is lost or a connection
//! attempt fails, so that nothing waits behind a dead node while another is up. Such a request
//! was never written: queuing it elsewhere cannot duplicate it. It keeps its caller's slot, so
//! the caller's [`Publish`](crate::Publish) resolves wherever the request ends. When no node has
//! room or none is up, the request is parked here until one does or its deadline passes (with
//! `fail_fast`, it fails at once instead).
//!
//! A publish that finds no node up is parked here too ([`Shared::park`]), so that queuing it
//! never waits: it goes to the first node to come up, or fails at its deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use crate::completion::timed_completion;
use crate::error::{NotSentReason, PublishError};
use crate::publish::{Publish, publish_span};
use crate::request::{Payload, Request};

/// How often parked requests are tried again (also at every change of a node's health).
const RETRY_PARKED: Duration = Duration::from_millis(10);

/// Runs until every node and the pool have dropped their senders: at close. `handed` brings
/// what nodes hand back, `arriving` publishes that found no node up.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut handed: mpsc::UnboundedReceiver<Request>,
    mut arriving: mpsc::UnboundedReceiver<Request>,
) {
    let mut parked: VecDeque<Request> = VecDeque::new();
    let mut health = shared.health.subscribe();
    loop {
        let held = parked.len();
        let mut arrived = 0;
        tokio::select! {
            Some(request) = arriving.recv() => {
                arrived = 1;
                if let Err(request) = place(&shared, request) {
                    parked.push_back(request);
                }
            }
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
                                None => NotSentReason::NoNodeUp(shared.all_nodes_down()),
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
        // `parked` counts the requests held here and those arriving: added before taken
        // away, so that it never reads zero while one is on its way.
        shared
            .parked
            .fetch_add(parked.len() as u64, Ordering::Relaxed);
        shared
            .parked
            .fetch_sub((held + arrived) as u64, Ordering::Relaxed);
        shared.rebalanced.notify_waiters();
    }
    // The pool's sender is gone too (dropped before the nodes' senders at close).
    while let Some(request) = arriving.recv().await {
        parked.push_back(request);
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
        let reason = shared.expiry_reason();
        shared.fail(request, reason);
        return Ok(());
    }
    if request.tried().len() >= shared.config.max_attempts as usize {
        let reason = NotSentReason::NoNodeUp(shared.nodes_down(request.tried()));
        shared.fail(request, reason);
        return Ok(());
    }
    // Nodes not tried yet first, then any node that is up, but never one that holds another
    // copy of the message.
    let untried = request.tried().union(request.avoid());
    let other_copies = request.avoid().clone();
    for mut avoid in [untried, other_copies] {
        // Nodes found full are avoided too.
        while let Some(node) = shared.pick(&avoid, request.payload.topic()) {
            match node.producer.requeue(request) {
                Ok(()) => {
                    shared.placed.fetch_add(1, Ordering::Release);
                    return Ok(());
                }
                Err(back) => {
                    request = back;
                    avoid.insert(node.id);
                }
            }
        }
    }
    Err(request)
}

impl Shared {
    /// Queues a publish that found no node up with the rebalancer, which holds it until a node
    /// is up or its deadline passes, and returns its handle at once: nothing waits here.
    pub(crate) fn park(
        &self,
        payload: Payload,
        deadline: Option<Instant>,
    ) -> Result<Publish, PublishError> {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            let reason = self.expiry_reason();
            self.counters.not_sent(&reason);
            return Err(PublishError::NotSent(reason));
        }
        let span = publish_span("pool", &payload);
        let (responder, completion) = timed_completion(self.counters.timer());
        let request = Request {
            payload,
            responder,
            deadline,
            permits: 0,
            index: 0,
            route: None,
        };
        // Sent under the lock that close takes the sender with: once the sender is gone,
        // nothing more arrives.
        let park = self.park.lock().unwrap_or_else(|p| p.into_inner());
        let Some(park) = park.as_ref() else {
            return Err(PublishError::Closed);
        };
        self.parked.fetch_add(1, Ordering::Relaxed);
        if park.send(request).is_err() {
            // The rebalancer is gone: the pool is closing.
            self.parked.fetch_sub(1, Ordering::Relaxed);
            return Err(PublishError::Closed);
        }
        Ok(Publish::new(completion, span))
    }

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
