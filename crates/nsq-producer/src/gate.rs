//! The queue's admission gate: how many permits a request holds while it is queued.

/// The sizes of the queue's admission gate: one semaphore of `size` permits bounds both the
/// number of queued requests and their bytes.
///
/// A request holds its encoded size in permits, but at least `unit` (`size` over
/// `queue_capacity`), so that no more than `queue_capacity` requests fit; and at most `size`,
/// so that a request larger than the whole budget can still go, alone. `size` is
/// `queue_capacity_bytes` rounded down to a multiple of `queue_capacity`.
///
/// One gate rather than one for the count and one for the bytes, so that a waiting publisher
/// waits in one queue and is woken once: with two, a publisher first waited for bytes, then
/// for a place in the channel, where the router freed places (and woke waiters) one request at
/// a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    unit: usize,
    size: usize,
}

impl Gate {
    /// The permits of the whole gate: the semaphore's size.
    pub(crate) fn size(self) -> usize {
        self.size
    }

    pub(crate) fn new(queue_capacity: usize, queue_capacity_bytes: usize) -> Self {
        if queue_capacity_bytes >= queue_capacity {
            let unit = queue_capacity_bytes / queue_capacity;
            Self {
                unit,
                size: unit * queue_capacity,
            }
        } else {
            // Fewer bytes than requests: every request is at least a byte, so the bytes bound
            // is the tighter one.
            Self {
                unit: 1,
                size: queue_capacity_bytes,
            }
        }
    }

    /// The permits a request of `encoded_len` bytes holds while queued.
    pub(crate) fn permits(self, encoded_len: usize) -> u32 {
        // `size` fits in a u32: the configuration caps `queue_capacity_bytes`.
        encoded_len.clamp(self.unit, self.size) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn the_gate_bounds_requests_and_bytes() {
        // The defaults: 16,384 requests, 64 MiB.
        let gate = Gate::new(16 * 1024, 64 * 1024 * 1024);
        assert_eq!((gate.unit, gate.size), (4096, 64 * 1024 * 1024));
        // Small requests count as a unit each: 16,384 of them fill the gate.
        assert_eq!(gate.permits(114), 4096);
        // Large ones count as their size; one above the budget takes all of it.
        assert_eq!(gate.permits(100_000), 100_000);
        assert_eq!(gate.permits(usize::MAX), 64 * 1024 * 1024);

        // Bytes not a multiple of the count: rounded down, so that at most 3 small requests
        // fit, and never more than the configured bytes.
        let gate = Gate::new(3, 100);
        assert_eq!((gate.unit, gate.size), (33, 99));
        assert_eq!(gate.size / gate.permits(1) as usize, 3);

        // Fewer bytes than requests: the byte bound is the tighter one.
        let gate = Gate::new(1000, 10);
        assert_eq!((gate.unit, gate.size), (1, 10));
        assert_eq!(gate.permits(4), 4);
        assert_eq!(gate.permits(50), 10);
    }
}
