//! The router's timer table: one entry per kind of deadline the router keeps, and the one
//! wake-up armed for the earliest of them.
//!
//! Each phase sets and clears the entries it owns ([`Timers::set`]), reads which are due
//! ([`Timers::expired`]) and handles them; the router sleeps on a single [`Wakeup`] moved to
//! [`Timers::next`]. Per-request deadlines are not entries: the FIFOs keep them (see
//! `deadline_set.rs`), and the table holds only the earliest of each FIFO, so a publish costs
//! no allocation and no timer registration of its own.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A kind of deadline the router keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The earliest deadline of a request taken from the channel and not written (unwritten or
    /// batched): it fails there.
    Queued,
    /// The earliest deadline of a written request whose caller has not been told it timed out.
    InFlight,
    /// When the batch being gathered must be written (its start plus the linger time).
    Linger,
    /// The oldest written request's overdue time plus the stall grace: with no reply by then,
    /// the connection is dropped.
    Stall,
    /// In a pool: when the slow-node judgement may change without any other event.
    Slow,
    /// When the next dial may start (the reconnect backoff).
    Backoff,
    /// The close deadline: what is not delivered by then fails.
    Close,
    /// How long a finished connection may take to flush and shut down.
    Shutdown,
}

impl Timer {
    /// Every kind, in the order of the table.
    pub(super) const ALL: [Self; 8] = [
        Self::Queued,
        Self::InFlight,
        Self::Linger,
        Self::Stall,
        Self::Slow,
        Self::Backoff,
        Self::Close,
        Self::Shutdown,
    ];

    /// The kinds that belong to one connection, cleared when it ends.
    pub(super) const CONNECTION: [Self; 4] =
        [Self::InFlight, Self::Linger, Self::Stall, Self::Slow];

    fn slot(self) -> usize {
        self as usize
    }
}

/// When each kind of deadline is next due, if at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Timers {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    /// Sets (`Some`) or clears (`None`) the entry for `timer`.
    pub(super) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.slot()] = at;
    }

    /// Clears the entry for `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.set(timer, None);
    }

    /// When `timer` is due, if it is set.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer.slot()]
    }

    /// Whether `timer` is set and due by `now`.
    pub(super) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest entry: when the router must wake up next. `None` when nothing is set.
    pub(super) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The entries due by `now`.
    pub(super) fn expired(&self, now: Instant) -> Expired {
        let mut due = 0u16;
        for timer in Timer::ALL {
            if self.is_due(timer, now) {
                due |= 1 << timer.slot();
            }
        }
        Expired(due)
    }
}

/// The kinds of deadline that were due at one reading of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expired(u16);

impl Expired {
    /// Whether `timer` was due.
    pub(super) fn contains(self, timer: Timer) -> bool {
        self.0 & (1 << timer.slot()) != 0
    }

