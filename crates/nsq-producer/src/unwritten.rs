//! Requests the router has taken from the channel and not written yet, in queue order.
//!
//! The router takes every request out of the channel as soon as it cannot write it (no
//! connection, a full pipeline, writing held back), so that it sees every queued deadline: a
//! publish with a deadline of its own may be due before the ones ahead of it. A request keeps
//! its queue permits while it is here, so the queue's bound on count and bytes still holds.
//!
//! A request whose deadline passes is taken out wherever it is; it leaves a gap, skipped when
//! the gap reaches the front, so that the others keep their places.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::deadline_set::{DeadlineSet, earlier};
use crate::request::Request;

/// One place in the FIFO: a request, or the gap an expired one left.
#[derive(Debug)]
struct Place {
    index: u64,
    request: Option<Request>,
}

#[derive(Debug, Default)]
pub(crate) struct Unwritten {
    /// In queue order, indices increasing; the front is never a gap.
    places: VecDeque<Place>,
    /// Requests in `places` (gaps excluded).
    live: usize,
    deadlines: DeadlineSet,
}

impl Unwritten {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a request taken from the channel; its index is above every index here.
    pub(crate) fn push(&mut self, request: Request) {
        debug_assert!(self.places.back().is_none_or(|p| p.index < request.index));
        self.deadlines.push(request.index, request.deadline);
        self.places.push_back(Place {
            index: request.index,
            request: Some(request),
        });
        self.live += 1;
    }

    /// The oldest request.
    pub(crate) fn pop_front(&mut self) -> Option<Request> {
        let request = self.places.pop_front()?.request;
        debug_assert!(request.is_some(), "the front is never a gap");
        self.live -= 1;
        self.skip_gaps();
        request
    }

    /// The queue index of the oldest request.
    pub(crate) fn first_index(&self) -> Option<u64> {
        self.places.front().map(|p| p.index)
    }

    /// The earliest deadline among the requests.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let front = self.places.front()?.request.as_ref()?.deadline;
        let places = &self.places;
        earlier(front, self.deadlines.next_early(|i| live(places, i)))
    }

    /// Takes out the requests whose deadline passed by `now`, oldest first among those in
    /// deadline order, and hands each to `expired`.
    pub(crate) fn expire(&mut self, now: Instant, mut expired: impl FnMut(Request)) {
        while self.front_due(now) {
            if let Some(request) = self.pop_front() {
                expired(request);
            }
        }
        while let Some(index) = self.deadlines.pop_due(now) {
            let Ok(at) = self.places.binary_search_by_key(&index, |p| p.index) else {
                continue;
            };
            if let Some(request) = self.places[at].request.take() {
                self.live -= 1;
                expired(request);
            }
        }
        self.skip_gaps();
        let places = &self.places;
        self.deadlines.compact(places.len(), |i| live(places, i));
    }

    fn front_due(&self, now: Instant) -> bool {
        self.places
            .front()
            .and_then(|p| p.request.as_ref())
            .and_then(|r| r.deadline)
            .is_some_and(|d| d <= now)
    }

    /// Takes every request out, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Request> + '_ {
        self.live = 0;
        self.deadlines.clear();
        self.places.drain(..).filter_map(|p| p.request)
    }

    fn skip_gaps(&mut self) {
        while self.places.front().is_some_and(|p| p.request.is_none()) {
            self.places.pop_front();
        }
        if self.places.is_empty() {
            self.deadlines.clear();
        }
    }
}

fn live(places: &VecDeque<Place>, index: u64) -> bool {
    places
        .binary_search_by_key(&index, |p| p.index)
        .is_ok_and(|at| places[at].request.is_some())
}
