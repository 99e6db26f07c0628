//! What a reconciliation sums of one client: its elements' count and digest, and its coded
//! symbols. A store keeps this part on disk and updates it with each commit; where each key's
//! version lives ([`super::ClientSketch`]'s index in memory, a table in a store) is kept apart.

use super::{MATERIALIZE_AT, MAX_SYMBOLS, SetDigest, Symbol, add_to};

/// A client's element count, set digest, and coded symbols: the first [`MAX_SYMBOLS`] kept
/// once it has held [`MATERIALIZE_AT`] elements, before that computed when asked for from the
/// element keys it keeps instead (cheap: fewer than [`MATERIALIZE_AT`] of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SketchSums {
    len: u64,
    digest: SetDigest,
    /// Every element's key (a multiset), while no symbols are kept.
    keys: Vec<u64>,
    /// The first [`MAX_SYMBOLS`] symbols, once kept; never dropped again.
    symbols: Vec<Symbol>,
}

/// Why [`SketchSums::from_keys`] or [`SketchSums::from_symbols`] refused its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadSums {
    /// Keys are kept only below [`MATERIALIZE_AT`] elements, one per element.
    KeysMismatch,
    /// Kept symbols are exactly [`MAX_SYMBOLS`].
    SymbolCount,
}

impl SketchSums {
    /// Sums kept as element keys: `keys` must hold one key per element, fewer than
    /// [`MATERIALIZE_AT`].
    pub fn from_keys(digest: SetDigest, keys: Vec<u64>) -> Result<Self, BadSums> {
        if keys.len() as u64 >= MATERIALIZE_AT {
            return Err(BadSums::KeysMismatch);
        }
        Ok(Self {
            len: keys.len() as u64,
            digest,
            keys,
            symbols: Vec::new(),
        })
    }

    /// Sums kept as symbols: exactly [`MAX_SYMBOLS`] of them.
    pub fn from_symbols(
        len: u64,
        digest: SetDigest,
        symbols: Vec<Symbol>,
    ) -> Result<Self, BadSums> {
        if symbols.len() != MAX_SYMBOLS {
            return Err(BadSums::SymbolCount);
        }
        Ok(Self {
            len,
            digest,
            keys: Vec::new(),
            symbols,
        })
    }

    /// Elements held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sum of the elements' hashes.
    pub fn digest(&self) -> SetDigest {
        self.digest
    }

    /// The element keys, while they are what is kept (no symbols yet).
    pub fn keys(&self) -> Option<&[u64]> {
        self.symbols.is_empty().then_some(self.keys.as_slice())
    }

    /// The kept symbols, once they are.
    pub fn kept_symbols(&self) -> Option<&[Symbol]> {
        (!self.symbols.is_empty()).then_some(self.symbols.as_slice())
    }

    /// Adds symbols `from .. from + out.len()` into `out`: from memory when kept, else from
    /// the keys.
    pub fn add_symbols(&self, from: usize, out: &mut [Symbol]) {
        let kept = self.symbols.len().saturating_sub(from).min(out.len());
        if kept > 0 {
            for (o, s) in out[..kept].iter_mut().zip(&self.symbols[from..from + kept]) {
                *o = o.plus(*s);
            }
        }
        if kept == out.len() {
            return;
        }
        // Past the kept symbols (or with none kept) they come from the keys; kept symbols
        // stop at MAX_SYMBOLS, which no session asks beyond.
        if self.symbols.is_empty() {
            let rest_from = from + kept;
            let rest = &mut out[kept..];
            for &key in &self.keys {
                add_to(rest, rest_from, key, 1);
            }
        }
    }

    /// Adds the symbols at `indices` (ascending, below [`MAX_SYMBOLS`] once symbols are
    /// kept) into `out`, one per index.
    pub fn add_at(&self, indices: &[usize], out: &mut [Symbol]) {
        let Some(&max) = indices.last() else {
            return;
        };
        if !self.symbols.is_empty() {
            for (o, &i) in out.iter_mut().zip(indices) {
                if let Some(s) = self.symbols.get(i) {
                    *o = o.plus(*s);
                }
            }
            return;
        }
        for &key in &self.keys {
            let mut at = 0;
            for i in super::Indices::of(key) {
                let i = i as usize;
                if i > max {
                    break;
                }
                while indices.get(at).is_some_and(|&x| x < i) {
                    at += 1;
                }
                if indices.get(at) == Some(&i) {
                    out[at].apply(key, 1);
                }
            }
        }
    }

