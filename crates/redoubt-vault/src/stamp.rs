//! Hybrid logical clock stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, NodeId};

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

/// A node's hybrid logical clock: never goes backwards, never issues a stamp twice, and moves
/// past every stamp it observes.
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

    /// Advances the clock for a new local write at physical time `now_ms`: the stamp returned is
    /// greater than every stamp issued or observed before.
    ///
    /// Fails with [`Error::ClockExhausted`], changing nothing, when no greater reading exists
    /// (the last reading is `(u64::MAX, u32::MAX)`).
    pub fn tick(&mut self, now_ms: u64, node: NodeId) -> Result<Stamp, Error> {
        let (wall_ms, counter) = if now_ms > self.wall_ms {
            (now_ms, 0)
        } else if let Some(next) = self.counter.checked_add(1) {
            (self.wall_ms, next)
        } else if let Some(next) = self.wall_ms.checked_add(1) {
            // 2^32 writes within one millisecond: borrow the next millisecond.
            (next, 0)
        } else {
            return Err(Error::ClockExhausted);
        };
        (self.wall_ms, self.counter) = (wall_ms, counter);
        Ok(Stamp {
            wall_ms,
            counter,
            node,
        })
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
        let a = clock.tick(1000, N).unwrap();
        let b = clock.tick(1000, N).unwrap();
        let c = clock.tick(500, N).unwrap();
        let d = clock.tick(2000, N).unwrap();
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
        assert!(clock.tick(10, N).unwrap() > remote);
    }

    #[test]
    fn counter_overflow_borrows_a_millisecond() {
        let mut clock = Clock::at(5, u32::MAX);
        let s = clock.tick(0, N).unwrap();
        assert_eq!((s.wall_ms, s.counter), (6, 0));
    }

    #[test]
    fn an_exhausted_clock_is_an_error_not_a_repeated_stamp() {
        let mut clock = Clock::at(u64::MAX, u32::MAX - 1);
        let last = clock.tick(0, N).unwrap();
        assert_eq!((last.wall_ms, last.counter), (u64::MAX, u32::MAX));
        for now in [0, 1000, u64::MAX] {
            assert!(matches!(clock.tick(now, N), Err(Error::ClockExhausted)));
            assert_eq!(
                clock.last(),
                (u64::MAX, u32::MAX),
                "a failed tick changes nothing"
            );
        }
        // The greatest wall time with a counter to spare still ticks.
        let mut clock = Clock::at(u64::MAX, 7);
        let s = clock.tick(u64::MAX, N).unwrap();
        assert_eq!((s.wall_ms, s.counter), (u64::MAX, 8));
    }
}
