//! What a handle sends to the router.

use std::time::Duration;

use bytes::Bytes;
use nsq_proto::{Command, PublishLimits, Topic};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::completion::Responder;
use crate::error::{PingFailure, PublishError};
use crate::stats::Stats;
use crate::tag::Tag;

/// One publish, validated by the caller and encoded by the router straight into the
/// connection's write buffer (the body is copied once).
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) payload: Payload,
    pub(crate) responder: Responder,
    pub(crate) deadline: Option<Instant>,
    /// Queue permits this request holds (its size, at least the gate's unit); returned when it
    /// leaves the queue.
    pub(crate) permits: u32,
    /// Its place in the queue, counted from 0 by the router as it takes requests out (0 until
    /// then). Requests are written and resolved in this order; `flush` waits on it.
    pub(crate) index: u64,
    /// What its router's policy attached to it (see [`Tag`]); the router never reads it.
    pub(crate) tag: Tag,
}

/// The command a request carries.
#[derive(Debug, Clone)]
#[allow(unnameable_types, reason = "part of the sealed `Starter`")]
pub enum Payload {
    Pub {
        topic: Topic,
        body: Bytes,
    },
    Mpub {
        topic: Topic,
        bodies: Vec<Bytes>,
    },
    Dpub {
        topic: Topic,
        delay: Duration,
        body: Bytes,
    },
}

impl Payload {
    /// How many messages it publishes.
    pub(crate) fn messages(&self) -> u32 {
        match self {
            Self::Mpub { bodies, .. } => u32::try_from(bodies.len()).unwrap_or(u32::MAX),
            Self::Pub { .. } | Self::Dpub { .. } => 1,
        }
    }
}

/// Builds requests from a caller's arguments, refusing locally what nsqd would refuse.
#[derive(Clone, Copy)]
pub(crate) struct Checks<'a>(pub(crate) &'a PublishLimits);

impl Checks<'_> {
    pub(crate) fn pub_payload(self, topic: &Topic, body: Bytes) -> Result<Payload, PublishError> {
        self.0.check_pub(&body)?;
        let topic = topic.clone();
        Ok(Payload::Pub { topic, body })
    }

    pub(crate) fn mpub_payload<I>(self, topic: &Topic, bodies: I) -> Result<Payload, PublishError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let bodies: Vec<Bytes> = bodies.into_iter().map(Into::into).collect();
        self.0.check_mpub(&bodies)?;
        let topic = topic.clone();
        Ok(Payload::Mpub { topic, bodies })
    }

    pub(crate) fn dpub_payload(
        self,
        topic: &Topic,
        delay: Duration,
        body: Bytes,
    ) -> Result<Payload, PublishError> {
        self.0.check_dpub(delay, &body)?;
        let topic = topic.clone();
        Ok(Payload::Dpub { topic, delay, body })
    }
}

impl Payload {
    pub(crate) fn topic(&self) -> &Topic {
        match self {
            Self::Pub { topic, .. } | Self::Mpub { topic, .. } | Self::Dpub { topic, .. } => topic,
        }
    }

    pub(crate) fn command(&self) -> Command<'_> {
        match self {
            Self::Pub { topic, body } => Command::Pub { topic, body },
            Self::Mpub { topic, bodies } => Command::Mpub { topic, bodies },
            Self::Dpub { topic, delay, body } => Command::Dpub {
                topic,
                delay: *delay,
                body,
            },
        }
    }
}

/// Requests that are not publishes.
#[derive(Debug)]
pub(crate) enum Control {
    /// Connect if needed, then write a NOP and flush it.
    Ping(oneshot::Sender<Result<(), PingFailure>>),
    /// Write what is queued, wait for the replies (until the deadline), close.
    Close {
        reply: oneshot::Sender<Stats>,
        /// When to give up: what is queued then fails as not sent, what is in flight as
        /// unknown.
        deadline: Instant,
    },
    /// Give what is queued to the router's policy (as when its nsqd is unreachable), then
    /// close as `Close` does, waiting for the replies of what is in flight (at most the close
    /// timeout).
    Retire { reply: oneshot::Sender<Stats> },
    /// Answer once every request among the first `before` ever queued has its outcome.
    Flush {
        before: u64,
        reply: oneshot::Sender<()>,
    },
}
