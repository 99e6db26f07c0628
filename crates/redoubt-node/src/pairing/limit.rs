//! A host's bound on the refusals it answers (no pairing here, a used or expired code), so that
//! a scanner cannot probe nameplates and codes fast: beyond the bound a request is dropped
//! unanswered, without any work.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// Most refusals a host answers one peer in a second.
pub const PAIR_REFUSALS_PER_PEER_PER_SECOND: u32 = 5;
/// Most refusals a host answers all peers together in a second.
pub const PAIR_REFUSALS_PER_SECOND: u32 = 20;

const WINDOW: Duration = Duration::from_secs(1);

/// Counts the refusals answered in the current one-second window, per peer and in all. The
/// per-peer map holds only peers answered in this window, so it never exceeds
/// [`PAIR_REFUSALS_PER_SECOND`] entries.
#[derive(Debug)]
pub(super) struct RefusalLimiter {
    window: Instant,
    total: u32,
    per_peer: HashMap<PeerId, u32>,
}

impl RefusalLimiter {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            window: now,
            total: 0,
            per_peer: HashMap::new(),
        }
    }

    /// Whether a refusal to `peer` may be answered at `now`; counts it if so.
    pub(super) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        if now.saturating_duration_since(self.window) >= WINDOW {
            self.window = now;
            self.total = 0;
            self.per_peer.clear();
        }
        if self.total >= PAIR_REFUSALS_PER_SECOND {
            return false;
        }
        let answered = self.per_peer.entry(peer).or_insert(0);
        if *answered >= PAIR_REFUSALS_PER_PEER_PER_SECOND {
            return false;
        }
        *answered += 1;
        self.total += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_each_peer_and_all_peers_per_window() {
        let start = Instant::now();
        let mut limiter = RefusalLimiter::new(start);
        let scanner = PeerId::random();
        let answered = (0..100).filter(|_| limiter.allow(scanner, start)).count();
        assert_eq!(answered, PAIR_REFUSALS_PER_PEER_PER_SECOND as usize);

        // Many peers: the overall bound holds whatever the number of peer ids.
        let mut limiter = RefusalLimiter::new(start);
        let answered = (0..100)
            .filter(|_| limiter.allow(PeerId::random(), start))
            .count();
        assert_eq!(answered, PAIR_REFUSALS_PER_SECOND as usize);
        assert!(limiter.per_peer.len() <= PAIR_REFUSALS_PER_SECOND as usize);

        // The next window answers again.
        let later = start + WINDOW;
        assert!(limiter.allow(scanner, later));
        assert_eq!(limiter.total, 1);
        assert_eq!(limiter.per_peer.len(), 1);
    }
}
