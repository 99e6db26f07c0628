//! Merge policies, merge reports, and local sync from another instance.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    ClientId, DEFAULT_MAX_AHEAD_MS, Error, Instance, Location, MergeBounds, Record, RecordId,
    Selection, Stamp, VaultId, history, id::check_path, instance::ClientRecords, stamp::now_ms,
};

/// What to do when both sides hold different versions of a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergePolicy {
    /// The greater stamp wins, ties broken by the greater version hash; tombstones win like
    /// writes; histories join. Convergent: merging is commutative, associative and idempotent.
    #[default]
    Newest,
    /// Never overwrite a version we hold (Stronghold's `KeepOld`).
    KeepOld,
    /// Always take the incoming version (Stronghold's `Replace`).
    Replace,
}

/// The most conflicts a [`MergeReport`] names; [`MergeReport::conflicts_resolved`] still
/// counts every one.
pub const MAX_NAMED_CONFLICTS: usize = 64;

/// One concurrent edit a merge resolved: neither version descended from the other and their
/// contents differed. Names the location and both versions by hash, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The client path.
    pub client: Vec<u8>,
    /// The location.
    pub location: Location,
    /// The version hash that is current after the merge.
    pub kept: [u8; 32],
    /// The version hash that lost; it stays in the record's history until pruned.
    pub lost: [u8; 32],
}

/// What a merge did, counted per incoming record.
///
/// `added`, `updated`, `deleted`, `unchanged` and `refused_ahead` partition the incoming records;
/// `conflicts_resolved` counts, across the first four, locations where both sides had written
/// concurrently (neither current version descends from the other) with different contents,
/// and the policy chose one; `conflicts` names the first [`MAX_NAMED_CONFLICTS`] of them.
/// `history_merged` counts, among the `unchanged`, records whose history the merge extended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// Concurrent edits with different contents; the policy decided.
    pub conflicts_resolved: u64,
    /// The incoming version was refused, neither stored nor observed by the clock: its stamp
    /// (or one in its history) lay further ahead of this node's clock than the
    /// [`MergeBounds`] allow. Whoever merges should log it; the sender still holds it, and a
    /// later sync takes it once it is in bounds.
    pub refused_ahead: u64,
    /// The current version was kept but the history gained versions from the incoming record.
    pub history_merged: u64,
    /// The conflicts, at most [`MAX_NAMED_CONFLICTS`], in merge order.
    pub conflicts: Vec<Conflict>,
}

impl MergeReport {
    /// Adds another report's counts (and named conflicts, up to the cap) to this one (merges
    /// done one record at a time).
    pub fn add(&mut self, other: &Self) {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.conflicts_resolved += other.conflicts_resolved;
        self.refused_ahead += other.refused_ahead;
        self.history_merged += other.history_merged;
        let room = MAX_NAMED_CONFLICTS.saturating_sub(self.conflicts.len());
        self.conflicts
            .extend(other.conflicts.iter().take(room).cloned());
    }

    /// Whether the merge changed local state (a refused version changes nothing).
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.deleted + self.history_merged > 0
    }

    /// Counts one incoming record of `client` merged into `local` as `merged` says.
    pub fn count(
        &mut self,
        client: &[u8],
        local: Option<&Record>,
        incoming: &Record,
        merged: &Merged,
    ) {
        if let (Some((kept, lost)), Some(local)) = (merged.conflict, local) {
            self.conflicts_resolved += 1;
            if self.conflicts.len() < MAX_NAMED_CONFLICTS {
                self.conflicts.push(Conflict {
                    client: client.to_vec(),
                    location: local.location().clone(),
                    kept,
                    lost,
                });
            }
        }
        let local_live = local.is_some_and(|l| !l.is_tombstone());
        match (merged.taken, incoming.is_tombstone(), local_live) {
            (false, _, _) => {
                self.unchanged += 1;
                if merged.store.is_some() {
                    self.history_merged += 1;
                }
            }
            (true, true, _) => self.deleted += 1,
            (true, false, false) => self.added += 1,
            (true, false, true) => self.updated += 1,
        }
    }
}

