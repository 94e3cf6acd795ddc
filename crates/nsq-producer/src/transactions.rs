//! The FIFO of written, unanswered requests, in wire order.
//!
//! nsqd executes one connection's commands strictly in order and answers each publish with
//! exactly one frame, so the n-th reply belongs to the n-th request written (docs/protocol.md,
//! "Replies and their order"). This module holds that rule, the outcome each reply gives, and
//! which requests were certainly not executed: no I/O (tokio only for its `Instant`), so it is
//! tested exhaustively on its own. The router is glue around it. When the router's policy asks
//! for them ([`Reclaim`]), requests nsqd did not execute are taken out rather than completed,
//! for the router to give to the policy.

use std::collections::VecDeque;
use std::sync::Arc;

use nsq_conn::ConnError;
use nsq_proto::{ErrorCode, Frame, Response, ServerError};
use tokio::time::Instant;

use crate::completion::Responder;
use crate::deadline_set::{DeadlineSet, earlier};
use crate::error::{NotSentReason, PublishError};
use crate::request::Payload;
use crate::tag::Tag;

/// One written request waiting for its reply.
///
/// Several requests can share one command on the wire (publishes batched into one MPUB): the
/// first of them carries `group`, the number of requests the command's single reply answers;
/// the others carry 0.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) responder: Responder,
    /// When the caller stops waiting and is told it timed out; the reply is still awaited.
    pub(crate) deadline: Option<Instant>,
    /// When nsqd is late with the reply: the caller's deadline, or the configured publish
    /// timeout after the write if that is later (`None`: never). Past it at the head of the
    /// FIFO, nothing more is written, and after the stall grace the connection is dropped.
    pub(crate) overdue_at: Option<Instant>,
    /// When it was written (into the connection's buffer).
    pub(crate) written: Instant,
    /// How many requests, from this one on, the next reply answers (0 for followers).
    pub(crate) group: u32,
    /// How many messages this request publishes: an MPUB's count, 1 for a PUB or a DPUB.
    pub(crate) messages: u32,
    /// Its place in the queue (see `Request::index`).
    pub(crate) index: u64,
    /// The command it carried, kept when the router's policy takes what nsqd does not execute
    /// (see [`Reclaim`]); `None` otherwise.
    pub(crate) payload: Option<Payload>,
    /// See `Request::tag`.
    pub(crate) tag: Tag,
}

impl InFlight {
    /// A request that has a command of its own.
    pub(crate) fn single(
        responder: Responder,
        deadline: Option<Instant>,
        overdue_at: Option<Instant>,
        written: Instant,
        index: u64,
        messages: u32,
    ) -> Self {
        Self {
            responder,
            deadline,
            overdue_at,
            written,
            group: 1,
            messages,
            index,
            payload: None,
            tag: Tag::default(),
        }
    }
}

/// What a reply did to the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The head command was acknowledged: `requests` requests, publishing `messages` messages.
    Acked { requests: usize, messages: u64 },
    /// The head command (`requests` requests) was answered with a fatal error; `aborted`
    /// requests behind it were resolved as not sent. The connection is finished.
    ///
    /// With `maybe_stored` (`E_MPUB_FAILED`) the head's requests were resolved as
    /// [`PublishError::MaybeStored`] and count as unknown; otherwise they were rejected.
    Rejected {
        requests: usize,
        aborted: usize,
        code: ErrorCode,
        maybe_stored: bool,
    },
}

/// A request taken out instead of completed (see [`Reclaim`]): written, but certainly not
/// stored (nsqd aborted it behind a rejection, or failed it with a transient error), or with an
/// unknown outcome when those are reclaimed too. It keeps the outcome it would have had.
#[derive(Debug)]
pub(crate) struct Reclaimed {
    pub(crate) request: InFlight,
    pub(crate) outcome: PublishError,
}

