//! The RDY planner: which RDY count each connection should have, as plain data.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Identifies one connection to the planner. The caller chooses the values; each must be unique
/// among the connections currently added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Where the planner stands with respect to backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backoff {
    /// Normal operation: `max_in_flight` is shared out.
    Off,
    /// Backing off: every connection has RDY 0.
    Waiting,
    /// The backoff window has passed: one connection has RDY 1 to test the waters.
    Testing(Option<ConnId>),
}

#[derive(Debug, Clone)]
struct Conn {
    /// nsqd's `max_rdy_count` for this connection, from the IDENTIFY response.
    max_rdy: u32,
    /// The RDY count last handed to the caller (0 before the first).
    rdy: u32,
    /// Messages received and not yet finished or requeued.
    in_flight: u32,
    /// When a message last arrived or was answered, or when the connection was added.
    last_activity: Instant,
    /// Added since the last tick and no message yet: held at RDY 1.
    fresh: bool,
}

/// Decides the RDY count of every connection of a consumer.
///
/// The caller reports events (connections added and removed, messages received and answered,
/// periodic ticks, `max_in_flight` changes, backoff) and then sends, in order, the changes
/// returned by [`drain_changes`](Self::drain_changes). The planner keeps these rules:
///
/// - the sum of all RDY counts never exceeds `max_in_flight`, also part way through a batch of
///   changes (decreases come before increases);
/// - nor does the number of messages in flight: a connection still holding more messages than
///   its (lowered) RDY keeps that part of the budget until they are answered, and the
///   connections last in the serving order wait for it;
/// - no connection's RDY exceeds its `max_rdy_count`;
/// - a new connection starts at RDY 1 (when the budget has room for it) and gets its share at
///   the next tick or its first message;
/// - `max_in_flight` is divided without loss: 9 over 6 connections gives three of them 2 and
///   three 1;
/// - a connection with nothing in flight and no activity for `idle_timeout` is demoted to RDY 1,
///   and its share goes to the active connections;
/// - with fewer `max_in_flight` than connections, `max_in_flight` connections hold RDY 1 and the
///   slots move on at every tick, so each connection is served in turn;
/// - during backoff every RDY is 0, then one connection at a time gets RDY 1 to test.
#[derive(Debug, Clone)]
pub struct RdyPlanner {
    max_in_flight: u32,
    idle_timeout: Duration,
    conns: BTreeMap<ConnId, Conn>,
    /// Order in which connections are served: the front holds the RDY 1 slots when
    /// `max_in_flight` is below the number of connections, and gets the remainder otherwise.
    order: VecDeque<ConnId>,
    backoff: Backoff,
    now: Option<Instant>,
    pending: Vec<(ConnId, u32)>,
    /// Some connection has more messages in flight than its RDY count.
    holding: bool,
}

impl RdyPlanner {
    /// A planner with no connections, sharing out `max_in_flight` and demoting connections idle
    /// for `idle_timeout`.
    pub fn new(max_in_flight: u32, idle_timeout: Duration) -> Self {
        Self {
            max_in_flight,
            idle_timeout,
            conns: BTreeMap::new(),
            order: VecDeque::new(),
            backoff: Backoff::Off,
            now: None,
            pending: Vec::new(),
            holding: false,
        }
    }

    /// The current `max_in_flight`.
    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// The number of connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether there are no connections.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The RDY count last handed out for `conn`, or `None` for an unknown connection.
    pub fn rdy(&self, conn: ConnId) -> Option<u32> {
        self.conns.get(&conn).map(|c| c.rdy)
    }

    /// The sum of the RDY counts last handed out.
    pub fn total_rdy(&self) -> u64 {
        self.conns.values().map(|c| u64::from(c.rdy)).sum()
    }

    /// Messages received on `conn` and not yet finished or requeued.
    pub fn in_flight(&self, conn: ConnId) -> Option<u32> {
        self.conns.get(&conn).map(|c| c.in_flight)
    }

    /// Whether the planner is backing off (RDY 0 everywhere, or RDY 1 on one test connection).
    pub fn is_backing_off(&self) -> bool {
        self.backoff != Backoff::Off
    }

    /// Whether some connection has messages in flight amounting to at least 85 % of its RDY
    /// count: messages arrive faster than they are answered.
    pub fn is_starved(&self) -> bool {
        self.conns
            .values()
            .any(|c| c.in_flight > 0 && u64::from(c.in_flight) * 100 >= u64::from(c.rdy) * 85)
    }

    /// The RDY changes decided since the last call, to be sent in this order. Only changes are
    /// listed; a connection may appear more than once, and its last entry is its current count.
    pub fn drain_changes(&mut self) -> Vec<(ConnId, u32)> {
        std::mem::take(&mut self.pending)
    }

