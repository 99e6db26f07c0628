//! Set reconciliation state: a rateless invertible Bloom lookup table (after Yang, Gilad and
//! Alizadeh, "Practical Rateless Set Reconciliation", SIGCOMM 2024) over the versions a client
//! holds, kept up to date as records are written.
//!
//! Each version is an *element*: a 32-byte hash of (client id, shape) whose first 8 bytes are its
//! 64-bit *key*. Every element maps to an infinite, increasing sequence of symbol indices that
//! starts at 0 and thins out (index `i` is hit with probability about `2 / (i + 2)`). Coded
//! symbol `i` holds the XOR of the keys mapped to it, the XOR of their checksums, and their count.
//! Subtracting one peer's symbols from another's leaves the symbols of the symmetric difference,
//! which [`decode`] peels. Sums over disjoint sets add, so a scope of several clients is the sum
//! of their sketches. `docs/protocol.md` (version 2) specifies every function here bit by bit.

mod decode;
mod digest;
mod sums;

use std::collections::HashMap;

pub use decode::{Decoded, decode};
pub use digest::SetDigest;
pub use sums::{BadSums, SketchSums};

use crate::{ClientId, RecordId, Shape, VaultId};

/// `blake3` context of an element's hash.
pub const ELEMENT_CONTEXT: &str = "redoubt sketch v2 element";
/// Most coded symbols a sketch ever serves or decodes: the cap on one reconciliation.
pub const MAX_SYMBOLS: usize = 1 << 15;
/// A client's first [`MAX_SYMBOLS`] symbols are kept in memory once it holds this many
/// versions; below it they are computed from the element keys when asked for.
pub const MATERIALIZE_AT: u64 = 2048;
/// Indices of the probe symbols whose fingerprints estimate the size of a difference.
pub const PROBES: [usize; 15] = [
    1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 2047, 4095, 8191, 16383, 32767,
];

/// How many [`FINE_PROBES`] there are.
pub const FINE_PROBE_COUNT: usize = 197;

/// Indices of the fine probes a responder sends when the first symbol did not decode, about 16
/// per doubling: `x0 = 2`, `x(k+1) = x(k) + max(1, x(k) / 22)` (integer division), below
/// [`MAX_SYMBOLS`].
pub const FINE_PROBES: [usize; FINE_PROBE_COUNT] = fine_probes();

const fn fine_probes() -> [usize; FINE_PROBE_COUNT] {
    let mut out = [0usize; FINE_PROBE_COUNT];
    let mut x = 2;
    let mut k = 0;
    while k < FINE_PROBE_COUNT {
        out[k] = x;
        let step = x / 22;
        x += if step == 0 { 1 } else { step };
        k += 1;
    }
    assert!(x >= MAX_SYMBOLS && out[FINE_PROBE_COUNT - 1] < MAX_SYMBOLS);
    out
}

/// One coded symbol: XOR of keys, XOR of checksums, and a count (wrapping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Symbol {
    /// XOR of the keys mapped here.
    pub key: u64,
    /// XOR of their [`checksum`]s.
    pub check: u32,
    /// How many (a difference may be negative).
    pub count: i32,
}

impl Symbol {
    /// Adds (`sign` = 1) or removes (`sign` = -1) an element.
    pub fn apply(&mut self, key: u64, sign: i32) {
        self.key ^= key;
        self.check ^= checksum(key);
        self.count = self.count.wrapping_add(sign);
    }

    /// `self - other`: the symbol of the difference of two sets.
    pub fn minus(self, other: Self) -> Self {
        Self {
            key: self.key ^ other.key,
            check: self.check ^ other.check,
            count: self.count.wrapping_sub(other.count),
        }
    }

    /// `self + other`: the symbol of the union of two disjoint sets.
    pub fn plus(self, other: Self) -> Self {
        Self {
            key: self.key ^ other.key,
            check: self.check ^ other.check,
            count: self.count.wrapping_add(other.count),
        }
    }

