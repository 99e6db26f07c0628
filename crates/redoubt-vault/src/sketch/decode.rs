//! Peeling a difference of sketches back into the elements it is made of.

use std::collections::HashSet;

use super::{Indices, Symbol, checksum, maps_to};

/// The two sides of a decoded difference `ours - theirs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Keys in the minuend only (count +1).
    pub ours: Vec<u64>,
    /// Keys in the subtrahend only (count -1).
    pub theirs: Vec<u64>,
}

/// Peels `diff` (the symbols `0 .. diff.len()` of `ours - theirs`); `None` when they do not
/// decode to empty. The work is bounded: at most `diff.len()` elements are peeled, each walking
/// indices below `diff.len()` only, so a hostile input costs O(n log n) in its own length.
pub fn decode(diff: &mut [Symbol]) -> Option<Decoded> {
    let m = diff.len();
    let mut out = Decoded::default();
    let mut seen = HashSet::new();
    let mut queue: Vec<usize> = (0..m).filter(|&i| is_pure(&diff[i], i)).collect();
    while let Some(i) = queue.pop() {
        let s = diff[i];
        if !is_pure(&s, i) {
            continue;
        }
        if out.ours.len() + out.theirs.len() >= m || !seen.insert(s.key) {
            return None;
        }
        let sign = s.count;
        if sign == 1 {
            out.ours.push(s.key);
        } else {
            out.theirs.push(s.key);
        }
        for j in Indices::of(s.key) {
            let j = j as usize;
            if j >= m {
                break;
            }
            diff[j].apply(s.key, -sign);
            if is_pure(&diff[j], j) {
                queue.push(j);
            }
        }
    }
    diff.iter().all(Symbol::is_zero).then_some(out)
}

/// One element alone: count ±1, a checksum that matches the key, and a key that maps here.
fn is_pure(s: &Symbol, index: usize) -> bool {
    (s.count == 1 || s.count == -1) && s.check == checksum(s.key) && maps_to(s.key, index)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sketch::add_to;

    fn sketch(keys: &[u64], m: usize) -> Vec<Symbol> {
        let mut s = vec![Symbol::default(); m];
        for &k in keys {
            add_to(&mut s, 0, k, 1);
        }
        s
    }

    fn diff(a: &[u64], b: &[u64], m: usize) -> Vec<Symbol> {
        sketch(a, m)
            .into_iter()
            .zip(sketch(b, m))
            .map(|(x, y)| x.minus(y))
            .collect()
    }

    proptest! {
        /// With enough symbols, decoding finds exactly the symmetric difference, whatever the
        /// common part.
        #[test]
        fn decoding_finds_exactly_the_symmetric_difference(
            common in prop::collection::hash_set(any::<u64>(), 0..300),
            only_a in prop::collection::hash_set(any::<u64>(), 0..40),
            only_b in prop::collection::hash_set(any::<u64>(), 0..40),
        ) {
            let only_a: Vec<u64> = only_a.difference(&common).copied().collect();
            let only_b: Vec<u64> = only_b
                .difference(&common)
                .filter(|k| !only_a.contains(k))
                .copied()
                .collect();
            let a: Vec<u64> = common.iter().chain(&only_a).copied().collect();
            let b: Vec<u64> = common.iter().chain(&only_b).copied().collect();
            // Rateless: a batch that does not decode is followed by a larger one. Two elements
            // can share their first few indices, so small batches fail now and then; by 64 d
            // + 256 symbols every case decodes.
            let d = only_a.len() + only_b.len();
            let mut m = 3 * d + 16;
            let mut got = loop {
                if let Some(got) = decode(&mut diff(&a, &b, m)) {
                    break got;
                }
                prop_assert!(m < 64 * d + 256, "no decode with {} symbols for d = {}", m, d);
                m *= 2;
            };
            got.ours.sort_unstable();
            got.theirs.sort_unstable();
            let mut want_a = only_a.clone();
            want_a.sort_unstable();
            let mut want_b = only_b.clone();
            want_b.sort_unstable();
            prop_assert_eq!(got.ours, want_a);
            prop_assert_eq!(got.theirs, want_b);
        }

        /// Arbitrary symbols never make the decoder loop or panic, and it never claims more
        /// elements than symbols.
        #[test]
        fn arbitrary_symbols_are_bounded(
            raw in prop::collection::vec((any::<u64>(), any::<u32>(), -3i32..3), 0..200),
        ) {
            let mut s: Vec<Symbol> = raw
                .into_iter()
                .map(|(key, check, count)| Symbol { key, check, count })
                .collect();
            let m = s.len();
            if let Some(d) = decode(&mut s) {
                prop_assert!(d.ours.len() + d.theirs.len() <= m);
            }
        }
    }

    #[test]
    fn too_few_symbols_fail_instead_of_guessing() {
        let a: Vec<u64> = (1..=200).map(|k| k * 0x9e37_79b9).collect();
        assert!(decode(&mut diff(&a, &[], 20)).is_none());
        assert_eq!(decode(&mut diff(&a, &a, 1)), Some(Decoded::default()));
    }
}