    /// A connection was established; `max_rdy_count` is nsqd's limit from IDENTIFY. Adding an
    /// identifier already present replaces that connection.
    pub fn add_connection(&mut self, conn: ConnId, max_rdy_count: u32, now: Instant) {
        self.advance(now);
        if self.conns.contains_key(&conn) {
            self.forget(conn);
        }
        self.conns.insert(
            conn,
            Conn {
                max_rdy: max_rdy_count,
                rdy: 0,
                in_flight: 0,
                last_activity: now,
                fresh: true,
            },
        );
        self.order.push_back(conn);
        self.plan();
    }

    /// A connection was closed: its RDY no longer counts, and any change still pending for it
    /// is dropped.
    pub fn remove_connection(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.forget(conn);
            self.plan();
        }
    }

    /// A message arrived on `conn`.
    pub fn message_received(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        let timeout = self.idle_timeout;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let was_active = !c.fresh && !is_idle(c, now, timeout);
        c.in_flight = c.in_flight.saturating_add(1);
        c.last_activity = now;
        c.fresh = false;
        // A message sent before nsqd saw a lower RDY puts the connection above it.
        if !was_active || c.in_flight > c.rdy {
            self.plan();
        }
    }

    /// A message received on `conn` was finished or requeued.
    pub fn message_done(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        let timeout = self.idle_timeout;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let was_idle = !c.fresh && is_idle(c, now, timeout);
        c.in_flight = c.in_flight.saturating_sub(1);
        c.last_activity = now;
        // While some connection holds more messages than its RDY, every answer frees budget
        // that may be held back.
        if was_idle || self.holding {
            self.plan();
        }
    }

    /// Periodic tick: new connections get their share, idle ones are demoted, and RDY 1 slots
    /// move on when there are more connections than `max_in_flight`.
    pub fn tick(&mut self, now: Instant) {
        self.advance(now);
        for c in self.conns.values_mut() {
            c.fresh = false;
        }
        let slots = self.max_in_flight as usize;
        if self.backoff == Backoff::Off && slots > 0 && slots < self.order.len() {
            self.order.rotate_left(slots);
        }
        self.plan();
    }

    /// Changes `max_in_flight`; the new counts are decided at once, and a lower value is never
    /// exceeded, even part way through the changes.
    pub fn set_max_in_flight(&mut self, max_in_flight: u32) {
        self.max_in_flight = max_in_flight;
        self.plan();
    }

    /// Enters backoff, or returns to waiting after a test: every connection gets RDY 0.
    pub fn enter_backoff(&mut self) {
        self.backoff = Backoff::Waiting;
        self.plan();
    }

    /// The backoff window has passed: one connection gets RDY 1 to test whether processing
    /// succeeds again. Connections take turns as successive tests' testers.
    pub fn start_backoff_test(&mut self) {
        if self.backoff == Backoff::Off {
            return;
        }
        let tester = self.order.front().copied();
        if tester.is_some() {
            self.order.rotate_left(1);
        }
        self.backoff = Backoff::Testing(tester);
        self.plan();
    }

    /// The test message's result is in: with `still_backing_off` every connection returns to RDY
    /// 0 to wait for the next window, otherwise backoff ends.
    pub fn backoff_test_result(&mut self, still_backing_off: bool) {
        if still_backing_off {
            self.enter_backoff();
        } else {
            self.leave_backoff();
        }
    }

    /// Leaves backoff: `max_in_flight` is shared out again.
    pub fn leave_backoff(&mut self) {
        self.backoff = Backoff::Off;
        self.plan();
    }

    fn advance(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    fn forget(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.order.retain(|&c| c != conn);
        self.pending.retain(|&(c, _)| c != conn);
        if self.backoff == Backoff::Testing(Some(conn)) {
            // Another connection takes over the test.
            self.backoff = Backoff::Waiting;
            self.start_backoff_test();
        }
    }

    /// Computes the target counts and queues the changes, decreases first.
    fn plan(&mut self) {
        let targets = self.targets();
        let mut downs = Vec::new();
        let mut ups = Vec::new();
        for (&id, c) in &mut self.conns {
            let target = targets.get(&id).copied().unwrap_or(0);
            if target < c.rdy {
                downs.push((id, target));
            } else if target > c.rdy {
                ups.push((id, target));
            }
            c.rdy = target;
        }
        self.pending.extend(downs);
        self.pending.extend(ups);
        self.holding = self.conns.values().any(|c| c.in_flight > c.rdy);
    }

    /// The shares, then held back where messages still in flight on other connections use the
    /// budget: `RDY` only lets nsqd send while a connection's in-flight count is below it, so
    /// keeping the sum of `max(RDY, in flight)` within `max_in_flight` keeps the messages in
    /// flight within it too (after `max_in_flight` is lowered, until enough are answered).
    fn targets(&self) -> BTreeMap<ConnId, u32> {
        let mut out = self.shares();
        let budget = u64::from(self.max_in_flight);
        let mut used: u64 = out
            .iter()
            .map(|(id, &t)| u64::from(t.max(self.conns[id].in_flight)))
            .sum();
        // Connections last in the serving order wait first.
        for id in self.order.iter().rev() {
            if used <= budget {
                break;
            }
            let in_flight = self.conns[id].in_flight;
            let target = out.get_mut(id).expect("every connection has a share");
            if *target > in_flight {
                let cut =
                    (*target - in_flight).min(u32::try_from(used - budget).unwrap_or(u32::MAX));
                *target -= cut;
                used -= u64::from(cut);
            }
        }
        out
    }

    /// What each connection's RDY would be with nothing in flight.
    fn shares(&self) -> BTreeMap<ConnId, u32> {
        let mut out: BTreeMap<ConnId, u32> = self.conns.keys().map(|&id| (id, 0)).collect();
        let budget = self.max_in_flight;
        match self.backoff {
            Backoff::Waiting => return out,
            Backoff::Testing(tester) => {
                if let Some(id) = tester {
                    if let Some(c) = self.conns.get(&id) {
                        out.insert(id, budget.min(1).min(c.max_rdy));
                    }
                }
                return out;
            }
            Backoff::Off => {}
        }
        let n = self.order.len();
        if n == 0 || budget == 0 {
            return out;
        }
        if (budget as usize) < n {
            // Fewer slots than connections: the front of the order holds them.
            for id in self.order.iter().take(budget as usize) {
                out.insert(*id, self.conns[id].max_rdy.min(1));
            }
            return out;
        }
        // Everyone gets 1 (within its cap); the rest goes to the active connections, or to
        // every settled connection when none is active.
        let now = self.now;
        let mut left = budget;
        let mut active = Vec::new();
        let mut idle = Vec::new();
        for id in &self.order {
            let c = &self.conns[id];
            let one = c.max_rdy.min(1);
            out.insert(*id, one);
            left -= one;
            if c.fresh {
                continue;
            }
            let idle_now = now.is_some_and(|t| is_idle(c, t, self.idle_timeout));
            if idle_now { &mut idle } else { &mut active }.push(*id);
        }
        if !active.is_empty() {
            left = self.fill(&mut out, &active, left);
        }
        if !idle.is_empty() && active.iter().all(|id| out[id] == self.conns[id].max_rdy) {
            self.fill(&mut out, &idle, left);
        }
        out
    }

    /// Spreads `budget` over `ids` in their order without exceeding any cap, the remainder to
    /// the first ones. Returns what is left when every one of them is at its cap.
    fn fill(&self, out: &mut BTreeMap<ConnId, u32>, ids: &[ConnId], mut budget: u32) -> u32 {
        loop {
            let open: Vec<ConnId> = ids
                .iter()
                .copied()
                .filter(|id| out[id] < self.conns[id].max_rdy)
                .collect();
            if open.is_empty() || budget == 0 {
                return budget;
            }
            let count = u32::try_from(open.len()).unwrap_or(u32::MAX);
            let share = budget / count;
            if share == 0 {
                for id in open.iter().take(budget as usize) {
                    *out.get_mut(id).expect("known connection") += 1;
                }
                return 0;
            }
            for id in &open {
                let slot = out.get_mut(id).expect("known connection");
                let give = share.min(self.conns[id].max_rdy - *slot);
                *slot += give;
                budget -= give;
            }
        }
    }
}

