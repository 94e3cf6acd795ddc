//! Automatic batching: consecutive queued PUBs to one topic go out as one MPUB.
//!
//! Each request keeps its own result: the MPUB's single reply answers all of them (see
//! `Transactions`). The batch is checked against the MPUB size limit as it grows, and every
//! message in it already passed the per-message checks when it was published, so nsqd can only
//! refuse the batch for reasons that concern all of its messages alike (authorisation, a topic
//! being deleted) or because its own `--max-msg-size` is smaller than the configured limit; in
//! each case every request in the batch is reported rejected with nsqd's error, and none of them
//! was stored. A storage failure (`E_MPUB_FAILED`) can come after nsqd stored the messages
//! before the one that failed, so then every request in the batch is reported as maybe stored.

use std::sync::Arc;

use bytes::Bytes;
use nsq_proto::{Command, Topic};
use tokio::time::Instant;

use crate::completion::Responder;
use crate::deadline_set::earlier;
use crate::tag::Tag;

/// One request in a batch.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) responder: Responder,
    pub(crate) deadline: Option<Instant>,
    /// Its place in the queue (see `Request::index`).
    pub(crate) index: u64,
    /// See `Request::tag`.
    pub(crate) tag: Tag,
}

/// PUBs taken from the queue and not yet written.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    topic: Option<Topic>,
    bodies: Vec<Bytes>,
    members: Vec<Member>,
    /// The MPUB body size so far: the count, then each size and body.
    size: u64,
    started: Option<Instant>,
    /// The earliest deadline among the members.
    earliest: Option<Instant>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the first request joined.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Whether a PUB of `len` bytes to `topic` can join without the MPUB exceeding
    /// `max_body_size`.
    pub(crate) fn accepts(&self, topic: &Topic, len: usize, max_body_size: u64) -> bool {
        let size = if self.is_empty() { 4 } else { self.size };
        self.topic.as_ref().is_none_or(|t| t == topic) && size + 4 + len as u64 <= max_body_size
    }

    pub(crate) fn push(&mut self, topic: Topic, body: Bytes, member: Member) {
        if self.is_empty() {
            self.size = 4;
            self.started = Some(Instant::now());
            self.topic = Some(topic);
        }
        self.size += 4 + body.len() as u64;
        self.earliest = earlier(self.earliest, member.deadline);
        self.bodies.push(body);
        self.members.push(member);
    }

    /// Marks the live members written, dropping those whose callers withdrew them (calling
    /// `withdrawn` for each), and hands them out with the command to write (a PUB for one, an
    /// MPUB for several). `None` if nobody is left.
    pub(crate) fn start_write(
        &mut self,
        addr: &Arc<str>,
        mut withdrawn: impl FnMut(),
    ) -> Option<Written<'_>> {
        // Callers rarely withdraw, so removing in place (keeping the order) is cheap in practice.
        let mut i = 0;
        while i < self.members.len() {
            if self.members[i].responder.start_write(addr) {
                i += 1;
            } else {
                self.members.remove(i);
                self.bodies.remove(i);
                withdrawn();
            }
        }
        if self.members.is_empty() {
            self.clear();
            return None;
        }
        Some(Written { batch: self })
    }

    /// The earliest deadline among the members.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// The queue index of the oldest member.
    pub(crate) fn first_index(&self) -> Option<u64> {
        self.members.first().map(|m| m.index)
    }

    /// Takes out the members whose deadline passed by `now` and hands each to `expired`.
    pub(crate) fn expire(&mut self, now: Instant, mut expired: impl FnMut(Responder)) {
        if self.earliest.is_none_or(|d| d > now) {
            return;
        }
        let mut earliest = None;
        let mut i = 0;
        while i < self.members.len() {
            match self.members[i].deadline {
                Some(d) if d <= now => {
                    let member = self.members.remove(i);
                    let body = self.bodies.remove(i);
                    self.size -= 4 + body.len() as u64;
                    expired(member.responder);
                }
                deadline => {
                    earliest = earlier(earliest, deadline);
                    i += 1;
                }
            }
        }
        self.earliest = earliest;
        if self.members.is_empty() {
            self.clear();
        }
    }

    /// Takes every member out as the PUB it was, for handing back; the batch is empty
    /// afterwards.
    pub(crate) fn drain_requests(&mut self) -> Vec<(Topic, Bytes, Member)> {
        let members = std::mem::take(&mut self.members);
        let bodies = std::mem::take(&mut self.bodies);
        let drained = match &self.topic {
            Some(topic) => bodies
                .into_iter()
                .zip(members)
                .map(|(body, member)| (topic.clone(), body, member))
                .collect(),
            None => Vec::new(),
        };
        self.clear();
        drained
    }

    /// Takes every member out, for failing them; the batch is empty afterwards.
    pub(crate) fn drain_members(&mut self) -> Vec<Member> {
        let members = std::mem::take(&mut self.members);
        self.clear();
        members
    }

    fn clear(&mut self) {
        self.topic = None;
        self.bodies.clear();
        self.members.clear();
        self.size = 0;
        self.started = None;
        self.earliest = None;
    }
}

/// A batch whose members are marked written.
pub(crate) struct Written<'a> {
    batch: &'a mut Batch,
}

impl Written<'_> {
    /// The command that carries the batch.
    pub(crate) fn command(&self) -> Command<'_> {
        let topic = self
            .batch
            .topic
            .as_ref()
            .expect("a batch with members has a topic");
        match &self.batch.bodies[..] {
            [body] => Command::Pub { topic, body },
            bodies => Command::Mpub { topic, bodies },
        }
    }

    /// How many requests the command carries.
    pub(crate) fn len(&self) -> usize {
        self.batch.members.len()
    }

    /// Hands each member out in order, then empties the batch (its buffers are kept for the
    /// next one).
    pub(crate) fn finish(self, mut each: impl FnMut(usize, Member, &Topic, Bytes)) {
        let topic = self
            .batch
            .topic
            .take()
            .expect("a batch with members has a topic");
        let members = self.batch.members.drain(..);
        let bodies = self.batch.bodies.drain(..);
        for (i, (member, body)) in members.zip(bodies).enumerate() {
            each(i, member, &topic, body);
        }
        self.batch.clear();
    }
}
