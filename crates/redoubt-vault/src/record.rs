//! Records (a current version, live or a tombstone, and its history) and their shapes.

use crate::{Error, Location, RecordId, SecretValue, Stamp, VaultId, Version};

/// `blake3` key-derivation context of the record hash inside a [`Shape`].
pub const RECORD_HASH_CONTEXT: &str = "redoubt v1 record hash";
/// `blake3` key-derivation context of the state hash of a record that keeps a history.
pub const RECORD_STATE_CONTEXT: &str = "redoubt v2 record state";

/// A record at one location: its current version (a value or a tombstone, stamped by its
/// writer) and the earlier and losing versions it keeps in its history, newest first.
///
/// `Debug` shows the location, stamp, size and history length, never a value.
#[derive(Clone)]
pub struct Record {
    location: Location,
    current: Version,
    history: Vec<Version>,
    hash: [u8; 32],
}

impl Record {
    /// A live, parentless record holding `value`.
    pub fn live(location: Location, stamp: Stamp, value: SecretValue) -> Result<Self, Error> {
        Self::from_parts(location, stamp, Some(value))
    }

    /// A parentless tombstone: the record was deleted at `stamp`.
    pub fn tombstone(location: Location, stamp: Stamp) -> Self {
        let current = Version::from_checked(stamp, None, None);
        Self::of(location, current, Vec::new())
    }

    /// A parentless record from its parts (`None` is a tombstone), checking the value's size.
    pub fn from_parts(
        location: Location,
        stamp: Stamp,
        value: Option<SecretValue>,
    ) -> Result<Self, Error> {
        Ok(Self::of(
            location,
            Version::new(stamp, value, None)?,
            Vec::new(),
        ))
    }

    /// A record from its current version and its history as stored or received, refusing a
    /// history that is not canonical ([`crate::history::check_canonical`]: newest first,
    /// no duplicates, none equal to the current, at most [`crate::MAX_HISTORY`]).
    pub fn from_lineage(
        location: Location,
        current: Version,
        history: Vec<Version>,
    ) -> Result<Self, Error> {
        crate::history::check_canonical(&current, &history)?;
        Ok(Self::of(location, current, history))
    }

    /// The version a local write or deletion makes: `stamp` and `value` (`None` a tombstone)
    /// replacing `previous`'s current version, which becomes its parent and moves to the front
    /// of the history (then pruned, [`crate::history::prune`]).
    pub fn successor(
        location: Location,
        stamp: Stamp,
        value: Option<SecretValue>,
        previous: Option<&Record>,
    ) -> Result<Self, Error> {
        let Some(previous) = previous else {
            return Self::from_parts(location, stamp, value);
        };
        let current = Version::new(stamp, value, Some(*previous.version_hash()))?;
        let mut history = Vec::with_capacity(previous.history.len() + 1);
        history.push(previous.current.clone());
        history.extend(previous.history.iter().cloned());
        let history = crate::history::prune(&current, history);
        Ok(Self::of(location, current, history))
    }

    /// Builds a record from versions already checked; computes the state hash.
    pub(crate) fn of(location: Location, current: Version, history: Vec<Version>) -> Self {
        let hash = state_hash(&current, &history);
        Self {
            location,
            current,
            history,
            hash,
        }
    }

    /// The record's location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The current version.
    pub fn current(&self) -> &Version {
        &self.current
    }

    /// The current version's stamp.
    pub fn stamp(&self) -> &Stamp {
        self.current.stamp()
    }

    /// The current secret value, or `None` for a tombstone.
    pub fn value(&self) -> Option<&SecretValue> {
        self.current.value()
    }