/// A frame that cannot be a reply to anything on this connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// A reply arrived while nothing was outstanding.
    #[error("nsqd sent a reply while no request was outstanding: {}", describe(.0))]
    NothingOutstanding(Frame),
    /// A frame that never answers a publish.
    #[error("nsqd answered a publish with an unexpected frame: {}", describe(.0))]
    UnexpectedFrame(Frame),
}

impl Violation {
    /// The connection error that in-flight requests report.
    pub(crate) fn into_conn_error(self) -> ConnError {
        match self {
            Self::NothingOutstanding(frame) => ConnError::UnexpectedFrame {
                expected: "no reply (nothing was outstanding)",
                frame,
            },
            Self::UnexpectedFrame(frame) => ConnError::UnexpectedFrame {
                expected: "OK or an error frame in reply to a publish",
                frame,
            },
        }
    }
}

#[derive(Debug)]
pub(crate) struct Transactions {
    /// The nsqd's address, which errors name.
    addr: Arc<str>,
    /// Which requests are taken out rather than completed (`None`: none).
    reclaim: Option<Reclaim>,
    /// Requests taken out, for the router to give to its policy.
    reclaimed: Vec<Reclaimed>,
    queue: VecDeque<InFlight>,
    /// How many requests at the head the walk for timeouts has passed: each of them has been
    /// told it timed out, or was answered first. Requests that arrive out of deadline order are
    /// told through `deadlines`, possibly before the walk reaches them.
    timed_out: usize,
    deadlines: DeadlineSet,
}

/// Which written requests are taken out rather than completed, for the router's policy: those
/// nsqd certainly did not execute, each with its command.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reclaim {
    /// Also those whose outcome is unknown (they may be stored).
    pub(crate) unknown: bool,
}

impl Transactions {
    /// The FIFO of the connection to the nsqd at `addr`. With `reclaim`, requests nsqd did not
    /// execute are taken out rather than completed.
    pub(crate) fn new(addr: Arc<str>, reclaim: Option<Reclaim>) -> Self {
        Self {
            addr,
            reclaim,
            reclaimed: Vec::new(),
            queue: VecDeque::new(),
            timed_out: 0,
            deadlines: DeadlineSet::default(),
        }
    }

    /// The requests taken out since the last call.
    pub(crate) fn take_reclaimed(&mut self) -> Vec<Reclaimed> {
        std::mem::take(&mut self.reclaimed)
    }

    /// Takes `request` out when `reclaim` allows it, it carries its command and its caller
    /// still waits; otherwise adds it to `done`, to be completed with `outcome`. Returns
    /// whether it was taken out.
    fn complete_or_reclaim(
        &mut self,
        request: InFlight,
        outcome: PublishError,
        reclaim: bool,
        done: &mut Vec<(InFlight, PublishError)>,
    ) -> bool {
        if reclaim && request.payload.is_some() && request.responder.unwrite() {
            self.reclaimed.push(Reclaimed { request, outcome });
            return true;
        }
        done.push((request, outcome));
        false
    }

