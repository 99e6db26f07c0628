//! Merge policies, merge reports, and local sync from another instance.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    ClientId, Error, Instance, Location, Record, RecordId, Selection, Stamp, VaultId,
    id::check_path, instance::ClientRecords,
};

/// What to do when both sides hold different versions of a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergePolicy {
    /// The greater stamp wins, ties broken by the greater hash; tombstones win like writes.
    /// Convergent: merging is commutative, associative and idempotent.
    #[default]
    Newest,
    /// Never overwrite a version we hold (Stronghold's `KeepOld`).
    KeepOld,
    /// Always take the incoming version (Stronghold's `Replace`).
    Replace,
}

/// What a merge did, counted per incoming record.
///
/// `added`, `updated`, `deleted` and `unchanged` partition the incoming records;
/// `conflicts_resolved` counts, across them, locations where both sides held different versions
/// and the policy chose one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeReport {
    /// A live incoming version taken where we held no live record.
    pub added: u64,
    /// A live incoming version replaced our live version.
    pub updated: u64,
    /// An incoming tombstone was taken (a live record removed, or a deletion learned).
    pub deleted: u64,
    /// The incoming version was not taken: we held the same one, or the policy kept ours.
    pub unchanged: u64,
    /// Both sides held different versions of the location; the policy decided.
    pub conflicts_resolved: u64,
}

impl MergeReport {
    /// Adds another report's counts to this one (merges done one record at a time).
    pub fn add(&mut self, other: &Self) {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.conflicts_resolved += other.conflicts_resolved;
    }

    /// Whether the merge changed local state.
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.deleted > 0
    }
}

impl std::fmt::Display for MergeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "added {}, updated {}, deleted {}, unchanged {}, conflicts resolved {}",
            self.added, self.updated, self.deleted, self.unchanged, self.conflicts_resolved
        )
    }
}

/// Whether `incoming` should replace `local` under `policy`.
pub fn should_take(policy: MergePolicy, local: Option<&Record>, incoming: &Record) -> bool {
    let Some(local) = local else {
        return true;
    };
    if local.hash() == incoming.hash() {
        return false;
    }
    match policy {
        MergePolicy::Newest => (incoming.stamp(), incoming.hash()) > (local.stamp(), local.hash()),
        MergePolicy::KeepOld => false,
        MergePolicy::Replace => true,
    }
}

/// Counts one incoming record's outcome into `report`.
fn count(report: &mut MergeReport, local: Option<&Record>, incoming: &Record, taken: bool) {
    if local.is_some_and(|l| l.hash() != incoming.hash()) {
        report.conflicts_resolved += 1;
    }
    let local_live = local.is_some_and(|l| !l.is_tombstone());
    match (taken, incoming.is_tombstone(), local_live) {
        (false, _, _) => report.unchanged += 1,
        (true, true, _) => report.deleted += 1,
        (true, false, false) => report.added += 1,
        (true, false, true) => report.updated += 1,
    }
}

impl Instance {
    /// Merges one incoming version into `client` under `policy`, returning what it did.
    pub fn merge_record(
        &mut self,
        client: &[u8],
        incoming: Record,
        policy: MergePolicy,
    ) -> Result<MergeReport, Error> {
        check_path("client path", client)?;
        let client_id = ClientId::from_path(client);
        let ids = incoming.location().ids();
        let mut report = MergeReport::default();
        let local = self.record(&client_id, ids);
        let take = should_take(policy, local, &incoming);
        count(&mut report, local, &incoming, take);
        self.observe(incoming.stamp());
        if take {
            self.put_with_ids(client_id, client, ids, incoming);
        }
        Ok(report)
    }

