//! A pull's scope as one sketch, and the policy of version 2: how many symbols to ask for, and
//! when sending every shape is the better deal.

use std::borrow::Cow;

use redoubt_vault::{
    ClientId, RecordId, Selection, VaultId,
    sketch::{
        ClientSketch, Element, FINE_PROBES, Lookup, MAX_SYMBOLS, PROBES, SetDigest, SketchSums,
        Symbol,
    },
};

use crate::{Error, Replica, SHAPE_LEN, Summary, message::SYMBOL_LEN, replica::ReplicaExt};

/// The sketch of a scope: the sum of its clients' sketches, in scope order.
pub struct ScopeSketch<'a> {
    clients: Vec<ClientId>,
    /// Per client: the sums the replica keeps (a whole client), or a sketch built from its
    /// records (a selection inside it).
    parts: Vec<Part<'a>>,
}

/// One client's part of a scope.
enum Part<'a> {
    /// The whole client: the replica's kept sums; the replica locates its keys.
    Kept(Cow<'a, SketchSums>),
    /// A selection inside it, built from its records, with its own index.
    Built(ClientSketch),
}

impl Part<'_> {
    fn sums(&self) -> &SketchSums {
        match self {
            Part::Kept(s) => s,
            Part::Built(s) => s.sums(),
        }
    }
}

impl<'a> ScopeSketch<'a> {
    /// The sketch of `clients` (each with the selection inside it) as `replica` holds them. A
    /// whole client costs nothing (its sums are kept); a partial selection is built from its
    /// records. A failed read fails it ([`Error::Replica`]).
    pub fn new<R: Replica>(
        replica: &'a R,
        clients: &[(ClientId, Selection)],
    ) -> Result<Self, Error> {
        let mut parts = Vec::with_capacity(clients.len());
        for (client, selection) in clients {
            let part = if selection.is_everything() {
                Part::Kept(
                    replica
                        .kept_sketch(client)?
                        .unwrap_or(Cow::Borrowed(empty_sums())),
                )
            } else {
                let mut elements = Vec::new();
                for r in replica.walk(client, None) {
                    let r = r?;
                    let (v, rec) = r.location().ids();
                    if selection.contains(v, rec) {
                        elements.push((Element::of(client, &r.shape()), (v, rec)));
                    }
                }
                Part::Built(ClientSketch::from_elements(elements))
            };
            parts.push(part);
        }
        Ok(Self {
            clients: clients.iter().map(|(c, _)| *c).collect(),
            parts,
        })
    }

    /// Elements in the scope.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.sums().len()).sum()
    }

    /// Whether the scope holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The scope's set digest.
    pub fn digest(&self) -> SetDigest {
        let mut d = SetDigest::default();
        for p in &self.parts {
            d.add_digest(p.sums().digest());
        }
        d
    }

    /// Symbols `from .. from + n`.
    pub fn symbols(&self, from: usize, n: usize) -> Vec<Symbol> {
        let mut out = vec![Symbol::default(); n];
        for p in &self.parts {
            p.sums().add_symbols(from, &mut out);
        }
        out
    }

    /// Symbols at `indices` (ascending).
    pub fn symbols_at(&self, indices: &[usize]) -> Vec<Symbol> {
        let mut out = vec![Symbol::default(); indices.len()];
        for p in &self.parts {
            p.sums().add_at(indices, &mut out);
        }
        out
    }

    /// The summary a requester opens with.
    pub fn summary(&self) -> Summary {
        let mut probes = [0u8; PROBES.len()];
        for (p, s) in probes.iter_mut().zip(self.symbols_at(&PROBES)) {
            *p = s.fingerprint();
        }
        Summary {
            len: self.len(),
            first: self.symbols(0, 1)[0],
            probes,
        }
    }

    /// Where the one version with `key` lives, as `replica` (the one this sketch was made of)
    /// locates it: the index of its client in the scope and its location ids. `None` when no
    /// version has the key, or several do. A failed read fails it ([`Error::Replica`]).
    pub fn locate<R: Replica>(
        &self,
        replica: &R,
        key: u64,
    ) -> Result<Option<(usize, VaultId, RecordId)>, Error> {
        let mut found = None;
        for (i, (p, client)) in self.parts.iter().zip(&self.clients).enumerate() {
            let lookup = match p {
                Part::Kept(_) => replica.locate_key(client, key)?,
                Part::Built(s) => s.locate(key),
            };
            match lookup {
                Lookup::Absent => {}
                Lookup::One(v, r) if found.is_none() => found = Some((i, v, r)),
                Lookup::One(..) | Lookup::Ambiguous => return Ok(None),
            }
        }
        Ok(found)
    }

    /// The sum of the element hashes of our versions with `keys` (as `replica`, the one this
    /// sketch was made of, holds them), or `None` when a key names none of them (or several).
    /// A failed read fails it ([`Error::Replica`]).
    pub fn hash_sum<R: Replica>(
        &self,
        replica: &R,
        keys: &[u64],
    ) -> Result<Option<SetDigest>, Error> {
        let mut sum = SetDigest::default();
        for key in keys {
            let Some((i, v, r)) = self.locate(replica, *key)? else {
                return Ok(None);
            };
            let Some(client) = self.clients.get(i) else {
                return Ok(None);
            };
            let Some(rec) = replica.record_at(client, (v, r))? else {
                return Ok(None);
            };
            let element = Element::of(client, &rec.shape());
            if element.key != *key {
                // An index that names a record whose version is not this key's.
                return Ok(None);
            }
            sum.add(&element.hash);
        }
        Ok(Some(sum))
    }
}

