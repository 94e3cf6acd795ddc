//! What a connection task is told, in one channel: the answers of its messages and the
//! coordinator's orders. One channel keeps their order: a RDY count queued before an answer is
//! written before it (a requeue after a stop's RDY 0 does not come straight back, and a FIN
//! after a lower max_in_flight does not let nsqd send one message too many).

use std::time::Duration;

use nsq_proto::MessageId;

/// One item of a connection task's inbox.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input {
    /// A message's answer.
    Answer(Answer),
    /// An order from the planner or the coordinator.
    Ctrl(Ctrl),
}

/// What the coordinator tells a connection task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctrl {
    /// Send `RDY n`.
    Rdy(u32),
    /// Stop taking messages: `RDY 0` and `CLS`; close once every message is answered.
    Leave,
    /// Requeue every message still unanswered, then close.
    RequeueAll,
}

/// What a message's connection task is told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnswerKind {
    /// `FIN`: handled.
    Finish,
    /// `REQ`: requeue. `delay: None` means the consumer's default for the message's attempts;
    /// `backoff` says whether it counts as a failure for backoff.
    Requeue {
        delay: Option<Duration>,
        backoff: bool,
    },
    /// `TOUCH`: more time, the message stays unanswered.
    Touch,
    /// Dropped unanswered: `REQ` with no delay and no backoff.
    Dropped,
    /// Given up after `max_attempts`: `FIN`, counted apart from finished messages.
    GiveUp,
}

/// An answer on its way to the connection task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) id: MessageId,
    pub(crate) attempts: u16,
    pub(crate) kind: AnswerKind,
}