    pub(crate) fn push(&mut self, request: InFlight) {
        self.deadlines.push(request.index, request.deadline);
        self.queue.push_back(request);
        let (queue, timed_out) = (&self.queue, self.timed_out);
        self.deadlines
            .compact(queue.len(), |i| waiting(queue, timed_out, i));
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The queue index of the oldest outstanding request: requests are written in queue order.
    pub(crate) fn first_index(&self) -> Option<u64> {
        self.queue.front().map(|r| r.index)
    }

    /// When the oldest outstanding request was written.
    pub(crate) fn head_written(&self) -> Option<Instant> {
        self.queue.front().map(|r| r.written)
    }

    /// When the oldest outstanding request is overdue (see [`InFlight::overdue_at`]).
    pub(crate) fn head_overdue_at(&self) -> Option<Instant> {
        self.queue.front().and_then(|r| r.overdue_at)
    }

    /// The earliest deadline among the requests whose callers have not been told they timed
    /// out (it may have passed: then [`time_out`](Self::time_out) is due).
    pub(crate) fn next_timeout(&mut self) -> Option<Instant> {
        let walk = self.queue.get(self.timed_out).and_then(|r| r.deadline);
        let (queue, timed_out) = (&self.queue, self.timed_out);
        earlier(
            walk,
            self.deadlines.next_early(|i| waiting(queue, timed_out, i)),
        )
    }

    /// Tells the callers of outstanding requests whose deadline passed by `now` that they
    /// timed out. The requests stay outstanding: their replies still come and are consumed.
    /// Returns how many callers were told.
    pub(crate) fn time_out(&mut self, now: Instant) -> usize {
        let mut told = 0;
        // In deadline order from the walk's position: no request behind the first one not due
        // is due, except those that arrived early.
        while let Some(request) = self.queue.get(self.timed_out) {
            if request.deadline.is_none_or(|d| d > now) {
                break;
            }
            told += usize::from(request.responder.time_out());
            self.timed_out += 1;
        }
        while let Some(index) = self.deadlines.pop_due(now) {
            if let Some(request) = position(&self.queue, index).and_then(|at| self.queue.get(at)) {
                // Telling twice is harmless: `time_out` tells a caller once.
                told += usize::from(request.responder.time_out());
            }
        }
        told
    }

    /// Keeps the walk in step with requests leaving the head.
    fn popped(&mut self, n: usize) {
        self.timed_out = self.timed_out.saturating_sub(n);
        if self.queue.is_empty() {
            self.deadlines.clear();
        }
    }

    /// Resolves the head with `frame`.
    ///
    /// Only `OK` and fatal error frames answer a publish. Anything else, or any reply while
    /// nothing is outstanding, is a violation: the caller must fail what is in flight and drop
    /// the connection, since matching can no longer be trusted.
    ///
    /// `count` sees the outcome before any caller is woken, so that a caller who finds its
    /// result also finds it in the counters.
    pub(crate) fn resolve(
        &mut self,
        frame: Frame,
        count: impl FnOnce(&Resolved),
    ) -> Result<Resolved, Violation> {
        if self.queue.is_empty() {
            return Err(Violation::NothingOutstanding(frame));
        }
        match frame {
            Frame::Response(Response::Ok) => {
                let requests = self.head_group();
                let messages = self
                    .queue
                    .iter()
                    .take(requests)
                    .map(|r| u64::from(r.messages))
                    .sum();
                let resolved = Resolved::Acked { requests, messages };
                count(&resolved);
                for request in self.queue.drain(..requests) {
                    request.responder.complete(Ok(()));
                }
                self.popped(requests);
                Ok(resolved)
            }
            Frame::Error(err) if err.is_fatal() => Ok(self.reject_head(err, count)),
            other => Err(Violation::UnexpectedFrame(other)),
        }
    }

    /// How many requests the head command covers.
    fn head_group(&self) -> usize {
        let group = self.queue.front().map_or(1, |head| head.group.max(1));
        (group as usize).min(self.queue.len())
    }

    fn reject_head(&mut self, err: ServerError, count: impl FnOnce(&Resolved)) -> Resolved {
        let requests = self.head_group();
        // nsqd stores an MPUB's messages one at a time and answers `E_MPUB_FAILED` at the first
        // that fails, so the ones before it are stored. Any other error means nothing of the
        // command was stored.
        let maybe_stored = err.code() == &ErrorCode::MpubFailed;
        // What nsqd did not execute is reclaimed when asked; so is what failed for a transient
        // reason (nsqd could not store it now), and, when unknown outcomes are reclaimed too,
        // what may be stored.
        let reclaim = self.reclaim;
        let transient = matches!(err.code(), ErrorCode::PubFailed | ErrorCode::DpubFailed);
        let reclaim_head = reclaim.is_some_and(|p| transient || (maybe_stored && p.unknown));
        let reclaim_rest = reclaim.is_some();
        let head: Vec<InFlight> = self.queue.drain(..requests).collect();
        let rest: Vec<InFlight> = self.queue.drain(..).collect();
        let aborted = rest.len();
        let mut done = Vec::with_capacity(requests + aborted);
        let mut reclaimed_head = 0;
        let mut reclaimed_rest = 0;
        // nsqd answers an MPUB once: every request in the command shares its fate.
        for request in head {
            let outcome = if maybe_stored {
                PublishError::MaybeStored {
                    addr: self.addr.clone(),
                    error: err.clone(),
                }
            } else {
                PublishError::Rejected {
                    addr: self.addr.clone(),
                    error: err.clone(),
                }
            };
            reclaimed_head +=
                usize::from(self.complete_or_reclaim(request, outcome, reclaim_head, &mut done));
        }
        // nsqd stopped reading at the error: nothing behind it was executed.
        for request in rest {
            let outcome = PublishError::NotSent(NotSentReason::Aborted);
            reclaimed_rest +=
                usize::from(self.complete_or_reclaim(request, outcome, reclaim_rest, &mut done));
        }
        let resolved = Resolved::Rejected {
            requests: requests - reclaimed_head,
            aborted: aborted - reclaimed_rest,
            code: err.code().clone(),
            maybe_stored,
        };
        count(&resolved);
        for (request, outcome) in done {
            request.responder.complete(Err(outcome));
        }
        self.timed_out = 0;
        self.deadlines.clear();
        resolved
    }

    /// The connection is gone: every outstanding request may or may not have been stored.
    /// `count` gets how many requests are failed, before their callers are woken; the same
    /// number is returned.
    pub(crate) fn fail_all(
        &mut self,
        cause: Option<Arc<ConnError>>,
        count: impl FnOnce(usize),
    ) -> usize {
        let reclaim = self.reclaim.is_some_and(|p| p.unknown);
        let mut done = Vec::with_capacity(self.queue.len());
        let requests: Vec<InFlight> = self.queue.drain(..).collect();
        for request in requests {
            let outcome = PublishError::Unknown {
                addr: self.addr.clone(),
                cause: cause.clone(),
            };
            self.complete_or_reclaim(request, outcome, reclaim, &mut done);
        }
        let n = done.len();
        count(n);
        for (request, outcome) in done {
            request.responder.complete(Err(outcome));
        }
        self.timed_out = 0;
        self.deadlines.clear();
        n
    }
}

/// Where the request `index` is in `queue` (indices increase along it).
fn position(queue: &VecDeque<InFlight>, index: u64) -> Option<usize> {
    queue.binary_search_by_key(&index, |r| r.index).ok()
}

/// Whether the request `index` is outstanding and not yet passed by the walk for timeouts.
fn waiting(queue: &VecDeque<InFlight>, timed_out: usize, index: u64) -> bool {
    position(queue, index).is_some_and(|at| at >= timed_out)
}

fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Response(r) => {
            let payload = r.payload();
            let shown = &payload[..payload.len().min(32)];
            format!("response {:?}", String::from_utf8_lossy(shown))
        }
        Frame::Error(e) => format!("error {e}"),
        Frame::Message(m) => format!("message {}", m.id),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::completion::{Completion, completion};