    /// Whether nothing was due.
    #[cfg(test)]
    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds that were due, in the order of the table.
    #[cfg(test)]
    fn iter(self) -> impl Iterator<Item = Timer> {
        Timer::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

/// The router's one timer, moved to the table's earliest entry.
///
/// Moving a timer costs a trip through the runtime's timer wheel, and deadlines mostly move
/// later (the oldest request leaves, the next one is younger), so a timer armed for an earlier
/// deadline is left to fire and only then moved on; it is moved at once only when the new
/// deadline is earlier. A timer that fires for a deadline that no longer matters costs one
/// extra turn.
#[derive(Debug, Default)]
pub(super) struct Wakeup {
    /// Made at the first deadline, inside the runtime.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Wakeup {
    /// Ready once `at` has passed; never ready without a deadline. Arms the timer (and
    /// registers `cx`'s waker) for `at`.
    pub(super) fn poll(&mut self, at: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = at else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if at < sleep.deadline() {
            sleep.as_mut().reset(at);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if at <= sleep.deadline() {
            return Poll::Ready(());
        }
        // It fired for an earlier deadline that no longer matters: wait for this one.
        sleep.as_mut().reset(at);
        sleep.as_mut().poll(cx)
    }

    /// Waits until `at` has passed, or for ever without a deadline.
    pub(super) async fn until(&mut self, at: Option<Instant>) {
        poll_fn(|cx| self.poll(at, cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// A table with `entries`, each due that many milliseconds after `t0`.
    fn table(t0: Instant, entries: &[(Timer, u64)]) -> Timers {
        let mut timers = Timers::default();
        for &(timer, after) in entries {
            timers.set(timer, Some(ms(t0, after)));
        }
        timers
    }

    #[test]
    fn the_earliest_entry_wins() {
        let t0 = Instant::now();
        let mut timers = table(
            t0,
            &[
                (Timer::Close, 30),
                (Timer::InFlight, 20),
                (Timer::Backoff, 40),
            ],
        );
        assert_eq!(timers.next(), Some(ms(t0, 20)));
        timers.set(Timer::Linger, Some(ms(t0, 5)));
        assert_eq!(timers.next(), Some(ms(t0, 5)));
        // Moving an entry later moves the wake-up with it.
        timers.set(Timer::Linger, Some(ms(t0, 50)));
        assert_eq!(timers.next(), Some(ms(t0, 20)));
    }

    #[test]
    fn clearing_an_entry_leaves_the_next_one() {
        let t0 = Instant::now();
        let mut timers = table(t0, &[(Timer::Stall, 10), (Timer::Queued, 15)]);
        timers.stop(Timer::Stall);
        assert_eq!(timers.get(Timer::Stall), None);
        assert_eq!(timers.next(), Some(ms(t0, 15)));
        timers.set(Timer::Queued, None);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn several_due_at_once() {
        let t0 = Instant::now();
        let timers = table(
            t0,
            &[
                (Timer::Queued, 10),
                (Timer::Stall, 10),
                (Timer::Close, 5),
                (Timer::Backoff, 11),
            ],
        );
        assert!(timers.expired(ms(t0, 4)).is_empty());
        let due = timers.expired(ms(t0, 10));
        assert_eq!(
            due.iter().collect::<Vec<_>>(),
            [Timer::Queued, Timer::Stall, Timer::Close]
        );
        assert!(!due.contains(Timer::Backoff));
        assert!(timers.is_due(Timer::Backoff, ms(t0, 11)));
    }

    #[test]
    fn every_kind_has_its_own_entry() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for (i, timer) in Timer::ALL.into_iter().enumerate() {
            timers.set(timer, Some(ms(t0, i as u64)));
        }
        for (i, timer) in Timer::ALL.into_iter().enumerate() {
            assert_eq!(timers.get(timer), Some(ms(t0, i as u64)));
        }
        for timer in Timer::CONNECTION {
            timers.stop(timer);
        }
        let left: Vec<_> = timers.expired(ms(t0, 100)).iter().collect();
        assert_eq!(
            left,
            [Timer::Queued, Timer::Backoff, Timer::Close, Timer::Shutdown]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_entry_means_no_wake_up() {
        let mut wakeup = Wakeup::default();
        let timers = Timers::default();
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), wakeup.until(timers.next())).await;
        assert!(waited.is_err(), "woke up with nothing due");
    }

    #[tokio::test(start_paused = true)]
    async fn wakes_at_the_earliest_entry() {
        let t0 = Instant::now();
        let mut wakeup = Wakeup::default();
        let mut timers = table(t0, &[(Timer::Backoff, 300), (Timer::Queued, 100)]);
        wakeup.until(timers.next()).await;
        assert_eq!(Instant::now(), ms(t0, 100));
        assert_eq!(
            timers.expired(Instant::now()).iter().collect::<Vec<_>>(),
            [Timer::Queued]
        );
        // The handled entry moves later: the same timer is moved on to the next one.
        timers.set(Timer::Queued, Some(ms(t0, 500)));
        wakeup.until(timers.next()).await;
        assert_eq!(Instant::now(), ms(t0, 300));
        // Armed for the next entry (500 ms), then an earlier one is set: it wins.
        timers.stop(Timer::Backoff);
        let waiting = Duration::from_millis(10);
        let armed = tokio::time::timeout(waiting, wakeup.until(timers.next())).await;
        assert!(armed.is_err(), "woke up before the entry was due");
        timers.set(Timer::Linger, Some(ms(t0, 350)));
        wakeup.until(timers.next()).await;
        assert_eq!(Instant::now(), ms(t0, 350));
    }
}