fn empty_sums() -> &'static SketchSums {
    static EMPTY: std::sync::OnceLock<SketchSums> = std::sync::OnceLock::new();
    EMPTY.get_or_init(SketchSums::default)
}

/// The size of the symmetric difference that best explains which probe fingerprints match:
/// a probe at index `i` is unchanged by a difference of `d` elements with probability about
/// `(i / (i + 2))^d` (plus 1/256 for a fingerprint collision). `at_least` is a known lower
/// bound (the difference of the set sizes).
pub fn estimate_difference(ours: &[u8; 15], theirs: &[u8; 15], at_least: u64) -> u64 {
    estimate_at(&PROBES, ours, theirs, at_least)
}

/// [`estimate_difference`] over fingerprints of the symbols at `indices`.
pub fn estimate_at(indices: &[usize], ours: &[u8], theirs: &[u8], at_least: u64) -> u64 {
    let mut best = (f64::NEG_INFINITY, at_least.max(1));
    let mut d = at_least.max(1) as f64;
    while d <= (4 * MAX_SYMBOLS) as f64 {
        let mut ll = 0.0;
        for (j, &i) in indices
            .iter()
            .enumerate()
            .take(ours.len().min(theirs.len()))
        {
            let q = i as f64 / (i as f64 + 2.0);
            let zero = q.powf(d);
            let same = zero + (1.0 - zero) / 256.0;
            ll += if ours[j] == theirs[j] {
                same.ln()
            } else {
                (1.0 - same).max(1e-300).ln()
            };
        }
        if ll > best.0 {
            best = (ll, d.round() as u64);
        }
        d = (d * 1.05).max(d + 1.0);
    }
    best.1
}

impl ScopeSketch<'_> {
    /// The symbols to send when the responder asks for `from .. to` at least: with its fine
    /// `probes`, as many as [`batch_size`] makes of the estimated difference.
    pub fn answer_more(&self, from: u32, to: u32, probes: &[u8]) -> Vec<Symbol> {
        let mut end = to as usize;
        if !probes.is_empty() {
            let ours: Vec<u8> = self
                .symbols_at(&FINE_PROBES)
                .iter()
                .map(Symbol::fingerprint)
                .collect();
            let d = estimate_at(&FINE_PROBES, &ours, probes, 1);
            end = end.max(batch_size(d));
        }
        let end = end.min(MAX_SYMBOLS).max(from as usize);
        self.symbols(from as usize, end - from as usize)
    }
}

/// Symbols to send for an estimated difference of `d` (from the fine probes, good to within
/// about 0.7x to 1.5x): the rateless IBLT needs about 1.45 d at d = 100 (1.8 d at worst in a
/// hundred trials), so 2.6 d + 16 decodes in one more round trip nearly always. Small
/// differences get at least [`BATCH_FLOOR`]: two elements may share their first few indices,
/// which 2.6 d + 16 symbols fail to separate about once in 300 at d = 10, and 128 symbols
/// about never (0 in 20 000 trials for d ≤ 10).
pub fn batch_size(d: u64) -> usize {
    batch(d).max(BATCH_FLOOR).min(MAX_SYMBOLS as u64) as usize
}

/// The least batch of symbols a requester sends after the summary.
pub const BATCH_FLOOR: u64 = 128;

/// `floor(13 d / 5) + 16`, uncapped.
fn batch(d: u64) -> u64 {
    (d.saturating_mul(13) / 5).saturating_add(16)
}

/// Whether a responder goes on after the summary failed to decode, given the coarse estimate
/// `d` and the requester's set size, or asks it to fall back to shapes.
pub fn plan(d: u64, requester_len: u64) -> Result<(), crate::FallbackReason> {
    // The coarse estimate is good to a factor of about 5 either way: fall back only when the
    // symbols would cost more even at a fifth of it.
    let want = batch(d / 5).max(BATCH_FLOOR);
    if want > MAX_SYMBOLS as u64 {
        return Err(crate::FallbackReason::TooLarge);
    }
    if want.saturating_mul(SYMBOL_LEN as u64) > requester_len.saturating_mul(SHAPE_LEN as u64) {
        return Err(crate::FallbackReason::ShapesCheaper);
    }
    Ok(())
}

/// The local rule on falling back to sending every shape (version 1's exchange, inside a
/// version 2 or 3 session) on the responder's word: its `Fallback`, or a final check that its
/// own digest made fail. A responder can always claim either, so the requester bounds what it
/// sends: see [`fallback_allowed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeFallback {
    /// Most shapes (versions in our scope) we send on the responder's word; 0 never falls
    /// back but for an empty scope. Default [`Self::DEFAULT_MAX_SHAPES`].
    pub max_shapes: u64,
}

