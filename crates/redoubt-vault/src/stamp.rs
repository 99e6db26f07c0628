//! Hybrid logical clock stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::NodeId;

/// When and by whom a record version was written: a hybrid logical clock reading.
///
/// Stamps order by wall-clock milliseconds, then counter, then writer node id, so two different
/// writers never produce equal stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Wall-clock milliseconds since the Unix epoch (or the greatest seen so far).
    pub wall_ms: u64,
    /// Logical counter, for writes within the same millisecond.
    pub counter: u32,
    /// The writer.
    pub node: NodeId,
}

/// A node's hybrid logical clock: never goes backwards, and moves past every stamp it observes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    wall_ms: u64,
    counter: u32,
}

impl Clock {
    /// A clock that has last read `(wall_ms, counter)`; used when loading a saved instance.
    pub const fn at(wall_ms: u64, counter: u32) -> Self {
        Self { wall_ms, counter }
    }

    /// The last reading: `(wall_ms, counter)`.
    pub const fn last(&self) -> (u64, u32) {
        (self.wall_ms, self.counter)
    }

    /// Advances the clock for a new local write at physical time `now_ms`.
    pub fn tick(&mut self, now_ms: u64, node: NodeId) -> Stamp {
        if now_ms > self.wall_ms {
            (self.wall_ms, self.counter) = (now_ms, 0);
        } else if let Some(next) = self.counter.checked_add(1) {
            self.counter = next;
        } else {
            // 2^32 writes within one millisecond: borrow the next millisecond.
            (self.wall_ms, self.counter) = (self.wall_ms.saturating_add(1), 0);
        }
        Stamp {
            wall_ms: self.wall_ms,
            counter: self.counter,
            node,
        }
    }

    /// Moves the clock past a stamp received from elsewhere, so later local writes order after
    /// it.
    pub fn observe(&mut self, stamp: &Stamp) {
        if (stamp.wall_ms, stamp.counter) > (self.wall_ms, self.counter) {
            (self.wall_ms, self.counter) = (stamp.wall_ms, stamp.counter);
        }
    }
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: NodeId = NodeId::from_bytes([1; 16]);

    #[test]
    fn clock_is_monotonic_even_when_wall_time_goes_back() {
        let mut clock = Clock::default();
        let a = clock.tick(1000, N);
        let b = clock.tick(1000, N);
        let c = clock.tick(500, N);
        let d = clock.tick(2000, N);
        assert!(a < b && b < c && c < d);
        assert_eq!((c.wall_ms, c.counter), (1000, 2));
    }

    #[test]
    fn observe_moves_past_remote_stamps() {
        let mut clock = Clock::default();
        let remote = Stamp {
            wall_ms: 9000,
            counter: 7,
            node: NodeId::from_bytes([2; 16]),
        };
        clock.observe(&remote);
        assert!(clock.tick(10, N) > remote);
    }

    #[test]
    fn counter_overflow_borrows_a_millisecond() {
        let mut clock = Clock::at(5, u32::MAX);
        let s = clock.tick(0, N);
        assert_eq!((s.wall_ms, s.counter), (6, 0));
    }
}