impl std::fmt::Display for MergeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "added {}, updated {}, deleted {}, unchanged {}, conflicts resolved {}",
            self.added, self.updated, self.deleted, self.unchanged, self.conflicts_resolved
        )?;
        // Scripts parse the line above: what follows is appended, and only when nonzero.
        if self.history_merged > 0 {
            write!(f, ", history merged {}", self.history_merged)?;
        }
        if self.refused_ahead > 0 {
            write!(
                f,
                ", refused {} (stamped ahead of this clock)",
                self.refused_ahead
            )?;
        }
        Ok(())
    }
}

/// The outcome of merging one incoming record into one local record ([`merge_one`]).
#[derive(Clone, Debug)]
pub struct Merged {
    /// The record to store, when the merge changed what we hold (its state hash differs).
    pub store: Option<Record>,
    /// Whether the incoming current version became current.
    pub taken: bool,
    /// A concurrent edit with different contents: (kept, lost) version hashes.
    pub conflict: Option<([u8; 32], [u8; 32])>,
}

/// Merges `incoming` into `local` under `policy` (bounds are the caller's to check first).
///
/// - [`MergePolicy::Newest`]: the greater (stamp, version hash) is current; both histories and
///   the losing current version join the history ([`history::join`]). A state-based CRDT.
/// - [`MergePolicy::KeepOld`]: a record we hold is never changed.
/// - [`MergePolicy::Replace`]: the incoming current version is current; histories join.
///
/// A conflict is counted only when neither current version descends from the other and their
/// contents differ: a fast-forward is not one, and neither is the same value written twice.
pub fn merge_one(policy: MergePolicy, local: Option<&Record>, incoming: &Record) -> Merged {
    let Some(local) = local else {
        return Merged {
            store: Some(incoming.clone()),
            taken: true,
            conflict: None,
        };
    };
    if local.hash() == incoming.hash() || policy == MergePolicy::KeepOld {
        let differs = local.version_hash() != incoming.version_hash();
        return Merged {
            store: None,
            taken: false,
            conflict: (differs && concurrent(local, incoming))
                .then_some((*local.version_hash(), *incoming.version_hash())),
        };
    }
    let take = match policy {
        MergePolicy::Newest => {
            incoming.current().key() > local.current().key()
                // Equal current versions: keep ours (the histories still join).
                && incoming.version_hash() != local.version_hash()
        }
        MergePolicy::Replace => incoming.version_hash() != local.version_hash(),
        MergePolicy::KeepOld => false,
    };
    let (winner, loser) = if take {
        (incoming, local)
    } else {
        (local, incoming)
    };
    let lost = (winner.version_hash() != loser.version_hash()).then(|| loser.current());
    let history = history::join(winner, loser, lost);
    let joined = Record::of(winner.location().clone(), winner.current().clone(), history);
    let conflict = (lost.is_some() && concurrent(local, incoming))
        .then_some((*winner.version_hash(), *loser.version_hash()));
    Merged {
        store: (joined.hash() != local.hash()).then_some(joined),
        taken: take,
        conflict,
    }
}

/// Whether two different current versions are a concurrent edit with different contents.
fn concurrent(a: &Record, b: &Record) -> bool {
    !history::descends(a, b.version_hash())
        && !history::descends(b, a.version_hash())
        && !a.current().same_content(b.current())
}

/// Whether `incoming`'s current version would become current over `local` under `policy`
/// ([`merge_one`]'s `taken`). A merge may still change `local`'s history when it is not.
pub fn should_take(policy: MergePolicy, local: Option<&Record>, incoming: &Record) -> bool {
    merge_one(policy, local, incoming).taken
}

impl Instance {
    /// Merges one incoming version into `client` under `policy`, returning what it did, within
    /// [`MergeBounds::now`] (the system clock, the default drift).
    pub fn merge_record(
        &mut self,
        client: &[u8],
        incoming: Record,
        policy: MergePolicy,
    ) -> Result<MergeReport, Error> {
        self.merge_record_within(client, incoming, policy, &MergeBounds::now())
    }