    /// Whether it holds nothing.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// One byte that differs between two symbols with probability 255/256 when they differ:
    /// the probes of the difference estimator. The count enters modulo 2^16, as on the wire.
    pub fn fingerprint(&self) -> u8 {
        let count = u64::from(self.count as u16);
        (mix64(self.key ^ (u64::from(self.check) << 16) ^ (count << 48)) >> 56) as u8
    }
}

/// One version as a set element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    /// The first 8 bytes of `hash`, little-endian.
    pub key: u64,
    /// `blake3` keyed by [`ELEMENT_CONTEXT`] over client id, vault id, record id, size (u32 LE)
    /// and version hash.
    pub hash: [u8; 32],
}

impl Element {
    /// The element of `client`'s version described by `shape`.
    pub fn of(client: &ClientId, shape: &Shape) -> Self {
        let mut h = blake3::Hasher::new_derive_key(ELEMENT_CONTEXT);
        h.update(client.as_bytes());
        h.update(shape.vault.as_bytes());
        h.update(shape.record.as_bytes());
        h.update(&shape.size.to_le_bytes());
        h.update(&shape.hash);
        let hash = *h.finalize().as_bytes();
        let mut key = [0u8; 8];
        key.copy_from_slice(&hash[..8]);
        Self {
            key: u64::from_le_bytes(key),
            hash,
        }
    }
}

/// The checksum that tells a pure symbol (one element) from a mixture.
pub fn checksum(key: u64) -> u32 {
    (mix64(key ^ 0x5bd1_e995_0ea8_a5c1) >> 32) as u32
}

/// The splitmix64 finalizer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The symbol indices an element maps to: 0, then ever sparser, without end.
///
/// From index `i`, the next is `floor((i + 1.5) / sqrt(u) - 1.5) + 1` (at least `i + 1`), where
/// `u` in (0, 1] comes from a splitmix64 stream seeded by the key; so the next index exceeds `j`
/// with probability `((i + 1.5) / (j + 1.5))^2`, and index `j` is hit with probability about
/// `2 / (j + 2)`. IEEE-754 division and square root are exact-rounded, so every platform walks
/// the same indices.
#[derive(Clone, Debug)]
pub struct Indices {
    state: u64,
    next: u64,
}

impl Indices {
    /// The walk of `key`.
    pub fn of(key: u64) -> Self {
        Self {
            state: key,
            next: 0,
        }
    }
}

impl Iterator for Indices {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let current = self.next;
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let r = mix64(self.state);
        let u = ((r >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64);
        let x = (current as f64 + 1.5) / u.sqrt() - 1.5;
        // `as` saturates; x >= current always, and the walk never goes near 2^53.
        self.next = (x.floor() as u64).saturating_add(1).max(current + 1);
        Some(current)
    }
}

/// Whether `key` maps to symbol `index`.
pub fn maps_to(key: u64, index: usize) -> bool {
    let index = index as u64;
    Indices::of(key)
        .find(|&i| i >= index)
        .is_some_and(|i| i == index)
}

/// Adds `sign` times the element `key` to every symbol of `out`, which holds symbols
/// `from .. from + out.len()`.
pub fn add_to(out: &mut [Symbol], from: usize, key: u64, sign: i32) {
    let (from, to) = (from as u64, (from + out.len()) as u64);
    for i in Indices::of(key) {
        if i >= to {
            break;
        }
        if i >= from {
            out[(i - from) as usize].apply(key, sign);
        }
    }
}

/// What a key names in one client's sketch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No version has this key.
    Absent,
    /// Exactly one version, at these location ids.
    One(VaultId, RecordId),
    /// Several versions share the key (a 64-bit collision): the caller must fall back.
    Ambiguous,
}

/// The reconciliation state of one client: its [`SketchSums`] (count, digest, symbols) and
/// where each element's version lives.
#[derive(Clone, Debug, Default)]
pub struct ClientSketch {
    sums: SketchSums,
    index: HashMap<u64, (VaultId, RecordId)>,
    /// Versions whose key an element in `index` already has.
    shared: Vec<(u64, (VaultId, RecordId))>,
}

