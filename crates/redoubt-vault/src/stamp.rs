//! Hybrid logical clock stamps, and how far ahead of this clock an incoming stamp may be.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, NodeId};

/// How far ahead of the receiver's physical clock an incoming stamp may be, by default: ten
/// minutes, as iroh-docs allows.
pub const DEFAULT_MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

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
///
/// Merges observe only stamps that [`MergeBounds`] admits, so no stamp from elsewhere can move
/// the clock more than the bound ahead of physical time.
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

    /// Moves the clock up to a stamp received from elsewhere, so later local writes order after
    /// it. Unchecked: merges call it only for stamps their [`MergeBounds`] admits.
    pub fn observe(&mut self, stamp: &Stamp) {
        if (stamp.wall_ms, stamp.counter) > (self.wall_ms, self.counter) {
            (self.wall_ms, self.counter) = (stamp.wall_ms, stamp.counter);
        }
    }
}

/// The bound a merge puts on incoming stamps: a version stamped more than `max_ahead_ms` after
/// `now_ms` is refused, neither stored nor observed by the clock.
///
/// ```
/// use redoubt_vault::{DEFAULT_MAX_AHEAD_MS, MergeBounds, NodeId, Stamp};
/// let bounds = MergeBounds::at(1_000_000);
/// let stamp = |wall_ms| Stamp { wall_ms, counter: 0, node: NodeId::from_bytes([1; 16]) };
/// assert!(bounds.admits(&stamp(1_000_000 + DEFAULT_MAX_AHEAD_MS)));
/// assert!(!bounds.admits(&stamp(1_000_001 + DEFAULT_MAX_AHEAD_MS)));
/// assert!(!bounds.admits(&stamp(u64::MAX)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeBounds {
    /// The receiver's physical time, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// How far past `now_ms` an incoming stamp's `wall_ms` may be. `u64::MAX` admits every
    /// stamp (trusting writers' clocks, as merges did before the bound existed).
    pub max_ahead_ms: u64,
}

impl MergeBounds {
    /// The system clock's time, with the default drift [`DEFAULT_MAX_AHEAD_MS`].
    pub fn now() -> Self {
        Self::at(now_ms())
    }

    /// Physical time `now_ms`, with the default drift [`DEFAULT_MAX_AHEAD_MS`] (deterministic
    /// tests and replays).
    pub const fn at(now_ms: u64) -> Self {
        Self {
            now_ms,
            max_ahead_ms: DEFAULT_MAX_AHEAD_MS,
        }
    }

    /// The greatest `wall_ms` admitted: `now_ms + max_ahead_ms`, saturating.
    pub const fn limit_ms(&self) -> u64 {
        self.now_ms.saturating_add(self.max_ahead_ms)
    }

    /// Whether a version stamped `stamp` may be merged (and its stamp observed).
    pub const fn admits(&self, stamp: &Stamp) -> bool {
        stamp.wall_ms <= self.limit_ms()
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

    #[test]
    fn bounds_admit_up_to_the_drift_and_saturate() {
        let at = |wall_ms| Stamp {
            wall_ms,
            counter: u32::MAX,
            node: N,
        };
        let b = MergeBounds::at(5000);
        assert_eq!(b.limit_ms(), 5000 + DEFAULT_MAX_AHEAD_MS);
        assert!(b.admits(&at(0)) && b.admits(&at(b.limit_ms())));
        assert!(!b.admits(&at(b.limit_ms() + 1)));
        let strict = MergeBounds {
            max_ahead_ms: 0,
            ..b
        };
        assert!(strict.admits(&at(5000)) && !strict.admits(&at(5001)));
        let open = MergeBounds {
            now_ms: u64::MAX - 1,
            max_ahead_ms: u64::MAX,
        };
        assert_eq!(open.limit_ms(), u64::MAX);
        assert!(open.admits(&at(u64::MAX)));
    }
}