    /// Merges one incoming version into `client` under `policy`, unless `bounds` refuse its
    /// stamp: then nothing changes, the clock included, and the report counts it in
    /// `refused_ahead`.
    ///
    /// ```
    /// use redoubt_vault::{
    ///     Instance, Location, MergeBounds, MergePolicy, NodeId, Record, SecretValue, Stamp,
    /// };
    /// let now = 1_700_000_000_000;
    /// let node = NodeId::from_bytes([6; 16]);
    /// let far = Stamp { wall_ms: u64::MAX, counter: u32::MAX, node };
    /// let loc = Location::new("wallet", "seed")?;
    /// let forged = Record::live(loc, far, SecretValue::new(b"evil".to_vec()))?;
    /// let mut phone = Instance::new(NodeId::from_bytes([1; 16]));
    /// let bounds = MergeBounds::at(now);
    /// let report = phone.merge_record_within(b"alice", forged, MergePolicy::Newest, &bounds)?;
    /// assert_eq!((report.refused_ahead, report.changed()), (1, false));
    /// assert!(phone.is_empty());
    /// assert_eq!(phone.clock().last(), (0, 0)); // not observed
    /// # Ok::<(), redoubt_vault::Error>(())
    /// ```
    pub fn merge_record_within(
        &mut self,
        client: &[u8],
        incoming: Record,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        check_path("client path", client)?;
        let mut report = MergeReport::default();
        if !bounds.admits(incoming.newest_stamp()) {
            report.refused_ahead = 1;
            return Ok(report);
        }
        let client_id = ClientId::from_path(client);
        let ids = incoming.location().ids();
        let local = self.record(&client_id, ids);
        let merged = merge_one(policy, local, &incoming);
        report.count(client, local, &incoming, &merged);
        self.observe(incoming.newest_stamp());
        if let Some(record) = merged.store {
            self.put_with_ids(client_id, client, ids, record);
        }
        Ok(report)
    }

    /// Pulls from `source` into `self` as `config` says (local sync). Versions the config's
    /// [`SyncConfig::merge_bounds`] refuse are counted in `refused_ahead` and otherwise ignored.
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
        let bounds = config.merge_bounds();
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
                &target_path,
                self.client_records(&target_id),
                incoming,
                (config, &bounds),
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

/// Decides, for every selected incoming version of one client that `bounds` admit, whether to
/// take it; counts the outcomes. Changes nothing: the caller applies the versions it returns and
/// moves its clock past the greatest stamp considered (refused ones are not).
fn plan(
    client: &[u8],
    ours: Option<&ClientRecords>,
    incoming: &ClientRecords,
    (config, bounds): (&SyncConfig, &MergeBounds),
    report: &mut MergeReport,
) -> (Vec<Taken>, Option<Stamp>) {
    let mut taken = Vec::new();
    let mut newest: Option<Stamp> = None;
    let mut refused = 0;
    let selected = incoming
        .records
        .iter()
        .filter(|((v, r), _)| config.selection.contains(*v, *r))
        .filter(|(_, version)| {
            let admitted = bounds.admits(version.newest_stamp());
            refused += u64::from(!admitted);
            admitted
        })
        .inspect(|(_, version)| newest = newest.max(Some(*version.newest_stamp())));
    if config.map_vaults.is_empty() {
        // Both maps are ordered by (vault id, record id): walk them in step, no lookups.
        let mut ours = ours.into_iter().flat_map(|c| c.records.iter()).peekable();
        for (ids, version) in selected {
            while ours.next_if(|(k, _)| *k < ids).is_some() {}
            let local = ours.next_if(|(k, _)| *k == ids).map(|(_, l)| l);
            let merged = merge_one(config.policy, local, version);
            report.count(client, local, version, &merged);
            if let Some(record) = merged.store {
                taken.push((*ids, record));
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
            let moved;
            let version = match mapped {
                Some((_, to_path)) => {
                    moved = version.moved_to_vault(to_path);
                    &moved
                }
                None => version,
            };
            let merged = merge_one(config.policy, local, version);
            report.count(client, local, version, &merged);
            if let Some(record) = merged.store {
                planned.insert(ids, record);
            }
        }
        taken.extend(planned);
    }
    report.refused_ahead += refused;
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
#[derive(Clone, Debug)]
pub struct SyncConfig {
    policy: MergePolicy,
    clients: Option<BTreeSet<Vec<u8>>>,
    selection: Selection,
    map_clients: BTreeMap<Vec<u8>, Vec<u8>>,
    map_vaults: BTreeMap<VaultId, (VaultId, Vec<u8>)>,
    /// The receiver's physical time when fixed; `None` reads the system clock at each sync.
    now_ms: Option<u64>,
    max_ahead_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            policy: MergePolicy::default(),
            clients: None,
            selection: Selection::default(),
            map_clients: BTreeMap::new(),
            map_vaults: BTreeMap::new(),
            now_ms: None,
            max_ahead_ms: DEFAULT_MAX_AHEAD_MS,
        }
    }
}

impl SyncConfig {
    /// Every client, every record, policy [`MergePolicy::Newest`], versions refused when
    /// stamped more than [`DEFAULT_MAX_AHEAD_MS`] ahead of the system clock. Into a fresh
    /// instance this is an import.
    pub fn full() -> Self {
        Self::default()
    }