impl ClientSketch {
    /// The sketch of `elements` (for a selection that is not a whole client).
    pub fn from_elements(
        elements: impl IntoIterator<Item = (Element, (VaultId, RecordId))>,
    ) -> Self {
        let mut s = Self::default();
        for (e, ids) in elements {
            s.insert(&e, ids);
        }
        s
    }

    /// What sessions sum: count, digest, symbols.
    pub fn sums(&self) -> &SketchSums {
        &self.sums
    }

    /// Elements held.
    pub fn len(&self) -> u64 {
        self.sums.len()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// The sum of the elements' hashes.
    pub fn digest(&self) -> SetDigest {
        self.sums.digest()
    }

    /// Where the version with `key` lives.
    pub fn locate(&self, key: u64) -> Lookup {
        match self.index.get(&key) {
            None => Lookup::Absent,
            Some(_) if self.shared.iter().any(|(k, _)| *k == key) => Lookup::Ambiguous,
            Some((v, r)) => Lookup::One(*v, *r),
        }
    }

    /// Adds this sketch's symbols `from .. from + out.len()` into `out`
    /// ([`SketchSums::add_symbols`]).
    pub fn add_symbols(&self, from: usize, out: &mut [Symbol]) {
        self.sums.add_symbols(from, out);
    }

    /// Adds this sketch's symbols at `indices` (ascending) into `out`, one per index
    /// ([`SketchSums::add_at`]).
    pub fn add_at(&self, indices: &[usize], out: &mut [Symbol]) {
        self.sums.add_at(indices, out);
    }

    /// Adds a version.
    pub(crate) fn insert(&mut self, e: &Element, ids: (VaultId, RecordId)) {
        self.sums.insert(e.key, &e.hash);
        match self.index.entry(e.key) {
            std::collections::hash_map::Entry::Occupied(_) => self.shared.push((e.key, ids)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(ids);
            }
        }
    }

    /// Removes a version (one that was inserted with the same element and ids).
    pub(crate) fn remove(&mut self, e: &Element, ids: (VaultId, RecordId)) {
        self.sums.remove(e.key, &e.hash);
        if let Some(at) = self.shared.iter().position(|x| *x == (e.key, ids)) {
            self.shared.swap_remove(at);
        } else if self.index.get(&e.key) == Some(&ids) {
            match self.shared.iter().position(|(k, _)| *k == e.key) {
                Some(at) => {
                    let (_, other) = self.shared.swap_remove(at);
                    self.index.insert(e.key, other);
                }
                None => {
                    self.index.remove(&e.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_density_follows_two_over_i_plus_two() {
        let keys = 20_000u64;
        let mut hits = [0u32; 64];
        for k in 0..keys {
            for i in Indices::of(mix64(k)) {
                if i >= 64 {
                    break;
                }
                hits[i as usize] += 1;
            }
        }
        assert_eq!(hits[0], keys as u32);
        for (i, &h) in hits.iter().enumerate().skip(1) {
            let want = 2.0 / (i as f64 + 2.0) * keys as f64;
            let got = f64::from(h);
            assert!(
                (got - want).abs() < 0.1 * want + 60.0,
                "index {i}: {got} hits, want about {want}"
            );
        }
    }

    #[test]
    fn a_shared_key_is_ambiguous_until_one_version_goes() {
        let a = (VaultId::from_bytes([1; 32]), RecordId::from_bytes([1; 32]));
        let b = (VaultId::from_bytes([2; 32]), RecordId::from_bytes([2; 32]));
        let e1 = Element {
            key: 7,
            hash: [1; 32],
        };
        let e2 = Element {
            key: 7,
            hash: [2; 32],
        };
        let mut s = ClientSketch::default();
        s.insert(&e1, a);
        assert_eq!(s.locate(7), Lookup::One(a.0, a.1));
        s.insert(&e2, b);
        assert_eq!(s.locate(7), Lookup::Ambiguous);
        s.remove(&e1, a);
        assert_eq!(s.locate(7), Lookup::One(b.0, b.1));
        s.remove(&e2, b);
        assert_eq!(s.locate(7), Lookup::Absent);
        assert!(s.is_empty());
        assert_eq!(s.digest(), SetDigest::default());
    }
}
