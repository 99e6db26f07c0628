//! A small seeded generator (splitmix64) so that a failing run can be replayed: every part
//! prints its seed.

/// Seeded pseudo-random numbers.
pub(crate) struct Rng(u64);

impl Rng {
    /// From the system RNG, or from `REDOUBT_RELIABILITY_SEED` when set.
    pub(crate) fn new(part: &str) -> Self {
        let seed = std::env::var("REDOUBT_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let mut b = [0u8; 8];
                let _ = getrandom::fill(&mut b);
                u64::from_le_bytes(b)
            });
        eprintln!("({part}: seed {seed}; REDOUBT_RELIABILITY_SEED={seed} replays it)");
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