    /// Sets how far ahead of the receiver's clock an incoming stamp may be (the clock is still
    /// read at each sync unless [`SyncConfig::bounds`] fixed it).
    pub fn max_ahead_ms(mut self, ms: u64) -> Self {
        self.max_ahead_ms = ms;
        self
    }

    /// Fixes both the receiver's time and the drift (deterministic tests and replays).
    pub fn bounds(mut self, bounds: MergeBounds) -> Self {
        self.now_ms = Some(bounds.now_ms);
        self.max_ahead_ms = bounds.max_ahead_ms;
        self
    }

    /// The bounds a sync started now would use: the fixed time, or the system clock's.
    pub fn merge_bounds(&self) -> MergeBounds {
        MergeBounds {
            now_ms: self.now_ms.unwrap_or_else(now_ms),
            max_ahead_ms: self.max_ahead_ms,
        }
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
    fn merge_record_within_refuses_stamps_ahead_and_does_not_observe_them() {
        let mut i = Instance::new(NodeId::from_bytes([9; 16]));
        let bounds = MergeBounds::at(1000);
        for policy in [
            MergePolicy::Newest,
            MergePolicy::KeepOld,
            MergePolicy::Replace,
        ] {
            let ahead = version(bounds.limit_ms() + 1, 1, Some(b"ahead"));
            let r = i.merge_record_within(b"c", ahead, policy, &bounds).unwrap();
            assert_eq!(r.refused_ahead, 1, "{policy:?}");
            assert_eq!((r.added, r.unchanged, r.conflicts_resolved), (0, 0, 0));
            assert!(!r.changed());
        }
        assert!(i.is_empty());
        assert_eq!(i.clock().last(), (0, 0), "the clock did not move");
        let edge = version(bounds.limit_ms(), 1, Some(b"edge"));
        let r = i
            .merge_record_within(b"c", edge, MergePolicy::Newest, &bounds)
            .unwrap();
        assert_eq!((r.added, r.refused_ahead), (1, 0));
        assert_eq!(i.clock().last(), (bounds.limit_ms(), 0));
        // An invalid client path is still an error, even for a refused version.
        let ahead = version(u64::MAX, 1, None);
        assert!(
            i.merge_record_within(b"", ahead, MergePolicy::Newest, &bounds)
                .is_err()
        );
    }

    #[test]
    fn sync_from_refuses_stamps_ahead_and_takes_the_rest() {
        let mut source = Instance::new(NodeId::from_bytes([1; 16]));
        let loc = |r: &str| Location::new("v", r).unwrap();
        let value = |v: &[u8]| SecretValue::new(v.to_vec());
        source
            .write_at(b"c", &loc("now"), value(b"n"), 900)
            .unwrap();
        let far = Stamp {
            wall_ms: u64::MAX,
            counter: u32::MAX,
            node: NodeId::from_bytes([6; 16]),
        };
        let forged = Record::live(loc("far"), far, value(b"f")).unwrap();
        source.restore(b"c", forged).unwrap();
        let bounds = MergeBounds::at(1000);
        for config in [
            SyncConfig::full().bounds(bounds),
            SyncConfig::full()
                .bounds(bounds)
                .map_vault(b"v", b"w")
                .unwrap(),
        ] {
            let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
            let r = dst.sync_from(&source, &config).unwrap();
            assert_eq!((r.added, r.refused_ahead), (1, 1));
            assert_eq!(dst.len(), 1);
            assert_eq!(
                dst.clock().last(),
                (900, 0),
                "only the admitted stamp is observed"
            );
        }
        // The bound is configurable; `u64::MAX` trusts every writer's clock.
        let mut dst = Instance::new(NodeId::from_bytes([2; 16]));
        let config = SyncConfig::full().max_ahead_ms(u64::MAX);
        assert_eq!(config.merge_bounds().limit_ms(), u64::MAX);
        let r = dst.sync_from(&source, &config).unwrap();
        assert_eq!((r.added, r.refused_ahead), (2, 0));
        // By default the system clock and the default drift apply.
        let config = SyncConfig::full();
        assert_eq!(
            config.merge_bounds().max_ahead_ms,
            crate::DEFAULT_MAX_AHEAD_MS
        );
        let r = Instance::new(NodeId::from_bytes([3; 16]))
            .sync_from(&source, &config)
            .unwrap();
        assert_eq!((r.added, r.refused_ahead), (1, 1));
    }

    #[test]
    fn report_text_appends_refusals_only_when_there_are_some() {
        let mut r = MergeReport {
            added: 1,
            updated: 2,
            deleted: 3,
            unchanged: 4,
            conflicts_resolved: 5,
            refused_ahead: 0,
            ..MergeReport::default()
        };
        let old = "added 1, updated 2, deleted 3, unchanged 4, conflicts resolved 5";
        assert_eq!(r.to_string(), old);
        r.add(&MergeReport {
            refused_ahead: 2,
            ..MergeReport::default()
        });
        assert_eq!(r.refused_ahead, 2);
        assert_eq!(
            r.to_string(),
            format!("{old}, refused 2 (stamped ahead of this clock)")
        );
        r.history_merged = 3;
        assert_eq!(
            r.to_string(),
            format!("{old}, history merged 3, refused 2 (stamped ahead of this clock)")
        );
    }

    #[test]
    fn only_concurrent_edits_with_different_contents_are_conflicts() {
        let loc = Location::new("v", "r").unwrap();
        let value = |v: &[u8]| SecretValue::new(v.to_vec());
        let mut a = Instance::new(NodeId::from_bytes([1; 16]));
        a.write_at(b"c", &loc, value(b"v0"), 10).unwrap();
        let mut b = a.clone();
        // A fast-forward of several edits: no conflict.
        for k in 1..5u64 {
            b.write_at(b"c", &loc, value(format!("v{k}").as_bytes()), 10 + k)
                .unwrap();
        }
        let a0 = a.clone();
        let r = a.sync_from(&b, &SyncConfig::full()).unwrap();
        assert_eq!((r.updated, r.conflicts_resolved), (1, 0));
        assert!(r.conflicts.is_empty());
        assert_eq!(a.state_digest(), b.state_digest());
        // The other way round, ours descends from theirs: no conflict either.
        let r = b.clone().sync_from(&a0, &SyncConfig::full()).unwrap();
        assert_eq!(
            (r.unchanged, r.conflicts_resolved, r.history_merged),
            (1, 0, 0)
        );
        // The same bytes written on both sides: not a conflict.
        let (mut x, mut y) = (a.clone(), a.clone());
        x.write_at(b"c", &loc, value(b"same"), 30).unwrap();
        let mut y2 = Instance::new(NodeId::from_bytes([2; 16]));
        y2.sync_from(&y, &SyncConfig::full()).unwrap();
        y2.write_at(b"c", &loc, value(b"same"), 31).unwrap();
        let r = x.sync_from(&y2, &SyncConfig::full()).unwrap();
        assert_eq!((r.updated, r.conflicts_resolved), (1, 0));
        // A real concurrent edit: one conflict, named, and the loser kept in the history.
        y.write_at(b"c", &loc, value(b"theirs"), 40).unwrap();
        let mut z = Instance::new(NodeId::from_bytes([4; 16]));
        z.sync_from(&a, &SyncConfig::full()).unwrap();
        z.write_at(b"c", &loc, value(b"ours"), 41).unwrap();
        let r = y.sync_from(&z, &SyncConfig::full()).unwrap();
        assert_eq!((r.updated, r.conflicts_resolved), (1, 1));
        let c = &r.conflicts[0];
        assert_eq!((c.client.as_slice(), &c.location), (&b"c"[..], &loc));
        let rec = y.record(&ClientId::from_path(b"c"), loc.ids()).unwrap();
        assert_eq!(&c.kept, rec.version_hash());
        assert_eq!(rec.history()[0].hash(), &c.lost);
        assert_eq!(
            crate::history::why_replaced(rec, &rec.history()[0]),
            crate::Replaced::LostConflict
        );
        // Merged back, the other side converges to the same record, history included.
        let r = z.sync_from(&y, &SyncConfig::full()).unwrap();
        assert_eq!(r.conflicts_resolved, 0, "a fast-forward now");
        assert_eq!(z.state_digest(), y.state_digest());
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
