//! Merging a verified batch of a peer's records: under our write grants for the peer, within
//! the clock bound and the quota, with one report.

use std::fmt;

use redoubt_protocol::Received;
use redoubt_vault::{
    AccessTable, ClientId, Instance, MergeBounds, MergePolicy, MergeReport, Record, RecordId,
    VaultId, hex, now_ms,
};

use crate::{
    Error,
    grants::{Direction, granted_clients, not_granted},
    quota::{Quota, Usage},
};

/// What governs the merge of a peer's batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MergeRules {
    /// Which version wins where both sides hold one.
    pub policy: MergePolicy,
    /// What the merges may make the vault hold.
    pub quota: Quota,
    /// How far ahead of our clock a record's stamp may be, in milliseconds.
    pub max_ahead_ms: u64,
}

impl Default for MergeRules {
    /// The newest version wins, the default quota, and [`redoubt_vault::DEFAULT_MAX_AHEAD_MS`].
    fn default() -> Self {
        Self {
            policy: MergePolicy::Newest,
            quota: Quota::default(),
            max_ahead_ms: redoubt_vault::DEFAULT_MAX_AHEAD_MS,
        }
    }
}

/// What merging one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchMerged {
    /// The merge report over the batch's records (`refused_ahead` counts those stamped too
    /// far ahead).
    pub report: MergeReport,
    /// Records in the batch.
    pub records: u64,
    /// Value bytes in the batch.
    pub value_bytes: u64,
    /// The first record refused for a stamp ahead of our clock, for the caller to log (one
    /// line per batch, however many it refused).
    pub refused_ahead: Option<RefusedAhead>,
}

/// The first record of a batch refused for a stamp too far ahead, named by ids: never by the
/// peer's path bytes, which could forge log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedAhead {
    /// Its client.
    pub client: ClientId,
    /// Its vault.
    pub vault: VaultId,
    /// Its record.
    pub record: RecordId,
    /// The wall-clock milliseconds its stamp claims.
    pub wall_ms: u64,
    /// The latest wall-clock milliseconds the batch admitted.
    pub limit_ms: u64,
}

impl fmt::Display for RefusedAhead {
    /// `CLIENT/VAULT/RECORD`, the first 8 bytes of each id in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            hex(&self.client.as_bytes()[..8]),
            hex(&self.vault.as_bytes()[..8]),
            hex(&self.record.as_bytes()[..8])
        )
    }
}

/// Checks that `access` lets `peer` write every client of `batch`; the error names the first
/// that it does not.
pub fn check_writable(access: &AccessTable, peer: &str, batch: &[Received]) -> Result<(), Error> {
    let writable = granted_clients(access, peer, Direction::In);
    match batch.iter().find(|r| !writable.contains(&r.client)) {
        Some(r) => Err(not_granted(peer, &r.client, Direction::In)),
        None => Ok(()),
    }
}

/// Where verified batches from peers merge: a replica, the grants that govern what enters it,
/// and a step that applies what [`merge_batch`]'s checks let through. The node's vault is one
/// (each apply is one durable commit of its store); [`InMemory`] keeps everything in memory.
pub trait MergeTarget {
    /// What applying fails with; the sync layer's refusals convert into it.
    type Error: From<Error>;

