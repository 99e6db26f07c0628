//! Records (a value or a tombstone, with its stamp) and their shapes.

use crate::{Error, Location, RecordId, SecretValue, Stamp, VaultId, limits::MAX_VALUE_LEN};

/// `blake3` key-derivation context of the record hash inside a [`Shape`].
pub const RECORD_HASH_CONTEXT: &str = "redoubt v1 record hash";

/// One version of one record: a secret value or a tombstone, stamped by its writer.
///
/// `Debug` shows the location, stamp and size, never the value.
#[derive(Clone)]
pub struct Record {
    location: Location,
    stamp: Stamp,
    value: Option<SecretValue>,
    hash: [u8; 32],
}

impl Record {
    /// A live record holding `value`.
    pub fn live(location: Location, stamp: Stamp, value: SecretValue) -> Result<Self, Error> {
        Self::from_parts(location, stamp, Some(value))
    }

    /// A tombstone: the record was deleted at `stamp`.
    pub fn tombstone(location: Location, stamp: Stamp) -> Self {
        let hash = record_hash(&stamp, None);
        Self {
            location,
            stamp,
            value: None,
            hash,
        }
    }

    /// A record from its parts (`None` is a tombstone), checking the value's size.
    pub fn from_parts(
        location: Location,
        stamp: Stamp,
        value: Option<SecretValue>,
    ) -> Result<Self, Error> {
        if let Some(v) = &value
            && v.len() > MAX_VALUE_LEN
        {
            return Err(Error::ValueTooLarge { len: v.len() });
        }
        let hash = record_hash(&stamp, value.as_ref());
        Ok(Self {
            location,
            stamp,
            value,
            hash,
        })
    }

    /// The record's location.
    pub fn location(&self) -> &Location {
        &self.location
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

    /// The 32-byte hash over stamp, tombstone flag and value.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// This record's shape.
    pub fn shape(&self) -> Shape {
        let (vault, record) = self.location.ids();
        Shape {
            vault,
            record,
            size: self.size(),
            hash: self.hash,
        }
    }

    /// The same version moved to another vault path (for mapped syncs).
    pub(crate) fn moved_to_vault(&self, vault_path: &[u8]) -> Self {
        let mut moved = self.clone();
        moved.location =
            Location::from_checked(vault_path.to_vec(), self.location.record_path().to_vec());
        moved
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("location", &self.location)
            .field("stamp", &self.stamp)
            .field("tombstone", &self.is_tombstone())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// Computes the record hash: `blake3` in derive-key mode with [`RECORD_HASH_CONTEXT`] over
/// `wall_ms (u64 LE) || counter (u32 LE) || node (16 bytes) || flag (u8: 0 live, 1 tombstone)
/// || value length (u32 LE) || value`. A tombstone has length 0 and no value bytes.
pub fn record_hash(stamp: &Stamp, value: Option<&SecretValue>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(RECORD_HASH_CONTEXT);
    hasher.update(&stamp.wall_ms.to_le_bytes());
    hasher.update(&stamp.counter.to_le_bytes());
    hasher.update(stamp.node.as_bytes());
    match value {
        Some(v) => {
            hasher.update(&[0]);
            hasher.update(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
            hasher.update(v.expose());
        }
        None => {
            hasher.update(&[1]);
            hasher.update(&0u32.to_le_bytes());
        }
    }
    *hasher.finalize().as_bytes()
}

/// A record's summary for reconciliation. Two replicas hold the same version of a record
/// exactly when their shapes are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape {
    /// Vault id of the location.
    pub vault: VaultId,
    /// Record id of the location.
    pub record: RecordId,
    /// Value size in bytes (0 for a tombstone).
    pub size: u32,
    /// [`record_hash`] of the version.
    pub hash: [u8; 32],
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
    fn hash_covers_stamp_flag_and_value() {
        let v = SecretValue::new(b"x".to_vec());
        let base = record_hash(&stamp(1), Some(&v));
        assert_ne!(base, record_hash(&stamp(2), Some(&v)));
        assert_ne!(
            base,
            record_hash(&stamp(1), Some(&SecretValue::new(b"y".to_vec())))
        );
        assert_ne!(
            record_hash(&stamp(1), None),
            record_hash(&stamp(1), Some(&SecretValue::new(Vec::new())))
        );
    }

    #[test]
    fn oversized_values_are_refused() {
        let loc = Location::new(b"v".to_vec(), b"r".to_vec()).unwrap();
        let big = SecretValue::new(vec![0; MAX_VALUE_LEN + 1]);
        assert!(matches!(
            Record::live(loc, stamp(1), big),
            Err(Error::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let loc = Location::new(b"v".to_vec(), b"r".to_vec()).unwrap();
        let r = Record::live(loc, stamp(1), SecretValue::new(b"canary-7f3a".to_vec())).unwrap();
        assert!(!format!("{r:?}").contains("canary"));
    }
}
