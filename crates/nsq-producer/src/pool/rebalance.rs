//! Requests handed back by nodes that went down, queued again on nodes that are up.
//!
//! A node hands back what it has not written when its connection is lost or a connection
//! attempt fails, so that nothing waits behind a dead node while another is up. Such a request
//! was never written: queuing it elsewhere cannot duplicate it. It keeps its caller's slot, so
//! the caller's [`Publish`](crate::Publish) resolves wherever the request ends. When no node has
//! room or none is up, the request is parked here until one does or its deadline passes (with
//! `fail_fast`, it fails at once instead).
//!
//! A publish that finds no node up is parked here too ([`PoolShared::park`]), so that queuing it
//! never waits: it goes to the first node to come up, or fails at its deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::PoolShared;
use super::route;
use crate::completion::timed_completion;
use crate::error::{NotSentReason, PublishError, Publisher};
use crate::publish_handle::{Publish, publish_span};
use crate::request::{Payload, Request};
use crate::tag::Tag;

/// How often parked requests are tried again (also at every change of a node's health).
const RETRY_PARKED: Duration = Duration::from_millis(10);

/// A request the rebalancer holds, and the room it takes in the pool's waiting room: a publish
/// that found no node up takes some, a request a node handed back none (it came from a bounded
/// queue).
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) request: Request,
    pub(crate) room: u32,
}

/// Runs until every node and the pool have dropped their senders: at close. `handed` brings
/// what nodes hand back, `arriving` publishes that found no node up.
pub(crate) async fn run(
    shared: Arc<PoolShared>,
    mut handed: mpsc::UnboundedReceiver<Request>,
    mut arriving: mpsc::UnboundedReceiver<Held>,
) {
    let mut parked: VecDeque<Held> = VecDeque::new();
    let mut health = shared.health.subscribe();
    // `shared.parked` counts the requests held here and those on their way from `park`: each
    // leaves the count just before it leaves, so that the count never reads zero while one is
    // held, nor includes one whose caller has its outcome.
    loop {
        tokio::select! {
            Some(held) = arriving.recv() => {
                if let Err(held) = settle(&shared, held) {
                    parked.push_back(held);
                }
            }
            request = handed.recv() => match request {
                Some(request) => {
                    // A request nsqd did not execute was written: sending it again spends the
                    // retry budget.
                    let written = route::was_written(&request);
                    if written && !shared.may_resend() {
                        tracing::debug!("retry budget spent: a publish ends with its outcome on its node");
                        shared.fail(request, NotSentReason::Closed);
                    } else if let Err(request) = place(&shared, request, false) {
                        if shared.config.producer.fail_fast {
                            // Publishes do not wait: not for room, not for a node.
                            let up = shared.pick(route::avoid(&request), request.payload.topic());
                            let reason = match up {
                                Some(_) => NotSentReason::QueueFull,
                                None => NotSentReason::NoNodeUp(shared.all_nodes_down()),
                            };
                            shared.fail(request, reason);
                        } else {
                            shared.parked.fetch_add(1, Ordering::SeqCst);
                            parked.push_back(Held { request, room: 0 });
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
        shared.rebalanced.notify_waiters();
    }
    // The pool's sender is gone too (dropped before the nodes' senders at close).
    while let Some(held) = arriving.recv().await {
        parked.push_back(held);
    }
    for held in parked.drain(..) {
        shared.parked.fetch_sub(1, Ordering::SeqCst);
        shared.fail(held.request, NotSentReason::Closed);
        shared.release(held.room);
    }
    shared.rebalanced.notify_waiters();
}

fn retry(shared: &PoolShared, parked: &mut VecDeque<Held>) {
    for _ in 0..parked.len() {
        let Some(held) = parked.pop_front() else {
            break;
        };
        if let Err(held) = settle(shared, held) {
            parked.push_back(held);
        }
    }
}

/// [`place`] for a request held here: once it is queued on a node or has ended, its room in
/// the waiting room is given back.
fn settle(shared: &PoolShared, held: Held) -> Result<(), Held> {
    let Held { request, room } = held;
    match place(shared, request, true) {
        Ok(()) => {
            shared.release(room);
            Ok(())
        }
        Err(request) => Err(Held { request, room }),
    }
}

/// Queues `request` on a node that is up and has room, preferring nodes it was not queued on
/// before; gives it back when there is none. Requests whose caller withdrew them, whose deadline
/// passed, or that were already queued on as many nodes as allowed, end here. A request `held`
/// here leaves `PoolShared::parked` just before it is queued or ends.
fn place(shared: &PoolShared, mut request: Request, held: bool) -> Result<(), Request> {
    let leave = || {
        if held {
            shared.parked.fetch_sub(1, Ordering::SeqCst);
        }
    };
    if request.responder.is_abandoned() {
        leave();
        shared.counters.withdrawn();
        return Ok(());
    }
    let ending = if shared.closed.load(Ordering::Acquire) {
        Some(NotSentReason::Closed)
    } else if request.deadline.is_some_and(|d| d <= Instant::now()) {
        Some(shared.expiry_reason())
    } else if route::tried(&request).len() >= shared.config.max_attempts as usize {
        Some(NotSentReason::NoNodeUp(
            shared.nodes_down(route::tried(&request)),
        ))
    } else {
        None
    };
    if let Some(reason) = ending {
        leave();
        shared.fail(request, reason);
        return Ok(());
    }
    // Nodes not tried yet first, then any node that is up, but never one that holds another
    // copy of the message.
    let untried = route::tried(&request).union(route::avoid(&request));
    let other_copies = route::avoid(&request).clone();
    for mut avoid in [untried, other_copies] {
        // Nodes found full are avoided too.
        while let Some(node) = shared.pick(&avoid, request.payload.topic()) {
            match node.producer.queue_request(request) {
                Ok(()) => {
                    // Counted moved before it leaves `parked`: a flush that no longer sees it
                    // parked sees the move and looks at the nodes again.
                    shared.placed.fetch_add(1, Ordering::SeqCst);
                    leave();
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

impl PoolShared {
    /// Queues a publish that found no node up with the rebalancer, which holds it until a node
    /// is up or its deadline passes, and returns its handle at once: nothing waits here.
    /// `room` is what it took in the pool's waiting room.
    pub(crate) fn park(
        &self,
        payload: Payload,
        deadline: Option<Instant>,
        room: u32,
    ) -> Result<Publish, PublishError> {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            self.release(room);
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
            tag: Tag::default(),
        };
        // Sent under the lock that close takes the sender with: once the sender is gone,
        // nothing more arrives.
        let park = self.park.lock().unwrap_or_else(|p| p.into_inner());
        let Some(park) = park.as_ref() else {
            self.release(room);
            return Err(PublishError::Closed(Publisher::Pool));
        };
        self.parked.fetch_add(1, Ordering::SeqCst);
        if park.send(Held { request, room }).is_err() {
            // The rebalancer is gone: the pool is closing.
            self.parked.fetch_sub(1, Ordering::SeqCst);
            self.release(room);
            return Err(PublishError::Closed(Publisher::Pool));
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
        let mut request = request;
        let outcome = match route::take_failed(&mut request) {
            Some(outcome) => outcome,
            None => PublishError::NotSent(reason),
        };
        self.counters.ended(&outcome);
        request.responder.complete(Err(outcome));
    }
}
