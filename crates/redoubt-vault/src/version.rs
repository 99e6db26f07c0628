//! One version of a record: a value or a tombstone, its stamp, and the version it replaced.

use crate::{Error, SecretValue, Stamp, limits::MAX_VALUE_LEN, record::record_hash};

/// `blake3` key-derivation context of the hash of a version that names its parent (model
/// version 2). A parentless version hashes exactly as a version 1 record
/// ([`crate::RECORD_HASH_CONTEXT`]), so every version 1 hash stays what it was.
pub const VERSION_HASH_CONTEXT: &str = "redoubt v2 version hash";

/// One version of a record: a secret value or a tombstone, stamped by its writer, naming the
/// version it replaced (its parent) when it replaced one.
///
/// `Debug` shows the stamp, size and parent, never the value.
#[derive(Clone)]
pub struct Version {
    stamp: Stamp,
    value: Option<SecretValue>,
    parent: Option<[u8; 32]>,
    hash: [u8; 32],
}

impl Version {
    /// A version from its parts (`None` value is a tombstone), checking the value's size.
    pub fn new(
        stamp: Stamp,
        value: Option<SecretValue>,
        parent: Option<[u8; 32]>,
    ) -> Result<Self, Error> {
        if let Some(v) = &value
            && v.len() > MAX_VALUE_LEN
        {
            return Err(Error::ValueTooLarge { len: v.len() });
        }
        let hash = version_hash(&stamp, value.as_ref(), parent.as_ref());
        Ok(Self {
            stamp,
            value,
            parent,
            hash,
        })
    }

    /// A version whose value is already known to be within its cap (taken from another
    /// version, or none).
    pub(crate) fn from_checked(
        stamp: Stamp,
        value: Option<SecretValue>,
        parent: Option<[u8; 32]>,
    ) -> Self {
        let hash = version_hash(&stamp, value.as_ref(), parent.as_ref());
        Self {
            stamp,
            value,
            parent,
            hash,
        }
    }

    /// The version's stamp.
    pub fn stamp(&self) -> &Stamp {
        &self.stamp
    }

    /// The secret value, or `None` for a tombstone.
    pub fn value(&self) -> Option<&SecretValue> {
        self.value.as_ref()
    }

    /// Whether this version is a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Value size in bytes (0 for a tombstone).
    pub fn size(&self) -> u32 {
        // Values are capped at MAX_VALUE_LEN (1 MiB) on construction, which fits in u32.
        self.value
            .as_ref()
            .map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX))
    }

    /// The hash of the version this one replaced, if it replaced one.
    pub fn parent(&self) -> Option<&[u8; 32]> {
        self.parent.as_ref()
    }

    /// The version's hash ([`version_hash`]).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// Whether both versions hold the same content: both tombstones, or equal values. Equal
    /// content written on two sides is not a conflict.
    pub fn same_content(&self, other: &Self) -> bool {
        match (&self.value, &other.value) {
            (None, None) => true,
            (Some(a), Some(b)) => ct_eq(a.expose(), b.expose()),
            _ => false,
        }
    }

    /// The order versions are chosen and listed by: stamp, then whether it names a parent
    /// (so a copy stripped of its lineage by a format without it orders below the original),
    /// then hash.
    pub(crate) fn key(&self) -> (&Stamp, bool, &[u8; 32]) {
        (&self.stamp, self.parent.is_some(), &self.hash)
    }

    /// Whether this version is `other` stripped of its parent by a format that carries no
    /// lineage (a snapshot, a version 1 event): parentless, same stamp and content, while
    /// `other` names a parent. Such a copy is the same write and is never kept beside it.
    pub fn is_stripped_copy_of(&self, other: &Self) -> bool {
        self.parent.is_none()
            && other.parent.is_some()
            && self.stamp == other.stamp
            && self.same_content(other)
    }
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("stamp", &self.stamp)
            .field("tombstone", &self.is_tombstone())
            .field("size", &self.size())
            .field("parent", &self.parent.as_ref().map(|p| crate::hex(&p[..4])))
            .finish_non_exhaustive()
    }
}

/// Compares secret bytes without an early exit on the first difference.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Computes a version's hash. Without a parent it is [`record_hash`] (model version 1, same
/// bytes); with one, `blake3` in derive-key mode with [`VERSION_HASH_CONTEXT`] over the same
/// fields as [`record_hash`] followed by the parent's 32-byte hash.
pub fn version_hash(
    stamp: &Stamp,
    value: Option<&SecretValue>,
    parent: Option<&[u8; 32]>,
) -> [u8; 32] {
    let Some(parent) = parent else {
        return record_hash(stamp, value);
    };
    let mut hasher = blake3::Hasher::new_derive_key(VERSION_HASH_CONTEXT);
    crate::record::hash_fields(&mut hasher, stamp, value);
    hasher.update(parent);
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn stamp(wall_ms: u64) -> Stamp {
        Stamp {
            wall_ms,
            counter: 0,
            node: NodeId::from_bytes([3; 16]),
        }
    }

    #[test]
    fn a_parentless_version_hashes_as_a_version_1_record() {
        let v = SecretValue::new(b"x".to_vec());
        let plain = Version::new(stamp(1), Some(v.clone()), None).unwrap();
        assert_eq!(plain.hash(), &record_hash(&stamp(1), Some(&v)));
        let child = Version::new(stamp(2), Some(v.clone()), Some(*plain.hash())).unwrap();
        let other = Version::new(stamp(2), Some(v.clone()), Some([9; 32])).unwrap();
        assert_ne!(child.hash(), &record_hash(&stamp(2), Some(&v)));
        assert_ne!(child.hash(), other.hash(), "the parent is hashed");
        assert_eq!(child.parent(), Some(plain.hash()));
    }

    #[test]
    fn same_content_compares_values_and_tombstones() {
        let v = |b: &[u8]| Some(SecretValue::new(b.to_vec()));
        let a = Version::new(stamp(1), v(b"a"), None).unwrap();
        let a2 = Version::new(stamp(5), v(b"a"), Some([1; 32])).unwrap();
        let b = Version::new(stamp(1), v(b"b"), None).unwrap();
        let t = Version::new(stamp(1), None, None).unwrap();
        let e = Version::new(stamp(1), v(b""), None).unwrap();
        assert!(a.same_content(&a2) && !a.same_content(&b));
        assert!(t.same_content(&t) && !t.same_content(&e));
        let canary = Version::new(stamp(1), v(b"canary-91c2"), None).unwrap();
        assert!(!format!("{canary:?}").contains("canary"));
    }
}
