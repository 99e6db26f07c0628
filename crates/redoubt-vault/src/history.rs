//! Record history: the versions a record keeps besides its current one, how they are bounded
//! and joined, and what they say (which version descends from which, why each was replaced).
//!
//! A history is **canonical**: newest first by (stamp, hash), no two versions with one hash,
//! none equal to the current version, none older than [`HISTORY_RETENTION_MS`] before the
//! current version's wall clock, at most [`MAX_HISTORY`] versions holding at most
//! [`MAX_HISTORY_VALUE_BYTES`] of values. [`prune`] makes any set of
//! versions canonical and is a pure function of the versions (never of a local clock), so
//! joining histories is a join of sets followed by the same pruning on every replica: the
//! merge stays a state-based CRDT, histories included.

use crate::{Error, Record, Version};

/// The most versions a record keeps in its history.
pub const MAX_HISTORY: usize = 8;
/// The most value bytes a record's history holds in all (so a record with its history still
/// fits one sync frame): the newest versions that fit are kept.
pub const MAX_HISTORY_VALUE_BYTES: usize = 1024 * 1024;
/// How long a replaced version stays in a history: 30 days before the current version's
/// wall-clock ms (the current version's, never the local clock's).
pub const HISTORY_RETENTION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Why a version in a record's history is no longer current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaced {
    /// A later version (of the current's lineage) replaced it.
    Overwritten,
    /// It is an ancestor of the current version, which is a tombstone: the record was
    /// deleted after it.
    Deleted,
    /// It was written concurrently with the current lineage and lost the merge.
    LostConflict,
}

impl Replaced {
    /// A short word for listings: `overwritten`, `deleted` or `lost-conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overwritten => "overwritten",
            Self::Deleted => "deleted",
            Self::LostConflict => "lost-conflict",
        }
    }
}

/// Makes `versions` the canonical history of `current`: drops duplicates, the current version
/// itself, copies of a kept version stripped of their lineage
/// ([`Version::is_stripped_copy_of`]) and versions older than the retention window, sorts
/// newest first and keeps the newest: at most [`MAX_HISTORY`], holding at most
/// [`MAX_HISTORY_VALUE_BYTES`] of values (the first that would pass the budget and every
/// older one are dropped).
pub fn prune(current: &Version, mut versions: Vec<Version>) -> Vec<Version> {
    let oldest = current.stamp().wall_ms.saturating_sub(HISTORY_RETENTION_MS);
    let stripped: Vec<bool> = versions
        .iter()
        .map(|v| {
            std::iter::once(current)
                .chain(versions.iter())
                .any(|w| v.is_stripped_copy_of(w))
        })
        .collect();
    let mut keep = stripped.iter().map(|s| !s);
    versions.retain(|v| {
        keep.next().unwrap_or(false) && v.hash() != current.hash() && v.stamp().wall_ms >= oldest
    });
    versions.sort_by(|a, b| b.key().cmp(&a.key()));
    versions.dedup_by(|a, b| a.hash() == b.hash());
    versions.truncate(MAX_HISTORY);
    let mut bytes = 0usize;
    let within = versions
        .iter()
        .take_while(|v| {
            bytes = bytes.saturating_add(v.size() as usize);
            bytes <= MAX_HISTORY_VALUE_BYTES
        })
        .count();
    versions.truncate(within);
    versions
}

/// Refuses a history that [`prune`] would change (so a record has one canonical form).
pub fn check_canonical(current: &Version, history: &[Version]) -> Result<(), Error> {
    if history.len() > MAX_HISTORY {
        return Err(Error::Malformed("history longer than its cap"));
    }
    let pruned = prune(current, history.to_vec());
    if pruned.len() != history.len()
        || pruned
            .iter()
            .zip(history)
            .any(|(a, b)| a.hash() != b.hash())
    {
        return Err(Error::Malformed(
            "history not canonical: unsorted, a version twice, the current one, or past retention",
        ));
    }
    Ok(())
}

/// The canonical union of both records' histories, plus `loser` (the current version that
/// lost, if any), as the history of `winner`'s current version.
pub fn join(winner: &Record, other: &Record, loser: Option<&Version>) -> Vec<Version> {
    let mut all = Vec::with_capacity(winner.history().len() + other.history().len() + 1);
    all.extend(winner.history().iter().cloned());
    all.extend(other.history().iter().cloned());
    all.extend(loser.cloned());
    prune(winner.current(), all)
}

/// Whether `record`'s current version descends from the version hashed `ancestor`: its parent
/// chain, followed through the versions its history holds, reaches it. A chain whose middle
/// was pruned away does not reach it (the answer is then `false`, the safe side: a conflict).
pub fn descends(record: &Record, ancestor: &[u8; 32]) -> bool {
    let mut next = record.parent();
    // Each step moves to an older version of a bounded history: at most MAX_HISTORY + 1 steps.
    for _ in 0..=record.history().len() {
        let Some(parent) = next else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        next = record
            .history()
            .iter()
            .find(|v| v.hash() == parent)
            .and_then(Version::parent);
    }
    false
}

/// Whether the history version `version` is an ancestor of `record`'s current version.
fn is_ancestor(record: &Record, version: &Version) -> bool {
    descends(record, version.hash())
}

/// Why `version`, held in `record`'s history, was replaced.
pub fn why_replaced(record: &Record, version: &Version) -> Replaced {
    if !is_ancestor(record, version) {
        Replaced::LostConflict
    } else if record.is_tombstone() {
        Replaced::Deleted
    } else {
        Replaced::Overwritten
    }
}

