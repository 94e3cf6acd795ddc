//! `Message`: one delivery, and the answers (FIN, REQ, TOUCH) that go back to its connection.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nsq_proto::MessageId;
use tokio::sync::mpsc;

use crate::inbox::{Answer, AnswerKind, Input};

/// The way back from a message to the connection it arrived on.
#[derive(Debug)]
pub(crate) struct Link {
    /// The nsqd's address, as configured or as nsqlookupd lists it.
    pub(crate) addr: Arc<str>,
    /// The connection task's inbox.
    pub(crate) inbox: mpsc::UnboundedSender<Input>,
}

/// The message's answer state.
const PENDING: u8 = 0;
const ANSWERED: u8 = 1;

#[derive(Debug)]
struct Delivery {
    id: MessageId,
    attempts: u16,
    timestamp: i64,
    body: Bytes,
    link: Arc<Link>,
    state: AtomicU8,
    /// The handler runner must not answer it (set by [`Message::disable_auto_response`]).
    manual: AtomicBool,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if *self.state.get_mut() == PENDING {
            // Unanswered: requeue now rather than leave it to nsqd's msg_timeout. The send
            // needs no runtime; if the connection is gone, nsqd redelivers after the timeout.
            let _ = self.link.inbox.send(Input::Answer(Answer {
                id: self.id,
                attempts: self.attempts,
                kind: AnswerKind::Dropped,
            }));
        }
    }
}

/// A message delivered by nsqd, to be finished, requeued or touched.
///
/// Answer it once with [`finish`](Self::finish) or one of the requeue methods;
/// [`touch`](Self::touch) asks nsqd for more time and may be repeated before that. A message
/// dropped without an answer is requeued at once, with no delay and no backoff, so it is never
/// left to wait for nsqd's `msg_timeout`.
///
/// The body is shared with the connection's read buffer (or the decompressed data): it is
/// never copied.
pub struct Message {
    inner: Arc<Delivery>,
}

/// Why an answer could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The message was already finished or requeued (or requeued by a drain).
    #[error("message {id} was already answered")]
    AlreadyAnswered {
        /// The message.
        id: MessageId,
    },
    /// The connection the message came on is closed; nsqd redelivers it after its
    /// `msg_timeout`.
    #[error("the connection to nsqd {nsqd} that delivered message {id} is closed")]
    Disconnected {
        /// The message.
        id: MessageId,
        /// The nsqd it came from.
        nsqd: String,
    },
}

impl Message {
    pub(crate) fn new(message: nsq_proto::Message, link: Arc<Link>) -> Self {
        Self {
            inner: Arc::new(Delivery {
                id: message.id,
                attempts: message.attempts,
                timestamp: message.timestamp,
                body: message.body,
                link,
                state: AtomicU8::new(PENDING),
                manual: AtomicBool::new(false),
            }),
        }
    }

    /// A second handle on the same delivery, for the handler runner: the message is requeued
    /// on drop only when both are gone.
    pub(crate) fn share(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }

    /// The message's id.
    pub fn id(&self) -> MessageId {
        self.inner.id
    }

    /// How many times nsqd has delivered it, this delivery included.
    pub fn attempts(&self) -> u16 {
        self.inner.attempts
    }

    /// When nsqd received it, in nanoseconds since the Unix epoch.
    pub fn timestamp_nanos(&self) -> i64 {
        self.inner.timestamp
    }

