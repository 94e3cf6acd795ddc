//! Property test of the RDY planner: random sequences of events, with the planner's rules
//! checked after every step against a model the test keeps itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nsq_consumer::{ConnId, RdyPlanner};
use proptest::prelude::*;

const IDLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    Add(u64, u32),
    Remove(u64),
    Message(u64),
    Done(u64),
    Tick(u64),
    SetMaxInFlight(u32),
    EnterBackoff,
    StartTest,
    TestResult(bool),
    LeaveBackoff,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u64..10;
    prop_oneof![
        3 => (id.clone(), prop_oneof![1u32..=5, Just(2500)]).prop_map(|(i, m)| Op::Add(i, m)),
        1 => id.clone().prop_map(Op::Remove),
        4 => id.clone().prop_map(Op::Message),
        3 => id.prop_map(Op::Done),
        3 => (0u64..15).prop_map(Op::Tick),
        2 => (0u32..=20).prop_map(Op::SetMaxInFlight),
        1 => Just(Op::EnterBackoff),
        1 => Just(Op::StartTest),
        1 => any::<bool>().prop_map(Op::TestResult),
        1 => Just(Op::LeaveBackoff),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backoff {
    Off,
    Waiting,
    Testing,
}

/// What the test itself knows about a connection.
#[derive(Debug)]
struct Model {
    max_rdy: u32,
    in_flight: u32,
    last_activity: Instant,
    fresh: bool,
    /// Ticks since this connection last had a nonzero RDY, counted while it has to wait for a
    /// slot.
    unserved_ticks: usize,
}

impl Model {
    fn idle(&self, now: Instant) -> bool {
        !self.fresh && self.in_flight == 0 && now.duration_since(self.last_activity) >= IDLE
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let mut now = start;
    let mut mif = 5;
    let mut planner = RdyPlanner::new(mif, IDLE);
    let mut models: BTreeMap<u64, Model> = BTreeMap::new();
    // The RDY counts as the caller has sent them.
    let mut sent: BTreeMap<u64, u32> = BTreeMap::new();
    let mut backoff = Backoff::Off;

    for op in ops {
        let mut ticked = false;
        match *op {
            Op::Add(i, max_rdy) => {
                planner.add_connection(ConnId(i), max_rdy, now);
                sent.insert(i, 0);
                models.insert(
                    i,
                    Model {
                        max_rdy,
                        in_flight: 0,
                        last_activity: now,
                        fresh: true,
                        unserved_ticks: 0,
                    },
                );
            }
            Op::Remove(i) => {
                planner.remove_connection(ConnId(i));
                sent.remove(&i);
                models.remove(&i);
            }
            Op::Message(i) => {
                // nsqd sends on a connection only while its in-flight count is below its RDY.
                let Some(m) = models.get_mut(&i) else {
                    continue;
                };
                if m.in_flight >= sent[&i] {
                    continue;
                }
                planner.message_received(ConnId(i), now);
                m.in_flight += 1;
                m.last_activity = now;
                m.fresh = false;
                let in_flight: u64 = models.values().map(|m| u64::from(m.in_flight)).sum();
                prop_assert!(
                    in_flight <= u64::from(mif),
                    "{in_flight} messages in flight > max_in_flight {mif}"
                );
            }
            Op::Done(i) => {
                planner.message_done(ConnId(i), now);
                if let Some(m) = models.get_mut(&i) {
                    m.in_flight = m.in_flight.saturating_sub(1);
                    m.last_activity = now;
                }
            }
            Op::Tick(secs) => {
                now += Duration::from_secs(secs);
                planner.tick(now);
                ticked = true;
                for m in models.values_mut() {
                    m.fresh = false;
                }
            }
            Op::SetMaxInFlight(n) => {
                mif = n;
                planner.set_max_in_flight(n);
            }
            Op::EnterBackoff => {
                planner.enter_backoff();
                backoff = Backoff::Waiting;
            }
            Op::StartTest => {
                planner.start_backoff_test();
                if backoff != Backoff::Off {
                    backoff = Backoff::Testing;
                }
            }
            Op::TestResult(still) => {
                planner.backoff_test_result(still);
                backoff = if still {
                    Backoff::Waiting
                } else {
                    Backoff::Off
                };
            }
            Op::LeaveBackoff => {
                planner.leave_backoff();
                backoff = Backoff::Off;
            }
        }

        // Send the changes in order; no increase may take the sum over max_in_flight.
        for (id, rdy) in planner.drain_changes() {
            let slot = sent.get_mut(&id.0);
            prop_assert!(slot.is_some(), "change for unknown connection {id:?}");
            let slot = slot.unwrap();
            let raised = rdy > *slot;
            *slot = rdy;
            let sum: u64 = sent.values().map(|&r| u64::from(r)).sum();
            if raised {
                prop_assert!(
                    sum <= u64::from(mif),
                    "sum {sum} > {mif} after raising {id:?}"
                );
            }
        }
        for (&i, &r) in &sent {
            prop_assert_eq!(planner.rdy(ConnId(i)), Some(r), "caller's view of {}", i);
        }

        let n = models.len();
        let sum: u64 = sent.values().map(|&r| u64::from(r)).sum();
        prop_assert!(sum <= u64::from(mif), "sum {} > max_in_flight {}", sum, mif);
        for (i, m) in &models {
            prop_assert!(sent[i] <= m.max_rdy, "conn {} over max_rdy_count", i);
        }
        match backoff {
            Backoff::Waiting => prop_assert_eq!(sum, 0),
            Backoff::Testing => prop_assert!(sum <= 1),
            Backoff::Off => {}
        }

        // While a connection holds more messages than its RDY, its excess budget is held back
        // from the others (which the in-flight bound above checks); the sharing rules below
        // hold when nothing is held back.
        let holding = models.iter().any(|(i, m)| m.in_flight > sent[i]);
        if models.iter().any(|(i, m)| sent[i] > m.in_flight) {
            let used: u64 = models
                .iter()
                .map(|(i, m)| u64::from(sent[i].max(m.in_flight)))
                .sum();
            prop_assert!(
                used <= u64::from(mif),
                "RDY and in flight {} > {}",
                used,
                mif
            );
        }
        let rotating = backoff == Backoff::Off && mif > 0 && (mif as usize) < n && !holding;
        if backoff == Backoff::Off && n > 0 && mif as usize >= n && !holding {
            for (i, m) in &models {
                prop_assert!(sent[i] >= 1, "conn {} has RDY 0 with enough budget", i);
                if m.fresh {
                    prop_assert_eq!(sent[i], 1, "new conn {} not at RDY 1", i);
                }
            }
            let settled = models.values().all(|m| !m.fresh && !m.idle(now));
            if settled {
                let caps: u64 = models.values().map(|m| u64::from(m.max_rdy)).sum();
                prop_assert_eq!(sum, caps.min(u64::from(mif)), "budget not fully spread");
            }
            let active_below_cap = models
                .iter()
                .any(|(i, m)| !m.fresh && !m.idle(now) && sent[i] < m.max_rdy);
            if active_below_cap {
                for (i, m) in &models {
                    if m.idle(now) {
                        prop_assert_eq!(sent[i], 1, "idle conn {} not demoted", i);
                    }
                }
            }
        }
        if rotating {
            prop_assert_eq!(sum, u64::from(mif), "rotation leaves slots unused");
        }
        for (i, m) in models.iter_mut() {
            if !rotating || sent[i] > 0 {
                m.unserved_ticks = 0;
            } else if ticked {
                m.unserved_ticks += 1;
                prop_assert!(
                    m.unserved_ticks <= n,
                    "conn {} unserved for {} ticks among {} connections",
                    i,
                    m.unserved_ticks,
                    n
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn rdy_rules_hold_after_every_step(ops in prop::collection::vec(op(), 0..80)) {
        run(&ops)?;
    }
}