/// The version of `record` (current or in its history) whose hash starts with the hex prefix
/// `prefix` (at least 8 hex digits, any case). `Ok(None)` when none does; an error when the
/// prefix is too short, not hex, or names more than one version.
pub fn find_version<'a>(record: &'a Record, prefix: &str) -> Result<Option<&'a Version>, Error> {
    if prefix.len() < 8 || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Malformed(
            "a version id is 8 to 64 hex digits (as `history` lists it)",
        ));
    }
    let prefix = prefix.to_ascii_lowercase();
    let mut found = None;
    for v in std::iter::once(record.current()).chain(record.history()) {
        if crate::hex(v.hash()).starts_with(&prefix) {
            if found.is_some() {
                return Err(Error::Malformed(
                    "the version id names more than one version: give more digits",
                ));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, NodeId, SecretValue, Stamp};

    fn stamp(wall_ms: u64, node: u8) -> Stamp {
        Stamp {
            wall_ms,
            counter: 0,
            node: NodeId::from_bytes([node; 16]),
        }
    }

    fn loc() -> Location {
        Location::new("v", "r").unwrap()
    }

    fn write(prev: Option<&Record>, wall_ms: u64, node: u8, value: &[u8]) -> Record {
        let value = Some(SecretValue::new(value.to_vec()));
        Record::successor(loc(), stamp(wall_ms, node), value, prev).unwrap()
    }

    #[test]
    fn successors_chain_and_history_is_bounded() {
        let mut r = write(None, 1, 1, b"0");
        let first = *r.version_hash();
        for k in 2..20 {
            let next = write(Some(&r), k, 1, b"x");
            assert_eq!(next.parent(), Some(r.version_hash()));
            assert!(descends(&next, r.version_hash()));
            r = next;
        }
        assert_eq!(r.history().len(), MAX_HISTORY);
        assert!(check_canonical(r.current(), r.history()).is_ok());
        assert!(!descends(&r, &first), "pruned past the oldest kept");
        let deleted = Record::successor(loc(), stamp(30, 1), None, Some(&r)).unwrap();
        assert_eq!(
            why_replaced(&deleted, &deleted.history()[0]),
            Replaced::Deleted
        );
        assert_eq!(why_replaced(&r, &r.history()[0]), Replaced::Overwritten);
    }

    #[test]
    fn the_history_keeps_the_newest_versions_within_its_byte_budget() {
        let big = vec![7; MAX_HISTORY_VALUE_BYTES / 2];
        let mut r = write(None, 1, 1, &big);
        for k in 2..6 {
            r = write(Some(&r), k, 1, &big);
        }
        assert_eq!(r.history().len(), 2, "two halves fill the budget");
        assert_eq!(r.history()[0].stamp().wall_ms, 4);
        let small = write(Some(&r), 9, 1, b"s");
        assert_eq!(small.history().len(), 2);
        assert!(check_canonical(small.current(), small.history()).is_ok());
    }

    #[test]
    fn retention_is_measured_from_the_current_version() {
        let old = write(None, 1, 1, b"old");
        let late = write(Some(&old), 2 + HISTORY_RETENTION_MS, 1, b"late");
        assert!(late.history().is_empty(), "past retention");
        let kept = write(Some(&old), 1 + HISTORY_RETENTION_MS, 1, b"kept");
        assert_eq!(kept.history().len(), 1);
    }

    #[test]
    fn non_canonical_histories_are_refused() {
        let a = write(None, 1, 1, b"a");
        let b = write(Some(&a), 2, 1, b"b");
        let c = write(Some(&b), 3, 1, b"c");
        let h = c.history().to_vec();
        assert!(Record::from_lineage(loc(), c.current().clone(), h.clone()).is_ok());
        let reversed: Vec<_> = h.iter().rev().cloned().collect();
        assert!(Record::from_lineage(loc(), c.current().clone(), reversed).is_err());
        let twice = vec![h[0].clone(), h[0].clone()];
        assert!(Record::from_lineage(loc(), c.current().clone(), twice).is_err());
        let itself = vec![c.current().clone()];
        assert!(Record::from_lineage(loc(), c.current().clone(), itself).is_err());
    }

    #[test]
    fn a_copy_stripped_of_its_lineage_is_the_same_write() {
        let a = write(None, 1, 1, b"a");
        let b = write(Some(&a), 2, 1, b"b");
        let stripped = b.without_lineage();
        assert!(stripped.current().is_stripped_copy_of(b.current()));
        // Merged either way, the original with its lineage stays, the copy is not kept.
        let ours = crate::merge_one(crate::MergePolicy::Newest, Some(&b), &stripped);
        assert!(!ours.taken && ours.store.is_none() && ours.conflict.is_none());
        let theirs = crate::merge_one(crate::MergePolicy::Newest, Some(&stripped), &b);
        let stored = theirs.store.unwrap();
        assert!(theirs.taken && theirs.conflict.is_none());
        assert_eq!(stored.hash(), b.hash());
    }

    #[test]
    fn versions_are_found_by_prefix() {
        let a = write(None, 1, 1, b"a");
        let b = write(Some(&a), 2, 1, b"b");
        let id = crate::hex(a.version_hash());
        assert_eq!(
            find_version(&b, &id[..8]).unwrap().unwrap().hash(),
            a.version_hash()
        );
        assert_eq!(
            find_version(&b, &id.to_uppercase()[..10])
                .unwrap()
                .unwrap()
                .hash(),
            a.version_hash()
        );
        assert!(find_version(&b, "abc").is_err());
        assert!(find_version(&b, "zzzzzzzz").is_err());
        let absent = if id.starts_with('0') {
            "ffffffff"
        } else {
            "00000000"
        };
        let other = crate::hex(b.version_hash());
        if !other.starts_with(absent) {
            assert!(find_version(&b, absent).unwrap().is_none());
        }
    }
}