impl ShapeFallback {
    /// 100 000 shapes, 10 MB: a large vault's worth, and a bound on what a hostile responder
    /// can make us send.
    pub const DEFAULT_MAX_SHAPES: u64 = 100_000;
}

impl Default for ShapeFallback {
    fn default() -> Self {
        Self {
            max_shapes: Self::DEFAULT_MAX_SHAPES,
        }
    }
}

/// Whether a requester whose summarized scope holds `our_scope_len` versions may fall back to
/// sending every shape, for the responder's `reason` (`None`: our final check failed). Refused
/// when the scope holds more than `policy.max_shapes` versions, and for "shapes cheaper" when
/// our scope is too large for that to be true: a responder answers it only when our shapes
/// (`our_scope_len` × 100 bytes) cost less than the symbols it would ask for, which are at most
/// [`MAX_SYMBOLS`] × 14 bytes (so for at most 4 587 versions).
pub fn fallback_allowed(
    policy: &ShapeFallback,
    our_scope_len: u64,
    reason: Option<crate::FallbackReason>,
) -> Result<(), crate::Error> {
    let most_symbol_bytes = (MAX_SYMBOLS * SYMBOL_LEN) as u64;
    if reason == Some(crate::FallbackReason::ShapesCheaper)
        && our_scope_len.saturating_mul(SHAPE_LEN as u64) >= most_symbol_bytes
    {
        return Err(crate::Error::FallbackRefused {
            shapes: our_scope_len,
            why: "the peer says shapes are cheaper, which they cannot be for a scope this large",
        });
    }
    if our_scope_len > policy.max_shapes {
        return Err(crate::Error::FallbackRefused {
            shapes: our_scope_len,
            why: "more shapes than the local fallback limit",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_lands_within_a_factor_of_three() {
        use redoubt_vault::sketch::add_to;
        for d in [2u64, 10, 100, 1000, 10_000] {
            let mut ours = [Symbol::default(); 15];
            let theirs = [Symbol::default(); 15];
            for k in 0..d {
                let mut one = vec![Symbol::default(); PROBES[14] + 1];
                add_to(
                    &mut one,
                    0,
                    k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcdef,
                    1,
                );
                for (j, &i) in PROBES.iter().enumerate() {
                    ours[j] = ours[j].plus(one[i]);
                }
            }
            let e = estimate_difference(
                &ours.map(|s| s.fingerprint()),
                &theirs.map(|s| s.fingerprint()),
                0,
            );
            assert!(e * 3 >= d && e <= d * 3, "d = {d}, estimate {e}");
        }
    }

    #[test]
    fn fallback_is_bounded_by_the_policy_and_the_reason() {
        use crate::FallbackReason::{KeyCollision, ShapesCheaper, TooLarge};
        let policy = ShapeFallback::default();
        assert_eq!(policy.max_shapes, 100_000);
        for reason in [
            None,
            Some(TooLarge),
            Some(KeyCollision),
            Some(ShapesCheaper),
        ] {
            assert!(fallback_allowed(&policy, 0, reason).is_ok());
            assert!(
                fallback_allowed(&policy, 4_587, reason).is_ok(),
                "{reason:?}"
            );
        }
        // 4 588 shapes (458 800 bytes) cost more than the most symbols (458 752 bytes).
        assert!(fallback_allowed(&policy, 4_588, Some(ShapesCheaper)).is_err());
        assert!(fallback_allowed(&policy, 100_000, Some(TooLarge)).is_ok());
        for reason in [None, Some(TooLarge), Some(KeyCollision)] {
            assert!(fallback_allowed(&policy, 100_001, reason).is_err());
        }
        let never = ShapeFallback { max_shapes: 0 };
        assert!(fallback_allowed(&never, 0, Some(TooLarge)).is_ok());
        assert!(fallback_allowed(&never, 1, None).is_err());
        // The rule agrees with the responder's plan: every scope it answers "shapes cheaper"
        // passes.
        for len in [0, 1, 17, 100, 1_000, 4_587, 4_588, 10_000] {
            for d in [1, 100, 10_000, 100_000] {
                if plan(d, len) == Err(ShapesCheaper) {
                    assert!(fallback_allowed(&policy, len, Some(ShapesCheaper)).is_ok());
                }
            }
        }
    }

    #[test]
    fn plan_falls_back_when_shapes_are_cheaper_or_the_difference_too_large() {
        assert_eq!(plan(100, 1_000_000), Ok(()));
        assert_eq!(
            plan(100, 20),
            Ok(()),
            "128 symbols cost 1792 bytes, 20 shapes 2000"
        );
        assert_eq!(plan(100, 17), Err(crate::FallbackReason::ShapesCheaper));
        assert_eq!(plan(1000, 10), Err(crate::FallbackReason::ShapesCheaper));
        assert_eq!(
            plan(5 * MAX_SYMBOLS as u64, u64::MAX),
            Err(crate::FallbackReason::TooLarge)
        );
    }
}