    /// Pulls from `source` into `self` as `config` says (local sync).
    ///
    /// Fails before changing anything if a selected client is absent from the source.
    pub fn sync_from(
        &mut self,
        source: &Instance,
        config: &SyncConfig,
    ) -> Result<MergeReport, Error> {
        if let Some(wanted) = &config.clients {
            for path in wanted {
                if source.client_records(&ClientId::from_path(path)).is_none() {
                    return Err(Error::ClientNotFound {
                        client: String::from_utf8_lossy(path).into_owned(),
                    });
                }
            }
        }
        let mut report = MergeReport::default();
        for (source_id, source_path) in source.clients() {
            if config
                .clients
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(source_path))
            {
                continue;
            }
            let Some(incoming) = source.client_records(source_id) else {
                continue;
            };
            let target_path = config
                .map_clients
                .get(source_path)
                .map_or(source_path, Vec::as_slice)
                .to_vec();
            let target_id = ClientId::from_path(&target_path);
            let (taken, newest) = plan(
                self.client_records(&target_id),
                incoming,
                config,
                &mut report,
            );
            if let Some(stamp) = newest {
                self.observe(&stamp);
            }
            for (ids, version) in taken {
                self.put_with_ids(target_id, &target_path, ids, version);
            }
        }
        Ok(report)
    }
}

/// A version to store, with the location ids it goes under.
type Taken = ((VaultId, RecordId), Record);

/// Decides, for every selected incoming version of one client, whether to take it; counts the
/// outcomes. Changes nothing: the caller applies the versions it returns and moves its clock
/// past the greatest stamp considered.
fn plan(
    ours: Option<&ClientRecords>,
    incoming: &ClientRecords,
    config: &SyncConfig,
    report: &mut MergeReport,
) -> (Vec<Taken>, Option<Stamp>) {
    let mut taken = Vec::new();
    let mut newest: Option<Stamp> = None;
    let selected = incoming
        .records
        .iter()
        .filter(|((v, r), _)| config.selection.contains(*v, *r))
        .inspect(|(_, version)| newest = newest.max(Some(*version.stamp())));
    if config.map_vaults.is_empty() {
        // Both maps are ordered by (vault id, record id): walk them in step, no lookups.
        let mut ours = ours.into_iter().flat_map(|c| c.records.iter()).peekable();
        for (ids, version) in selected {
            while ours.next_if(|(k, _)| *k < ids).is_some() {}
            let local = ours.next_if(|(k, _)| *k == ids).map(|(_, l)| l);
            let take = should_take(config.policy, local, version);
            count(report, local, version, take);
            if take {
                taken.push((*ids, version.clone()));
            }
        }
    } else {
        // Two source vaults may map onto one target vault: plan into a map so a second incoming
        // version of a target location is judged against the first, by the same policy.
        let mut planned: BTreeMap<(VaultId, RecordId), Record> = BTreeMap::new();
        for (&(vault, record), version) in selected {
            let mapped = config.map_vaults.get(&vault);
            let ids = (mapped.map_or(vault, |(to, _)| *to), record);
            let local = planned
                .get(&ids)
                .or_else(|| ours.and_then(|c| c.records.get(&ids)));
            let take = should_take(config.policy, local, version);
            count(report, local, version, take);
            if take {
                // Copy (and move) only what is taken: most versions of a re-sync are not.
                let copy = match mapped {
                    Some((_, to_path)) => version.moved_to_vault(to_path),
                    None => version.clone(),
                };
                planned.insert(ids, copy);
            }
        }
        taken.extend(planned);
    }
    (taken, newest)
}

/// What a local sync covers and how it merges: full or partial, with optional path mappings.
///
/// ```
/// use redoubt_vault::{Instance, Location, MergePolicy, NodeId, SecretValue, SyncConfig};
/// let loc = Location::new("wallet", "seed")?;
/// let mut phone = Instance::new(NodeId::from_bytes([1; 16]));
/// let mut desktop = Instance::new(NodeId::from_bytes([2; 16]));
/// desktop.write(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?;
/// let config = SyncConfig::full().client(b"alice")?.vault(b"wallet")?;
/// let report = phone.sync_from(&desktop, &config)?;
/// assert_eq!(report.added, 1);
/// assert!(phone.read(b"alice", &loc).is_some());
/// # Ok::<(), redoubt_vault::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SyncConfig {
    policy: MergePolicy,
    clients: Option<BTreeSet<Vec<u8>>>,
    selection: Selection,
    map_clients: BTreeMap<Vec<u8>, Vec<u8>>,
    map_vaults: BTreeMap<VaultId, (VaultId, Vec<u8>)>,
}

impl SyncConfig {
    /// Every client, every record, policy [`MergePolicy::Newest`]. Into a fresh instance this
    /// is an import.
    pub fn full() -> Self {
        Self::default()
    }