    /// Whether the current version is a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.current.is_tombstone()
    }

    /// The current value's size in bytes (0 for a tombstone).
    pub fn size(&self) -> u32 {
        self.current.size()
    }

    /// The record's state hash, which its [`Shape`] carries: the current version's hash when
    /// the history is empty (so a record without history hashes as in model version 1),
    /// otherwise `blake3` derive-key [`RECORD_STATE_CONTEXT`] over the current version's hash,
    /// the history's length (u32 LE) and each history version's hash, newest first.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The current version's hash.
    pub fn version_hash(&self) -> &[u8; 32] {
        self.current.hash()
    }

    /// The hash of the version the current one replaced, if any.
    pub fn parent(&self) -> Option<&[u8; 32]> {
        self.current.parent()
    }

    /// Earlier and losing versions kept, newest first (by stamp, then hash).
    pub fn history(&self) -> &[Version] {
        &self.history
    }

    /// The version hashed `hash`: the current one or one in the history.
    pub fn version(&self, hash: &[u8; 32]) -> Option<&Version> {
        std::iter::once(&self.current)
            .chain(&self.history)
            .find(|v| v.hash() == hash)
    }

    /// Whether the record carries lineage: a parent or a history.
    pub fn has_lineage(&self) -> bool {
        self.parent().is_some() || !self.history.is_empty()
    }

    /// The same record with no lineage: its current version, parentless (what a format
    /// without lineage carries).
    pub fn without_lineage(&self) -> Self {
        let current = Version::from_checked(*self.stamp(), self.value().cloned(), None);
        Self::of(self.location.clone(), current, Vec::new())
    }

    /// The greatest stamp of any version held (the current and the history): the one merge
    /// bounds check and the clock observes.
    pub fn newest_stamp(&self) -> &Stamp {
        self.history
            .iter()
            .map(Version::stamp)
            .fold(self.stamp(), |a, b| a.max(b))
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

    /// The same versions moved to another vault path (for mapped syncs).
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
            .field("stamp", self.stamp())
            .field("tombstone", &self.is_tombstone())
            .field("size", &self.size())
            .field("history", &self.history.len())
            .finish_non_exhaustive()
    }
}

/// The state hash of a current version and its history (see [`Record::hash`]).
fn state_hash(current: &Version, history: &[Version]) -> [u8; 32] {
    if history.is_empty() {
        return *current.hash();
    }
    let mut h = blake3::Hasher::new_derive_key(RECORD_STATE_CONTEXT);
    h.update(current.hash());
    h.update(
        &u32::try_from(history.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for v in history {
        h.update(v.hash());
    }
    *h.finalize().as_bytes()
}

/// Computes the record hash: `blake3` in derive-key mode with [`RECORD_HASH_CONTEXT`] over
/// `wall_ms (u64 LE) || counter (u32 LE) || node (16 bytes) || flag (u8: 0 live, 1 tombstone)
/// || value length (u32 LE) || value`. A tombstone has length 0 and no value bytes. It is the
/// hash of a parentless [`Version`].
pub fn record_hash(stamp: &Stamp, value: Option<&SecretValue>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(RECORD_HASH_CONTEXT);
    hash_fields(&mut hasher, stamp, value);
    *hasher.finalize().as_bytes()
}

/// Feeds a version's stamp, flag and value into `hasher`, as [`record_hash`] specifies.
pub(crate) fn hash_fields(hasher: &mut blake3::Hasher, stamp: &Stamp, value: Option<&SecretValue>) {
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
    /// [`Record::hash`], the state hash of the record.
    pub hash: [u8; 32],
}

/// Encoded bytes a record costs in a saved vault besides its paths and value: two path
/// lengths, the stamp, the flag and the value length (`docs/snapshot-format.md`).
const STORED_RECORD_OVERHEAD: u64 = 2 + 2 + 8 + 4 + 16 + 1 + 4;

/// What a record takes in a save, as the merge quota counts it: its paths, its current value
/// and every version its history keeps (each its value and the lineage codec's fixed bytes).
pub fn stored_len(record: &Record) -> u64 {
    let loc = record.location();
    let history: u64 = record
        .history()
        .iter()
        .map(|v| crate::codec::lineage::HISTORY_VERSION_OVERHEAD as u64 + u64::from(v.size()))
        .sum();
    STORED_RECORD_OVERHEAD
        + loc.vault_path().len() as u64
        + loc.record_path().len() as u64
        + u64::from(record.size())
        + history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_VALUE_LEN, NodeId};

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