    const ADDR: &str = "nsqd.test:4150";

    impl Default for Transactions {
        fn default() -> Self {
            Self::new(Arc::from(ADDR), None)
        }
    }

    fn unknown() -> PublishError {
        PublishError::Unknown {
            addr: Arc::from(ADDR),
            cause: None,
        }
    }

    fn timed_out() -> PublishError {
        PublishError::TimedOut {
            addr: Arc::from(ADDR),
        }
    }

    fn written() -> (InFlight, Completion) {
        written_in_group(1)
    }

    fn written_in_group(group: u32) -> (InFlight, Completion) {
        let (responder, completion) = completion();
        assert!(responder.start_write(&Arc::from(ADDR)));
        let request = InFlight {
            responder,
            deadline: None,
            overdue_at: None,
            written: Instant::now(),
            group,
            messages: 1,
            index: 0,
            payload: None,
            tag: Tag::default(),
        };
        (request, completion)
    }

    fn result(c: &mut Completion) -> Option<Result<(), PublishError>> {
        match Pin::new(c).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    fn error(text: &'static str) -> Frame {
        Frame::Error(ServerError::parse(Bytes::from_static(text.as_bytes())))
    }

    #[test]
    fn fatal_error_rejects_head_and_aborts_the_rest() {
        let mut tx = Transactions::default();
        let mut callers: Vec<_> = (0..4)
            .map(|_| {
                let (request, completion) = written();
                tx.push(request);
                completion
            })
            .collect();
        assert_eq!(
            tx.resolve(Frame::Response(Response::Ok), |_| {}),
            Ok(Resolved::Acked {
                requests: 1,
                messages: 1
            })
        );
        let bad = "E_BAD_TOPIC PUB topic name \"bad:topic\" is not valid";
        assert_eq!(
            tx.resolve(error(bad), |_| {}),
            Ok(Resolved::Rejected {
                requests: 1,
                aborted: 2,
                code: ErrorCode::BadTopic,
                maybe_stored: false
            })
        );
        assert!(tx.is_empty());
        assert_eq!(result(&mut callers[0]), Some(Ok(())));
        let Some(Err(PublishError::Rejected { error: err, .. })) = result(&mut callers[1]) else {
            panic!("expected a rejection")
        };
        assert_eq!(err.to_string(), bad);
        for caller in &mut callers[2..] {
            assert_eq!(
                result(caller),
                Some(Err(PublishError::NotSent(NotSentReason::Aborted)))
            );
        }
    }

    #[test]
    fn unexpected_frames_are_violations() {
        let mut tx = Transactions::default();
        assert!(matches!(
            tx.resolve(Frame::Response(Response::Ok), |_| {}),
            Err(Violation::NothingOutstanding(_))
        ));
        let (request, mut caller) = written();
        tx.push(request);
        for frame in [
            Frame::Response(Response::Other(Bytes::from_static(b"{\"x\":1}"))),
            Frame::Response(Response::CloseWait),
            Frame::Response(Response::Heartbeat),
            error("E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight"),
        ] {
            assert!(matches!(
                tx.resolve(frame, |_| {}),
                Err(Violation::UnexpectedFrame(_))
            ));
        }
        assert_eq!(
            result(&mut caller),
            None,
            "a violation resolves nobody by itself"
        );
        assert_eq!(tx.fail_all(None, |_| {}), 1);
        assert_eq!(result(&mut caller), Some(Err(unknown())));
    }

    #[test]
    fn counting_happens_before_any_caller_is_woken() {
        let mut tx = Transactions::default();
        let mut callers: Vec<_> = (0..4)
            .map(|_| {
                let (request, completion) = written();
                tx.push(request);
                completion
            })
            .collect();
        let mut counted = Vec::new();
        tx.resolve(Frame::Response(Response::Ok), |r| {
            assert_eq!(result(&mut callers[0]), None);
            counted.push(format!("{r:?}"));
        })
        .unwrap();
        assert_eq!(result(&mut callers[0]), Some(Ok(())));
        tx.resolve(error("E_BAD_MESSAGE PUB message too big 2 > 1"), |r| {
            assert_eq!(result(&mut callers[1]), None);
            assert_eq!(result(&mut callers[2]), None);
            counted.push(format!("{r:?}"));
        })
        .unwrap();
        assert_eq!(counted.len(), 2);

        let (request, mut caller) = written();
        tx.push(request);
        let failed = tx.fail_all(None, |n| {
            assert_eq!(n, 1);
            assert_eq!(result(&mut caller), None);
        });
        assert_eq!(failed, 1);
        assert_eq!(result(&mut caller), Some(Err(unknown())));
    }

    #[test]
    fn one_reply_answers_a_whole_batch() {
        let mut tx = Transactions::default();
        let mut callers = Vec::new();
        for group in [3, 0, 0, 2, 0, 1] {
            let (request, completion) = written_in_group(group);
            tx.push(request);
            callers.push(completion);
        }
        assert_eq!(
            tx.resolve(Frame::Response(Response::Ok), |_| {}),
            Ok(Resolved::Acked {
                requests: 3,
                messages: 3
            })
        );
        let bad = "E_BAD_MESSAGE MPUB message too big 105 > 100";
        assert_eq!(
            tx.resolve(error(bad), |_| {}),
            Ok(Resolved::Rejected {
                requests: 2,
                aborted: 1,
                code: ErrorCode::BadMessage,
                maybe_stored: false
            })
        );
        for caller in &mut callers[..3] {
            assert_eq!(result(caller), Some(Ok(())));
        }
        for caller in &mut callers[3..5] {
            let Some(Err(PublishError::Rejected { error: err, .. })) = result(caller) else {
                panic!("every request of the rejected batch shares the rejection")
            };
            assert_eq!(err.to_string(), bad);
        }
        assert_eq!(
            result(&mut callers[5]),
            Some(Err(PublishError::NotSent(NotSentReason::Aborted)))
        );
    }

    #[test]
    fn mpub_failed_may_have_stored_the_whole_group() {
        let mut tx = Transactions::default();
        let mut callers = Vec::new();
        for group in [3, 0, 0, 1] {
            let (request, completion) = written_in_group(group);
            tx.push(request);
            callers.push(completion);
        }
        let failed = "E_MPUB_FAILED MPUB failed exiting";
        assert_eq!(
            tx.resolve(error(failed), |_| {}),
            Ok(Resolved::Rejected {
                requests: 3,
                aborted: 1,
                code: ErrorCode::MpubFailed,
                maybe_stored: true
            })
        );
        assert!(tx.is_empty());
        for caller in &mut callers[..3] {
            let Some(Err(err)) = result(caller) else {
                panic!("expected an error")
            };
            let PublishError::MaybeStored { error: server, .. } = &err else {
                panic!("every request of the MPUB may be stored, got {err:?}")
            };
            assert_eq!(server.to_string(), failed);
            assert_eq!(server.code(), &ErrorCode::MpubFailed);
            assert!(!err.is_retry_safe());
            assert_eq!(err.delivery(), crate::Delivery::Unknown);
        }
        assert_eq!(
            result(&mut callers[3]),
            Some(Err(PublishError::NotSent(NotSentReason::Aborted)))
        );
    }

    #[test]
    fn pub_and_dpub_failed_stay_retry_safe_rejections() {
        for failed in [
            "E_PUB_FAILED PUB failed exiting",
            "E_DPUB_FAILED DPUB failed exiting",
        ] {
            let mut tx = Transactions::default();
            let (request, mut caller) = written();
            tx.push(request);
            let (request, mut behind) = written();
            tx.push(request);
            let Ok(Resolved::Rejected {
                requests: 1,
                aborted: 1,
                maybe_stored: false,
                ..
            }) = tx.resolve(error(failed), |_| {})
            else {
                panic!("{failed}: expected a plain rejection")
            };
            let Some(Err(err)) = result(&mut caller) else {
                panic!("expected an error")
            };
            assert!(
                matches!(&err, PublishError::Rejected { error: e, .. } if e.to_string() == failed)
            );
            assert!(err.is_retry_safe());
            assert_eq!(err.delivery(), crate::Delivery::NotStored);
            assert_eq!(
                result(&mut behind),
                Some(Err(PublishError::NotSent(NotSentReason::Aborted)))
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn timed_out_requests_stay_outstanding_until_their_reply() {
        let mut tx = Transactions::default();
        let start = Instant::now();
        let mut callers = Vec::new();
        for i in 0..3u64 {
            let (mut request, completion) = written();
            request.deadline = Some(start + std::time::Duration::from_secs(i + 1));
            tx.push(request);
            callers.push(completion);
        }
        assert_eq!(
            tx.next_timeout(),
            Some(start + std::time::Duration::from_secs(1))
        );
        assert_eq!(
            tx.time_out(start + std::time::Duration::from_millis(2500)),
            2
        );
        assert_eq!(
            tx.next_timeout(),
            Some(start + std::time::Duration::from_secs(3))
        );
        assert_eq!(result(&mut callers[0]), Some(Err(timed_out())));
        assert_eq!(result(&mut callers[1]), Some(Err(timed_out())));
        assert_eq!(result(&mut callers[2]), None);
        // The late replies are still matched in order: the first two change nothing, the third
        // answers its own caller.
        assert_eq!(tx.len(), 3);
        for _ in 0..3 {
            tx.resolve(Frame::Response(Response::Ok), |_| {}).unwrap();
        }
        assert_eq!(result(&mut callers[2]), Some(Ok(())));
        assert_eq!(tx.next_timeout(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_out_of_order_are_each_kept() {
        let mut tx = Transactions::default();
        let start = Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let mut callers = Vec::new();
        for (i, deadline) in [Some(3000), Some(1000), None, Some(2000)]
            .into_iter()
            .enumerate()
        {
            let (mut request, completion) = written();
            request.index = i as u64;
            request.deadline = deadline.map(at);
            tx.push(request);
            callers.push(completion);
        }
        assert_eq!(tx.next_timeout(), Some(at(1000)));
        assert_eq!(tx.time_out(at(1500)), 1);
        assert_eq!(result(&mut callers[1]), Some(Err(timed_out())));
        assert_eq!(result(&mut callers[0]), None);
        assert_eq!(tx.next_timeout(), Some(at(2000)));
        assert_eq!(tx.time_out(at(2500)), 1);
        assert_eq!(result(&mut callers[3]), Some(Err(timed_out())));
        assert_eq!(tx.next_timeout(), Some(at(3000)));
        // The head is answered before its deadline; the one without a deadline never times out.
        tx.resolve(Frame::Response(Response::Ok), |_| {}).unwrap();
        assert_eq!(result(&mut callers[0]), Some(Ok(())));
        // The walk passes the requests already told, without telling them twice.
        assert_eq!(tx.time_out(at(3000)), 0);
        assert_eq!(tx.next_timeout(), None);
        assert_eq!(tx.time_out(at(60_000)), 0);
        assert_eq!(result(&mut callers[2]), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push,
        PushBatch(u32),
        Ok,
        Error,
        MpubFailed,
        Violation,
        Disconnect,
        DropCaller(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Push),
            1 => (2u32..6).prop_map(Op::PushBatch),
            3 => Just(Op::Ok),
            1 => Just(Op::Error),
            1 => Just(Op::MpubFailed),
            1 => Just(Op::Violation),
            1 => Just(Op::Disconnect),
            1 => (0usize..64).prop_map(Op::DropCaller),
        ]
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expected {
        Pending,
        Acked,
        Rejected,
        MaybeStored,
        Aborted,
        Unknown,
    }

    proptest! {
        /// Any interleaving of pushes, replies, disconnects and dropped callers resolves each
        /// caller exactly as a plain list model says, and never resolves a caller twice or with
        /// another caller's reply.
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut tx = Transactions::default();
            // Model: commands in wire order, each the list of its callers' indices; each
            // caller's expected outcome.
            let mut model: Vec<Vec<usize>> = Vec::new();
            let mut expected: Vec<Expected> = Vec::new();
            let mut callers: Vec<Option<Completion>> = Vec::new();
            for op in ops {
                match op {
                    Op::Push => {
                        let (request, completion) = written();
                        tx.push(request);
                        model.push(vec![callers.len()]);
                        expected.push(Expected::Pending);
                        callers.push(Some(completion));
                    }
                    Op::PushBatch(n) => {
                        let mut command = Vec::new();
                        for i in 0..n {
                            let (request, completion) =
                                written_in_group(if i == 0 { n } else { 0 });
                            tx.push(request);
                            command.push(callers.len());
                            expected.push(Expected::Pending);
                            callers.push(Some(completion));
                        }
                        model.push(command);
                    }
                    Op::Ok => {
                        let got = tx.resolve(Frame::Response(Response::Ok), |_| {});
                        if model.is_empty() {
                            prop_assert!(got.is_err());
                        } else {
                            let head = model.remove(0);
                            prop_assert_eq!(got, Ok(Resolved::Acked { requests: head.len(), messages: head.len() as u64 }));
                            for i in head {
                                expected[i] = Expected::Acked;
                            }
                        }
                    }
                    Op::Error => {
                        let got = tx.resolve(error("E_BAD_MESSAGE PUB message too big 2 > 1"), |_| {});
                        if model.is_empty() {
                            prop_assert!(got.is_err());
                        } else {
                            let head = model.remove(0);
                            let aborted = model.iter().map(Vec::len).sum();
                            prop_assert_eq!(got, Ok(Resolved::Rejected { requests: head.len(), aborted, code: ErrorCode::BadMessage, maybe_stored: false }));
                            for i in head {
                                expected[i] = Expected::Rejected;
                            }
                            for i in model.drain(..).flatten() {
                                expected[i] = Expected::Aborted;
                            }
                        }
                    }
                    Op::MpubFailed => {
                        let got = tx.resolve(error("E_MPUB_FAILED MPUB failed exiting"), |_| {});
                        if model.is_empty() {
                            prop_assert!(got.is_err());
                        } else {
                            let head = model.remove(0);
                            let aborted = model.iter().map(Vec::len).sum();
                            prop_assert_eq!(got, Ok(Resolved::Rejected { requests: head.len(), aborted, code: ErrorCode::MpubFailed, maybe_stored: true }));
                            for i in head {
                                expected[i] = Expected::MaybeStored;
                            }
                            for i in model.drain(..).flatten() {
                                expected[i] = Expected::Aborted;
                            }
                        }
                    }
                    Op::Violation => {
                        let got = tx.resolve(Frame::Response(Response::CloseWait), |_| {});
                        prop_assert!(got.is_err());
                    }
                    Op::Disconnect => {
                        let outstanding: usize = model.iter().map(Vec::len).sum();
                        prop_assert_eq!(tx.fail_all(None, |_| {}), outstanding);
                        for i in model.drain(..).flatten() {
                            expected[i] = Expected::Unknown;
                        }
                    }
                    Op::DropCaller(i) => {
                        if let Some(slot) = callers.get_mut(i) {
                            *slot = None;
                        }
                    }
                }
                prop_assert_eq!(tx.len(), model.iter().map(Vec::len).sum::<usize>());
            }
            for (i, caller) in callers.iter_mut().enumerate() {
                let Some(caller) = caller else { continue };
                let got = result(caller);
                match expected[i] {
                    Expected::Pending => prop_assert_eq!(got, None),
                    Expected::Acked => prop_assert_eq!(got, Some(Ok(()))),
                    Expected::Rejected => prop_assert!(matches!(got, Some(Err(PublishError::Rejected { .. }))), "{:?}", got),
                    Expected::MaybeStored => prop_assert!(matches!(got, Some(Err(PublishError::MaybeStored { .. }))), "{:?}", got),
                    Expected::Aborted => prop_assert_eq!(got, Some(Err(PublishError::NotSent(NotSentReason::Aborted)))),
                    Expected::Unknown => prop_assert_eq!(got, Some(Err(unknown()))),
                }
            }
        }
    }
}