    /// Sets the merge policy.
    pub fn policy(mut self, policy: MergePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Limits the sync to this source client (call again to add more).
    pub fn client(mut self, path: &[u8]) -> Result<Self, Error> {
        check_path("client path", path)?;
        self.clients.get_or_insert_default().insert(path.to_vec());
        Ok(self)
    }

    /// Limits the sync, inside each selected client, to this source vault (adds to the selection).
    pub fn vault(mut self, path: &[u8]) -> Result<Self, Error> {
        self.selection = self.selection.with_vault(path)?;
        Ok(self)
    }

    /// Limits the sync, inside each selected client, to this source record (adds to the
    /// selection).
    pub fn record(mut self, location: &Location) -> Self {
        self.selection = self.selection.with_record(location);
        self
    }

    /// Stores the source client `from` under the client path `to`.
    pub fn map_client(mut self, from: &[u8], to: &[u8]) -> Result<Self, Error> {
        check_path("client path", from)?;
        check_path("client path", to)?;
        self.map_clients.insert(from.to_vec(), to.to_vec());
        Ok(self)
    }

    /// Stores records of the source vault `from` under the vault path `to`.
    pub fn map_vault(mut self, from: &[u8], to: &[u8]) -> Result<Self, Error> {
        check_path("vault path", from)?;
        check_path("vault path", to)?;
        self.map_vaults.insert(
            VaultId::from_path(from),
            (VaultId::from_path(to), to.to_vec()),
        );
        Ok(self)
    }

    /// The merge policy.
    pub fn merge_policy(&self) -> MergePolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeId, SecretValue};

    fn version(wall_ms: u64, node: u8, value: Option<&[u8]>) -> Record {
        let loc = Location::new("v", "r").unwrap();
        let stamp = Stamp {
            wall_ms,
            counter: 0,
            node: NodeId::from_bytes([node; 16]),
        };
        Record::from_parts(loc, stamp, value.map(|v| SecretValue::new(v.to_vec()))).unwrap()
    }

    #[test]
    fn merge_record_counts_each_outcome_and_moves_the_clock() {
        let mut i = Instance::new(NodeId::from_bytes([9; 16]));
        let r = i
            .merge_record(b"c", version(10, 1, Some(b"a")), MergePolicy::Newest)
            .unwrap();
        assert_eq!((r.added, r.conflicts_resolved), (1, 0));
        let r = i
            .merge_record(b"c", version(10, 1, Some(b"a")), MergePolicy::Newest)
            .unwrap();
        assert_eq!((r.unchanged, r.conflicts_resolved), (1, 0));
        let r = i
            .merge_record(b"c", version(5, 2, Some(b"old")), MergePolicy::Newest)
            .unwrap();
        assert_eq!((r.unchanged, r.conflicts_resolved), (1, 1));
        let r = i
            .merge_record(b"c", version(20, 2, Some(b"b")), MergePolicy::Newest)
            .unwrap();
        assert_eq!((r.updated, r.conflicts_resolved), (1, 1));
        let r = i
            .merge_record(b"c", version(30, 1, None), MergePolicy::Newest)
            .unwrap();
        assert_eq!((r.deleted, r.conflicts_resolved), (1, 1));
        let r = i
            .merge_record(b"c", version(40, 2, Some(b"back")), MergePolicy::Newest)
            .unwrap();
        assert_eq!(r.added, 1, "a later write after a deletion is an addition");
        // The next local write orders after everything merged.
        let loc = Location::new("v", "r").unwrap();
        let stamp = i
            .write_at(b"c", &loc, SecretValue::new(b"mine".to_vec()), 1)
            .unwrap();
        assert!(stamp.wall_ms >= 40);
    }

    #[test]
    fn newest_breaks_equal_stamps_by_hash() {
        // Equal stamps with different content cannot come from honest writers, but the rule must
        // still pick the same winner on both sides.
        let a = version(10, 1, Some(b"a"));
        let b = version(10, 1, Some(b"b"));
        let (hi, lo) = if a.hash() > b.hash() {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert!(should_take(MergePolicy::Newest, Some(lo), hi));
        assert!(!should_take(MergePolicy::Newest, Some(hi), lo));
    }
}