fn is_idle(c: &Conn, now: Instant, timeout: Duration) -> bool {
    c.in_flight == 0 && now.saturating_duration_since(c.last_activity) >= timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    fn rdys(p: &RdyPlanner) -> Vec<u32> {
        p.conns.values().map(|c| c.rdy).collect()
    }

    /// Adds `n` connections and makes each of them active.
    fn active(p: &mut RdyPlanner, n: u64, t: Instant) {
        for i in 0..n {
            p.add_connection(ConnId(i), 2500, t);
        }
        for i in 0..n {
            p.message_received(ConnId(i), t);
        }
    }

    #[test]
    fn nine_over_six_spreads_the_remainder() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(9, IDLE);
        active(&mut p, 6, t);
        let mut counts = rdys(&p);
        counts.sort_unstable();
        assert_eq!(counts, [1, 1, 1, 2, 2, 2]);
        assert_eq!(p.total_rdy(), 9);
    }

    #[test]
    fn a_new_connection_waits_for_the_budget_messages_in_flight_hold() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(100, IDLE);
        active(&mut p, 1, t);
        for _ in 1..100 {
            p.message_received(ConnId(0), t);
        }
        assert_eq!(p.in_flight(ConnId(0)), Some(100));
        p.drain_changes();
        // Half of the budget is now connection 1's, but connection 0 still holds 100 messages:
        // connection 1 waits rather than let 101 be in flight.
        p.add_connection(ConnId(1), 2500, t);
        p.tick(t);
        assert_eq!(p.rdy(ConnId(0)), Some(50));
        assert_eq!(p.rdy(ConnId(1)), Some(0));
        for answered in 1..=50 {
            p.message_done(ConnId(0), t);
            assert_eq!(
                p.rdy(ConnId(1)),
                Some(answered),
                "each answer frees one slot"
            );
        }
        assert_eq!(p.in_flight(ConnId(0)), Some(50));
        assert_eq!(p.rdy(ConnId(1)), Some(50));
    }

    #[test]
    fn starved_when_in_flight_reaches_85_percent_of_rdy() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(20, IDLE);
        active(&mut p, 1, t);
        assert_eq!(p.rdy(ConnId(0)), Some(20));
        // `active` delivered one message: 1 of 20 is not starved.
        assert!(!p.is_starved());
        for _ in 0..15 {
            p.message_received(ConnId(0), t);
        }
        assert!(!p.is_starved(), "16 of 20 is below 85 %");
        p.message_received(ConnId(0), t);
        assert!(p.is_starved(), "17 of 20 is 85 %");
        p.message_done(ConnId(0), t);
        assert!(!p.is_starved());
    }

    #[test]
    fn new_connection_starts_at_one_then_gets_its_share() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(100, IDLE);
        p.add_connection(ConnId(7), 2500, t);
        assert_eq!(p.drain_changes(), [(ConnId(7), 1)]);
        p.tick(t + Duration::from_secs(1));
        assert_eq!(p.drain_changes(), [(ConnId(7), 100)]);
    }

    #[test]
    fn new_connection_waits_when_the_budget_is_taken() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(1, IDLE);
        p.add_connection(ConnId(1), 2500, t);
        p.add_connection(ConnId(2), 2500, t);
        assert_eq!(p.rdy(ConnId(1)), Some(1));
        assert_eq!(p.rdy(ConnId(2)), Some(0));
        p.tick(t);
        assert_eq!(p.rdy(ConnId(1)), Some(0));
        assert_eq!(p.rdy(ConnId(2)), Some(1));
    }

    #[test]
    fn lowering_max_in_flight_decreases_first_and_at_once() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(100, IDLE);
        active(&mut p, 4, t);
        p.drain_changes();
        p.set_max_in_flight(10);
        assert_eq!(p.total_rdy(), 10);
        let changes = p.drain_changes();
        assert!(changes.iter().all(|&(_, r)| r < 25));
        p.set_max_in_flight(2);
        assert_eq!(p.total_rdy(), 2);
        assert_eq!(rdys(&p).iter().filter(|&&r| r == 1).count(), 2);
    }

    #[test]
    fn changes_lower_before_they_raise() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(10, IDLE);
        active(&mut p, 2, t);
        assert_eq!(rdys(&p), [5, 5]);
        p.drain_changes();
        p.message_done(ConnId(1), t);
        let later = t + IDLE;
        p.message_received(ConnId(0), later);
        p.tick(later);
        assert_eq!(p.drain_changes(), [(ConnId(1), 1), (ConnId(0), 9)]);
    }

    #[test]
    fn idle_connections_are_demoted_to_one() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(30, IDLE);
        active(&mut p, 3, t);
        for i in 0..3 {
            p.message_done(ConnId(i), t);
        }
        let later = t + IDLE + Duration::from_secs(1);
        p.message_received(ConnId(0), later);
        p.tick(later);
        assert_eq!(rdys(&p), [28, 1, 1]);
    }

    #[test]
    fn respects_max_rdy_count() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(100, IDLE);
        p.add_connection(ConnId(1), 5, t);
        p.add_connection(ConnId(2), 2500, t);
        p.message_received(ConnId(1), t);
        p.message_received(ConnId(2), t);
        assert_eq!(rdys(&p), [5, 95]);
    }

    #[test]
    fn backoff_pauses_then_tests_with_one_connection() {
        let t = Instant::now();
        let mut p = RdyPlanner::new(10, IDLE);
        active(&mut p, 3, t);
        p.enter_backoff();
        assert_eq!(p.total_rdy(), 0);
        p.start_backoff_test();
        assert_eq!(p.total_rdy(), 1);
        p.backoff_test_result(true);
        assert_eq!(p.total_rdy(), 0);
        p.start_backoff_test();
        p.backoff_test_result(false);
        assert_eq!(p.total_rdy(), 10);
    }
}
