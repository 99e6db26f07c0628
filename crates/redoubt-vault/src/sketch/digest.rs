//! The digest of a whole set: the sum of its elements' hashes modulo 2^256, so that adding or
//! removing one element updates it in constant time and the digest of a union of disjoint sets
//! is the sum of theirs.

/// A set digest: 256-bit little-endian sum of element hashes, wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetDigest([u64; 4]);

impl SetDigest {
    /// From its 32-byte little-endian encoding.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(b);
        }
        Self(limbs)
    }

    /// Its 32-byte little-endian encoding.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// Adds one element's hash.
    pub fn add(&mut self, hash: &[u8; 32]) {
        self.add_digest(Self::from_bytes(*hash));
    }

    /// Removes one element's hash.
    pub fn sub(&mut self, hash: &[u8; 32]) {
        self.sub_digest(Self::from_bytes(*hash));
    }

    /// Adds a whole set's digest (a disjoint union).
    pub fn add_digest(&mut self, other: Self) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
    }

    /// Removes a whole set's digest.
    pub fn sub_digest(&mut self, other: Self) {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (s1, c1) = a.overflowing_sub(b);
            let (s2, c2) = s1.overflowing_sub(u64::from(borrow));
            *a = s2;
            borrow = c1 || c2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_cross_limbs_and_wrap_at_2_256() {
        let mut d = SetDigest::default();
        let mut max = [0xff; 32];
        d.add(&max);
        let mut one = [0u8; 32];
        one[0] = 1;
        d.add(&one);
        assert_eq!(d, SetDigest::default(), "2^256 - 1 + 1 wraps to 0");
        d.sub(&one);
        assert_eq!(d.to_bytes(), max);
        max[31] = 0x7f;
        let mut e = SetDigest::default();
        e.add(&max);
        e.add(&one);
        let mut want = [0u8; 32];
        want[31] = 0x80;
        assert_eq!(e.to_bytes(), want, "carry runs through every limb");
    }
}
