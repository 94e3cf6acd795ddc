//! The deadlines of a FIFO whose entries mostly arrive in deadline order.
//!
//! Publishes that share the configured timeout are queued in deadline order, so the router
//! only has to watch the oldest one. A publish with a deadline of its own can be due before
//! publishes queued ahead of it, and one with a later deadline (or none) puts every ordinary
//! publish behind it out of order. [`DeadlineSet`] keeps the common case free: an entry whose
//! deadline is not earlier than any before it is "in order" and needs no bookkeeping, since no
//! in-order entry can be due before any entry ahead of it. Only the entries that arrive early
//! go into a min-heap. The earliest deadline in the FIFO is therefore the earlier of the
//! front entry's and the heap's top.
//!
//! Entries are named by an index that grows along the FIFO. The heap is not told when an entry
//! leaves; its stale indices are dropped when they reach the top, or all at once when they
//! outnumber the live entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct DeadlineSet {
    /// The latest deadline among the entries pushed since the FIFO was last empty (`Some(None)`
    /// once an entry without a deadline came: later than any); `None` when nothing was.
    latest: Option<Option<Instant>>,
    /// Entries pushed with a deadline earlier than `latest`: `(deadline, index)`, earliest on
    /// top.
    early: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl DeadlineSet {
    /// Records the deadline of the entry `index`, pushed at the back of the FIFO.
    pub(crate) fn push(&mut self, index: u64, deadline: Option<Instant>) {
        match (deadline, self.latest) {
            (Some(d), Some(None)) => self.early.push(Reverse((d, index))),
            (Some(d), Some(Some(latest))) if d < latest => self.early.push(Reverse((d, index))),
            (deadline, _) => self.latest = Some(deadline),
        }
    }

    /// The FIFO is empty: forget everything.
    pub(crate) fn clear(&mut self) {
        self.latest = None;
        self.early.clear();
    }

    /// The earliest deadline among the early entries that are still `live`, dropping the stale
    /// ones above it.
    pub(crate) fn next_early(&mut self, mut live: impl FnMut(u64) -> bool) -> Option<Instant> {
        while let Some(&Reverse((deadline, index))) = self.early.peek() {
            if live(index) {
                return Some(deadline);
            }
            self.early.pop();
        }
        None
    }

    /// Takes out the earliest early entry if its deadline passed by `now`; it may be stale.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u64> {
        match self.early.peek() {
            Some(&Reverse((deadline, index))) if deadline <= now => {
                self.early.pop();
                Some(index)
            }
            _ => None,
        }
    }

    /// Drops the stale entries once they could outnumber the `entries` still in the FIFO, so
    /// that the heap stays proportional to the FIFO.
    pub(crate) fn compact(&mut self, entries: usize, live: impl FnMut(u64) -> bool) {
        if self.early.len() > 2 * entries + 64 {
            let mut live = live;
            self.early.retain(|&Reverse((_, index))| live(index));
        }
    }

    /// Whether no entry arrived early.
    #[cfg(test)]
    pub(crate) fn early_is_empty(&self) -> bool {
        self.early.is_empty()
    }
}

/// The earlier of two optional deadlines, `None` meaning never.
pub(crate) fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn deadlines_in_order_need_no_heap() {
        let t0 = Instant::now();
        let mut set = DeadlineSet::default();
        for i in 0..10 {
            set.push(i, Some(t0 + Duration::from_millis(i)));
        }
        assert!(set.early_is_empty());
        set.push(10, Some(t0));
        assert!(!set.early_is_empty());
        set.clear();
        set.push(11, Some(t0));
        assert!(set.early_is_empty(), "an empty FIFO starts over");
    }

    #[test]
    fn an_entry_without_a_deadline_puts_later_deadlines_early() {
        let t0 = Instant::now();
        let mut set = DeadlineSet::default();
        set.push(0, None);
        set.push(1, Some(t0 + Duration::from_secs(9)));
        assert_eq!(set.next_early(|_| true), Some(t0 + Duration::from_secs(9)));
        assert_eq!(set.pop_due(t0), None);
        assert_eq!(set.pop_due(t0 + Duration::from_secs(9)), Some(1));
    }

    /// A model of the FIFO the set serves: entries leave from the front or expire anywhere.
    struct Fifo {
        entries: Vec<(u64, Option<Instant>)>,
        set: DeadlineSet,
        next: u64,
    }

    impl Fifo {
        fn push(&mut self, deadline: Option<Instant>) {
            self.set.push(self.next, deadline);
            self.entries.push((self.next, deadline));
            self.next += 1;
        }

        fn is_live(entries: &[(u64, Option<Instant>)], index: u64) -> bool {
            entries.iter().any(|&(i, _)| i == index)
        }

        /// What the owner of the set computes: the front's deadline or the heap's top.
        fn earliest(&mut self) -> Option<Instant> {
            let entries = &self.entries;
            let front = entries.first().and_then(|&(_, d)| d);
            earlier(front, self.set.next_early(|i| Self::is_live(entries, i)))
        }

        fn pop_front(&mut self) {
            if !self.entries.is_empty() {
                self.entries.remove(0);
            }
            if self.entries.is_empty() {
                self.set.clear();
            }
        }

        /// Expires what is due by `now`, as the owner does: from the front, then from the heap.
        fn expire(&mut self, now: Instant) {
            while self
                .entries
                .first()
                .is_some_and(|&(_, d)| d.is_some_and(|d| d <= now))
            {
                self.entries.remove(0);
            }
            while let Some(index) = self.set.pop_due(now) {
                self.entries.retain(|&(i, _)| i != index);
            }
            if self.entries.is_empty() {
                self.set.clear();
            }
            let entries = &self.entries;
            self.set
                .compact(entries.len(), |i| Self::is_live(entries, i));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Option<u8>),
        PopFront,
        Expire(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::option::weighted(0.9, any::<u8>()).prop_map(Op::Push),
            2 => Just(Op::PopFront),
            1 => any::<u8>().prop_map(Op::Expire),
        ]
    }

    proptest! {
        /// Whatever the order of deadlines, the earliest the set reports is the true earliest,
        /// and expiring at a time leaves nothing due behind.
        #[test]
        fn reports_the_true_earliest_deadline(ops in proptest::collection::vec(op(), 1..200)) {
            let t0 = Instant::now();
            let at = |ms: u8| t0 + Duration::from_millis(u64::from(ms));
            let mut fifo = Fifo { entries: Vec::new(), set: DeadlineSet::default(), next: 0 };
            let mut clock = 0u8;
            for op in ops {
                match op {
                    Op::Push(deadline) => fifo.push(deadline.map(at)),
                    Op::PopFront => fifo.pop_front(),
                    Op::Expire(step) => {
                        clock = clock.saturating_add(step / 8);
                        fifo.expire(at(clock));
                        let due = fifo.entries.iter().any(|&(_, d)| d.is_some_and(|d| d <= at(clock)));
                        prop_assert!(!due, "an entry due by now was left behind");
                    }
                }
                let truth = fifo.entries.iter().filter_map(|&(_, d)| d).min();
                prop_assert_eq!(fifo.earliest(), truth);
            }
        }
    }
}