    /// Adds an element (its key and hash).
    pub fn insert(&mut self, key: u64, hash: &[u8; 32]) {
        self.len += 1;
        self.digest.add(hash);
        if self.symbols.is_empty() {
            self.keys.push(key);
            if self.len >= MATERIALIZE_AT {
                let mut symbols = vec![Symbol::default(); MAX_SYMBOLS];
                for &k in &self.keys {
                    add_to(&mut symbols, 0, k, 1);
                }
                self.symbols = symbols;
                self.keys = Vec::new();
            }
        } else {
            add_to(&mut self.symbols, 0, key, 1);
        }
    }

    /// Removes an element that was inserted with the same key and hash.
    pub fn remove(&mut self, key: u64, hash: &[u8; 32]) {
        self.len = self.len.wrapping_sub(1);
        self.digest.sub(hash);
        if self.symbols.is_empty() {
            if let Some(at) = self.keys.iter().position(|k| *k == key) {
                self.keys.swap_remove(at);
            }
        } else {
            add_to(&mut self.symbols, 0, key, -1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::PROBES;

    fn key(n: u64) -> u64 {
        super::super::mix64(n)
    }

    fn hash(n: u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn kept_and_computed_symbols_agree_and_removal_undoes_insertion() {
        let mut big = SketchSums::default();
        for n in 0..MATERIALIZE_AT + 10 {
            big.insert(key(n), &hash(n));
        }
        assert_eq!(big.kept_symbols().map(<[Symbol]>::len), Some(MAX_SYMBOLS));
        assert!(big.keys().is_none());
        let computed = SketchSums {
            len: big.len,
            digest: big.digest,
            keys: (0..MATERIALIZE_AT + 10).map(key).collect(),
            symbols: Vec::new(),
        };
        let mut from_memory = vec![Symbol::default(); 100];
        big.add_symbols(MAX_SYMBOLS - 100, &mut from_memory);
        let mut from_keys = vec![Symbol::default(); 100];
        computed.add_symbols(MAX_SYMBOLS - 100, &mut from_keys);
        assert_eq!(from_memory, from_keys);
        let (mut at_memory, mut at_keys) = ([Symbol::default(); 15], [Symbol::default(); 15]);
        big.add_at(&PROBES, &mut at_memory);
        computed.add_at(&PROBES, &mut at_keys);
        assert_eq!(at_memory, at_keys);
        assert_eq!(at_memory[3], {
            let mut one = [Symbol::default()];
            big.add_symbols(PROBES[3], &mut one);
            one[0]
        });
        let before = big.clone();
        big.insert(key(1 << 40), &hash(1 << 40));
        assert_ne!(big, before);
        big.remove(key(1 << 40), &hash(1 << 40));
        assert_eq!(big, before);
    }

    #[test]
    fn small_sums_keep_keys_and_parts_are_checked() {
        let mut s = SketchSums::default();
        for n in 0..5 {
            s.insert(key(n), &hash(n));
        }
        s.remove(key(2), &hash(2));
        let mut keys = s.keys().map(<[u64]>::to_vec).unwrap_or_default();
        keys.sort_unstable();
        let mut want: Vec<u64> = [0, 1, 3, 4].into_iter().map(key).collect();
        want.sort_unstable();
        assert_eq!(keys, want);
        let rebuilt = SketchSums::from_keys(s.digest(), s.keys().unwrap_or_default().to_vec());
        assert_eq!(rebuilt, Ok(s.clone()));
        assert_eq!(
            SketchSums::from_keys(s.digest(), vec![0; MATERIALIZE_AT as usize]),
            Err(BadSums::KeysMismatch)
        );
        assert_eq!(
            SketchSums::from_symbols(1, s.digest(), vec![Symbol::default(); 3]),
            Err(BadSums::SymbolCount)
        );
    }
}