    /// When nsqd received it.
    pub fn timestamp(&self) -> SystemTime {
        let nanos = self.inner.timestamp;
        if nanos >= 0 {
            UNIX_EPOCH + Duration::from_nanos(nanos as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(nanos.unsigned_abs())
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The address of the nsqd it came from.
    pub fn nsqd(&self) -> &str {
        &self.inner.link.addr
    }

    /// Whether it has been finished or requeued.
    pub fn is_answered(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) == ANSWERED
    }

    /// Finishes it (`FIN`): it was handled and nsqd forgets it. Counts as a success for backoff.
    ///
    /// # Errors
    ///
    /// [`AnswerError`] when it was already answered or its connection is closed.
    pub fn finish(&self) -> Result<(), AnswerError> {
        self.answer(AnswerKind::Finish)
    }

    /// Requeues it (`REQ`) and counts a failure for backoff. With `delay: None` the delay is the
    /// consumer's `default_requeue_delay` times the message's attempts, capped at
    /// `max_requeue_delay`.
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    pub fn requeue(&self, delay: Option<Duration>) -> Result<(), AnswerError> {
        self.answer(AnswerKind::Requeue {
            delay,
            backoff: true,
        })
    }

    /// Requeues it (`REQ`) without counting a failure for backoff; `delay` as in
    /// [`requeue`](Self::requeue).
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    pub fn requeue_without_backoff(&self, delay: Option<Duration>) -> Result<(), AnswerError> {
        self.answer(AnswerKind::Requeue {
            delay,
            backoff: false,
        })
    }

    /// Asks nsqd for another `msg_timeout` before it redelivers the message (`TOUCH`). The
    /// consumer never touches a message by itself.
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    pub fn touch(&self) -> Result<(), AnswerError> {
        if self.is_answered() {
            return Err(AnswerError::AlreadyAnswered { id: self.id() });
        }
        self.send(AnswerKind::Touch)
    }

    /// Tells the handler runner not to answer this message from the handler's result: the
    /// handler answers it itself. Dropped unanswered, it is still requeued at once.
    pub fn disable_auto_response(&self) {
        self.inner.manual.store(true, Ordering::Release);
    }

    /// Whether [`disable_auto_response`](Self::disable_auto_response) was called.
    pub fn is_auto_response_disabled(&self) -> bool {
        self.inner.manual.load(Ordering::Acquire)
    }

    /// Finishes it as given up after `max_attempts`.
    pub(crate) fn give_up(&self) -> Result<(), AnswerError> {
        self.answer(AnswerKind::GiveUp)
    }

    fn answer(&self, kind: AnswerKind) -> Result<(), AnswerError> {
        if self
            .inner
            .state
            .compare_exchange(PENDING, ANSWERED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(AnswerError::AlreadyAnswered { id: self.id() });
        }
        self.send(kind)
    }

    fn send(&self, kind: AnswerKind) -> Result<(), AnswerError> {
        let answer = Answer {
            id: self.inner.id,
            attempts: self.inner.attempts,
            kind,
        };
        self.inner
            .link
            .inbox
            .send(Input::Answer(answer))
            .map_err(|_| AnswerError::Disconnected {
                id: self.id(),
                nsqd: self.nsqd().to_owned(),
            })
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.inner.id)
            .field("attempts", &self.inner.attempts)
            .field("timestamp", &self.inner.timestamp)
            .field("body_len", &self.inner.body.len())
            .field("nsqd", &self.nsqd())
            .field("answered", &self.is_answered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attempts: u16) -> (Message, mpsc::UnboundedReceiver<Input>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            addr: "127.0.0.1:4150".into(),
            inbox: tx,
        });
        let proto = nsq_proto::Message {
            timestamp: 1_700_000_000_000_000_000,
            attempts,
            id: MessageId(*b"0123456789abcdef"),
            body: Bytes::from_static(b"hello"),
        };
        (Message::new(proto, link), rx)
    }

    #[test]
    fn dropped_unanswered_is_requeued_once() {
        let (msg, mut rx) = message(1);
        let shared = msg.share();
        drop(msg);
        assert!(rx.try_recv().is_err(), "one handle is still alive");
        drop(shared);
        let Ok(Input::Answer(answer)) = rx.try_recv() else {
            panic!("expected an answer");
        };
        assert_eq!(answer.kind, AnswerKind::Dropped);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn answered_once_and_not_requeued_on_drop() {
        let (msg, mut rx) = message(2);
        msg.touch().unwrap();
        msg.finish().unwrap();
        assert_eq!(
            msg.requeue(None),
            Err(AnswerError::AlreadyAnswered { id: msg.id() })
        );
        assert!(msg.touch().is_err());
        drop(msg);
        let kinds: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|input| match input {
                Input::Answer(a) => a.kind,
                Input::Ctrl(c) => panic!("unexpected {c:?}"),
            })
            .collect();
        assert_eq!(kinds, [AnswerKind::Touch, AnswerKind::Finish]);
    }

    #[test]
    fn disconnected_names_the_node() {
        let (msg, rx) = message(1);
        drop(rx);
        let err = msg.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the connection to nsqd 127.0.0.1:4150 that delivered message 0123456789abcdef is closed"
        );
        assert_eq!(msg.body(), &Bytes::from_static(b"hello"));
        assert_eq!(msg.attempts(), 1);
    }
}