    /// The version the replica holds at `ids` of `client` (a merge plans against it).
    fn local(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Record>, Self::Error>;

    /// What the replica holds, counted afresh (the quota starts from it).
    fn count_usage(&self) -> Result<Usage, Self::Error>;

    /// Our grants: which peer may write which client into the replica.
    fn grants(&self) -> &AccessTable;

    /// What the replica holds, as [`merge_batch`] counted it at its first batch and kept it
    /// up to date since. A target resets it to `None` whenever it changes by other means
    /// (a local write, say), so the next batch counts again.
    fn usage(&mut self) -> &mut Option<Usage>;

    /// Merges `records` (client path, record) in order, each as
    /// [`Instance::merge_record_within`] would: refused when `bounds` refuse its stamp,
    /// otherwise taken when [`redoubt_vault::should_take`] says so; returns the reports
    /// summed. [`merge_batch`] calls it only with a batch its checks admitted. A target that
    /// persists returns `Ok` only once all of it is durable, and on an error has taken none of
    /// it. `peer` is who sent the batch, for a target that tells its app where a change came
    /// from.
    fn apply(
        &mut self,
        peer: &str,
        records: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Self::Error>;
}

/// A replica and its grants kept in memory, as a [`MergeTarget`] (tests, and transports that
/// save by other means).
#[derive(Debug)]
pub struct InMemory {
    instance: Instance,
    access: AccessTable,
    usage: Option<Usage>,
}

impl InMemory {
    /// `instance` under the grants of `access`.
    pub fn new(instance: Instance, access: AccessTable) -> Self {
        Self {
            instance,
            access,
            usage: None,
        }
    }

    /// The replica.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The replica, to change by other means than a merge (the quota counts it again).
    pub fn instance_mut(&mut self) -> &mut Instance {
        self.usage = None;
        &mut self.instance
    }

    /// The grants.
    pub fn grants(&self) -> &AccessTable {
        &self.access
    }

    /// The grants, to change.
    pub fn grants_mut(&mut self) -> &mut AccessTable {
        &mut self.access
    }

    /// The replica and the grants.
    pub fn into_parts(self) -> (Instance, AccessTable) {
        (self.instance, self.access)
    }
}

impl MergeTarget for InMemory {
    type Error = Error;

    fn local(&self, client: &ClientId, ids: (VaultId, RecordId)) -> Result<Option<Record>, Error> {
        Ok(self.instance.record(client, ids).cloned())
    }

    fn count_usage(&self) -> Result<Usage, Error> {
        Ok(Usage::of(&self.instance))
    }

    fn grants(&self) -> &AccessTable {
        &self.access
    }

    fn usage(&mut self) -> &mut Option<Usage> {
        &mut self.usage
    }

    fn apply(
        &mut self,
        _peer: &str,
        records: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        // The only error below is a bad client path, and `merge_batch` lets through only
        // clients the peer holds a write grant on, which the access table accepts only for
        // valid paths: what reaches here merges whole.
        let mut report = MergeReport::default();
        for (client, record) in records {
            let one = self
                .instance
                .merge_record_within(&client, record, policy, bounds)?;
            report.add(&one);
        }
        Ok(report)
    }
}

/// Merges `batch`, verified records received from `peer`, into `target`.
///
/// The whole batch is refused, and nothing merged, unless the target's grants let `peer`
/// write every client in it ([`Error::NotGranted`]) and the batch keeps the vault within
/// `rules.quota` ([`Error::QuotaExceeded`]). The clock is read once for the batch: versions
/// stamped more than `rules.max_ahead_ms` ahead are refused (counted in `refused_ahead`, never
/// stored, so the quota does not count them). What passes goes to [`MergeTarget::apply`] in
/// one call; the usage the quota counts is the target's ([`MergeTarget::usage`]), counted at
/// the first non-empty batch, kept up to date, and reset when the apply fails.
pub fn merge_batch<T: MergeTarget>(
    target: &mut T,
    peer: &str,
    batch: Vec<Received>,
    rules: &MergeRules,
) -> Result<BatchMerged, T::Error> {
    check_writable(target.grants(), peer, &batch)?;
    let bounds = MergeBounds {
        now_ms: now_ms(),
        max_ahead_ms: rules.max_ahead_ms,
    };
    if !batch.is_empty() {
        let mut usage = match target.usage().take() {
            Some(usage) => usage,
            None => target.count_usage()?,
        };
        // On failure the usage is left as it was, and the batch is not merged.
        let admitted = usage.admit(
            &rules.quota,
            rules.policy,
            |client: &ClientId, ids| target.local(client, ids),
            batch
                .iter()
                // As the merge refuses them: by the newest stamp the record holds, its
                // history included (a history version may be newer than the current one).
                .filter(|r| bounds.admits(r.record.newest_stamp()))
                .map(|r| (r.client.as_slice(), &r.record)),
        );
        *target.usage() = Some(usage);
        admitted?;
    }
    let mut merged = BatchMerged::default();
    let mut records = Vec::with_capacity(batch.len());
    for r in batch {
        merged.value_bytes += u64::from(r.record.size());
        if !bounds.admits(r.record.newest_stamp()) && merged.refused_ahead.is_none() {
            let (vault, record) = r.record.location().ids();
            merged.refused_ahead = Some(RefusedAhead {
                client: ClientId::from_path(&r.client),
                vault,
                record,
                wall_ms: r.record.newest_stamp().wall_ms,
                limit_ms: bounds.limit_ms(),
            });
        }
        merged.records += 1;
        records.push((r.client, r.record));
    }
    match target.apply(peer, records, rules.policy, &bounds) {
        Ok(report) => merged.report = report,
        Err(e) => {
            // The usage counted the batch in: count again from what the target holds.
            *target.usage() = None;
            return Err(e);
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use redoubt_vault::{Location, NodeId, Rights, SecretValue, Stamp};

    use super::*;

    const PEER: &str = "12D3KooWPeer";

    fn writer(clients: &[&[u8]]) -> InMemory {
        let mut t = AccessTable::default();
        for c in clients {
            let w = Rights {
                read: false,
                write: true,
            };
            t.grant(PEER.as_bytes(), c, w).unwrap();
        }
        InMemory::new(Instance::new(NodeId::from_bytes([1; 16])), t)
    }

    fn received(client: &[u8], i: u32, wall_ms: u64) -> Received {
        let loc = Location::new("v", format!("r{i}")).unwrap();
        let mut src = Instance::new(NodeId::from_bytes([3; 16]));
        src.write_at(client, &loc, SecretValue::new(vec![7; 4]), wall_ms)
            .unwrap();
        let record = src
            .record(&ClientId::from_path(client), loc.ids())
            .unwrap()
            .clone();
        Received {
            client: client.to_vec(),
            record,
        }
    }

    fn held(replica: &InMemory, client: &[u8]) -> usize {
        replica
            .instance()
            .records(&ClientId::from_path(client))
            .count()
    }

    #[test]
    fn a_batch_with_one_client_not_granted_merges_nothing() {
        let mut replica = writer(&[b"c1"]);
        let batch = vec![received(b"c1", 0, 1), received(b"c2", 1, 1)];
        let err = merge_batch(&mut replica, PEER, batch, &MergeRules::default()).unwrap_err();
        assert!(
            matches!(&err, Error::NotGranted { right: "write", client, .. } if client == "c2"),
            "{err}"
        );
        assert_eq!(held(&replica, b"c1"), 0);
        assert!(replica.usage.is_none());
    }

    #[test]
    fn records_stamped_ahead_are_refused_counted_and_the_first_named() {
        let mut replica = writer(&[b"c1"]);
        let far = now_ms() + 3_600_000;
        let batch = vec![
            received(b"c1", 0, 1),
            received(b"c1", 1, far),
            received(b"c1", 2, far + 1),
        ];
        let first = batch[1].record.location().ids();
        let rules = MergeRules {
            max_ahead_ms: 60_000,
            ..MergeRules::default()
        };
        let merged = merge_batch(&mut replica, PEER, batch, &rules).unwrap();
        assert_eq!(merged.records, 3);
        assert_eq!(merged.value_bytes, 12);
        assert_eq!(merged.report.added, 1);
        assert_eq!(merged.report.refused_ahead, 2);
        let refused = merged.refused_ahead.unwrap();
        assert_eq!((refused.vault, refused.record), first);
        assert_eq!(refused.wall_ms, far);
        assert!(refused.limit_ms < far);
        assert_eq!(refused.to_string().len(), 3 * 16 + 2);
        assert_eq!(held(&replica, b"c1"), 1);
    }

    /// A record whose current version is in bounds but whose history holds a version stamped
    /// too far ahead is refused as the merge refuses it (by its newest stamp), named, and not
    /// counted by the quota.
    #[test]
    fn a_history_stamped_ahead_refuses_the_record() {
        let far = now_ms() + 3_600_000;
        let loc = Location::new("v", "r0").unwrap();
        // Replace keeps the incoming, older version current and the newer one in the history.
        let mut src = Instance::new(NodeId::from_bytes([5; 16]));
        src.write_at(b"c1", &loc, SecretValue::new(vec![9; 4]), 1)
            .unwrap();
        let mut mixed = Instance::new(NodeId::from_bytes([3; 16]));
        mixed
            .write_at(b"c1", &loc, SecretValue::new(vec![7; 4]), far)
            .unwrap();
        let older = src
            .record(&ClientId::from_path(b"c1"), loc.ids())
            .unwrap()
            .clone();
        mixed
            .merge_record(b"c1", older, MergePolicy::Replace)
            .unwrap();
        let record = mixed
            .record(&ClientId::from_path(b"c1"), loc.ids())
            .unwrap()
            .clone();
        assert_eq!(record.stamp().wall_ms, 1);
        assert_eq!(record.newest_stamp().wall_ms, far);
        let mut replica = writer(&[b"c1"]);
        let rules = MergeRules {
            max_ahead_ms: 60_000,
            quota: Quota {
                bytes_per_client: 1,
                ..Quota::default()
            },
            ..MergeRules::default()
        };
        let batch = vec![Received {
            client: b"c1".to_vec(),
            record,
        }];
        // Over a one-byte quota if it were counted; refused ahead instead.
        let merged = merge_batch(&mut replica, PEER, batch, &rules).unwrap();
        assert_eq!(merged.report.refused_ahead, 1);
        assert_eq!(merged.refused_ahead.unwrap().wall_ms, far);
        assert_eq!(held(&replica, b"c1"), 0);
    }

    #[test]
    fn a_batch_over_the_quota_merges_nothing_and_the_next_one_fits() {
        let mut replica = writer(&[b"c1"]);
        let rules = MergeRules {
            quota: Quota {
                records_per_client: 2,
                ..Quota::default()
            },
            ..MergeRules::default()
        };
        let batch: Vec<Received> = (0..3).map(|i| received(b"c1", i, 1)).collect();
        let err = merge_batch(&mut replica, PEER, batch, &rules).unwrap_err();
        assert!(matches!(err, Error::QuotaExceeded { .. }), "{err}");
        assert_eq!(held(&replica, b"c1"), 0);
        let batch: Vec<Received> = (0..2).map(|i| received(b"c1", i, 1)).collect();
        let merged = merge_batch(&mut replica, PEER, batch, &rules).unwrap();
        assert_eq!(merged.report.added, 2);
        assert_eq!(merged.refused_ahead, None);
        let more = vec![received(b"c1", 9, 1)];
        let err = merge_batch(&mut replica, PEER, more, &rules).unwrap_err();
        assert!(err.to_string().contains("3 records"), "{err}");
    }

    #[test]
    fn a_tombstone_merges_as_a_deletion() {
        let mut replica = writer(&[b"c1"]);
        let live = received(b"c1", 0, 1);
        let gone = Received {
            client: b"c1".to_vec(),
            record: redoubt_vault::Record::tombstone(
                live.record.location().clone(),
                Stamp {
                    wall_ms: 2,
                    counter: 0,
                    node: NodeId::from_bytes([3; 16]),
                },
            ),
        };
        let merged =
            merge_batch(&mut replica, PEER, vec![live, gone], &MergeRules::default()).unwrap();
        assert_eq!((merged.report.added, merged.report.deleted), (1, 1));
    }

    /// A target whose apply fails, as a store whose commit fails.
    struct Failing(InMemory);

    impl MergeTarget for Failing {
        type Error = Error;

        fn local(
            &self,
            client: &ClientId,
            ids: (VaultId, RecordId),
        ) -> Result<Option<Record>, Error> {
            self.0.local(client, ids)
        }

        fn count_usage(&self) -> Result<Usage, Error> {
            self.0.count_usage()
        }

        fn grants(&self) -> &AccessTable {
            self.0.grants()
        }

        fn usage(&mut self) -> &mut Option<Usage> {
            &mut self.0.usage
        }

        fn apply(
            &mut self,
            _: &str,
            _: Vec<(Vec<u8>, Record)>,
            _: MergePolicy,
            _: &MergeBounds,
        ) -> Result<MergeReport, Error> {
            Err(Error::QuotaExceeded {
                client: "c1".into(),
                what: "injected failure".into(),
            })
        }
    }

    #[test]
    fn a_failed_apply_takes_nothing_and_the_next_batch_counts_again() {
        let rules = MergeRules {
            quota: Quota {
                records_per_client: 2,
                ..Quota::default()
            },
            ..MergeRules::default()
        };
        let mut failing = Failing(writer(&[b"c1"]));
        let batch: Vec<Received> = (0..2).map(|i| received(b"c1", i, 1)).collect();
        let err = merge_batch(&mut failing, PEER, batch, &rules).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(
            failing.0.usage.is_none(),
            "the count that included the batch is dropped"
        );
        assert_eq!(held(&failing.0, b"c1"), 0);
        // Had the failed batch stayed counted, these two would exceed the quota of two.
        let mut replica = failing.0;
        let batch: Vec<Received> = (0..2).map(|i| received(b"c1", i, 1)).collect();
        let merged = merge_batch(&mut replica, PEER, batch, &rules).unwrap();
        assert_eq!(merged.report.added, 2);
    }
}
