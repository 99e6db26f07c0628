//! How much a peer can make us store: checked before every merged batch, so a writer cannot
//! grow the vault past what a save accepts (a snapshot body holds at most 1 GiB).

use std::collections::HashMap;

use redoubt_vault::{ClientId, Instance, MergePolicy, Record, RecordId, VaultId, merge_one};

use crate::Error;

/// Limits on what merges from peers may make this vault hold. Versions count whether live or
/// tombstones; bytes are what the records take in a save (paths, value and fixed fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Most records (live or tombstones) one client may hold after a merge.
    pub records_per_client: u64,
    /// Most stored bytes one client may hold after a merge.
    pub bytes_per_client: u64,
    /// Most stored bytes the whole vault may hold after a merge.
    pub bytes_total: u64,
}

impl Default for Quota {
    /// One million records and 256 MiB per client, 768 MiB in all: a vault at its quota still
    /// saves (the snapshot body's cap is 1 GiB).
    fn default() -> Self {
        Self {
            records_per_client: 1_000_000,
            bytes_per_client: 256 << 20,
            bytes_total: 768 << 20,
        }
    }
}

pub(crate) use redoubt_vault::stored_len;

/// What the vault holds, counted once per pull and kept up to date as its batches merge.
#[derive(Debug, Default)]
pub struct Usage {
    total: u64,
    clients: HashMap<ClientId, (u64, u64)>,
}

impl Usage {
    /// Counts every record of `instance`.
    pub fn of(instance: &Instance) -> Self {
        let mut usage = Self::default();
        for (id, _) in instance.clients() {
            let mut records = 0;
            let mut bytes = 0;
            for r in instance.records(id) {
                records += 1;
                bytes += stored_len(r);
            }
            usage.total += bytes;
            usage.clients.insert(*id, (records, bytes));
        }
        usage
    }

    /// The usage of per-client counts: (client, records held, stored bytes), as a store keeps
    /// them.
    pub fn from_counts(counts: impl IntoIterator<Item = (ClientId, u64, u64)>) -> Self {
        let mut usage = Self::default();
        for (id, records, bytes) in counts {
            usage.total += bytes;
            usage.clients.insert(id, (records, bytes));
        }
        usage
    }

    /// Checks that merging `batch` (client path, record) under `policy` keeps the vault within
    /// `quota`, counting exactly what the merge will take: a version it keeps ours over costs
    /// and frees nothing, and a location the batch names twice is judged against the batch's
    /// earlier version, as the merge will. On success the usage includes what will be taken;
    /// on failure nothing is counted and the batch must not be merged.
    ///
    /// `local` reads the version held at a location (`instance.record`, or a store's row).
    pub fn admit<'a, E: From<Error>>(
        &mut self,
        quota: &Quota,
        policy: MergePolicy,
        local: impl Fn(&ClientId, (VaultId, RecordId)) -> Result<Option<Record>, E>,
        batch: impl Iterator<Item = (&'a [u8], &'a Record)>,
    ) -> Result<(), E> {
        let mut next = self.clients.clone();
        let mut total = self.total;
        let mut planned: HashMap<(ClientId, VaultId, RecordId), Record> = HashMap::new();
        for (path, record) in batch {
            let id = ClientId::from_path(path);
            let (vault, rec) = record.location().ids();
            let held;
            let local = match planned.get(&(id, vault, rec)) {
                Some(p) => Some(p),
                None => {
                    held = local(&id, (vault, rec))?;
                    held.as_ref()
                }
            };
            // What the merge will store (a history that only grows costs too), not the
            // incoming record as it came.
            let Some(stored) = merge_one(policy, local, record).store else {
                continue;
            };
            let (records, bytes) = next.entry(id).or_default();
            let new = stored_len(&stored);
            match local {
                Some(old) => {
                    let old = stored_len(old);
                    *bytes = (*bytes + new).saturating_sub(old);
                    total = (total + new).saturating_sub(old);
                }
                None => {
                    *records += 1;
                    *bytes += new;
                    total += new;
                }
            }
            planned.insert((id, vault, rec), stored);
            let over = |what: &str, have: u64, max: u64| Error::QuotaExceeded {
                client: String::from_utf8_lossy(path).into_owned(),
                what: format!("the merge would make it {have} {what}, over the quota of {max}"),
            };
            if *records > quota.records_per_client {
                return Err(over("records", *records, quota.records_per_client).into());
            }
            if *bytes > quota.bytes_per_client {
                return Err(over("stored bytes", *bytes, quota.bytes_per_client).into());
            }
            if total > quota.bytes_total {
                return Err(
                    over("stored bytes in the whole vault", total, quota.bytes_total).into(),
                );
            }
        }
        self.clients = next;
        self.total = total;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use redoubt_vault::{Location, NodeId, SecretValue};

    use super::*;

    fn record(i: u32, len: usize) -> Record {
        let loc = Location::new("v", format!("r{i}")).unwrap();
        let mut src = Instance::new(NodeId::from_bytes([3; 16]));
        src.write_at(b"c", &loc, SecretValue::new(vec![7; len]), 1)
            .unwrap();
        src.record(&ClientId::from_path(b"c"), loc.ids())
            .unwrap()
            .clone()
    }

    #[test]
    fn a_batch_over_the_quota_is_refused_whole_and_counts_nothing() {
        let instance = Instance::new(NodeId::from_bytes([1; 16]));
        let quota = Quota {
            records_per_client: 3,
            ..Quota::default()
        };
        let mut usage = Usage::of(&instance);
        let batch: Vec<Record> = (0..2).map(|i| record(i, 4)).collect();
        usage
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(instance.record(id, ids).cloned()),
                batch.iter().map(|r| (&b"c"[..], r)),
            )
            .unwrap();
        let more: Vec<Record> = (2..4).map(|i| record(i, 4)).collect();
        let err = usage
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(instance.record(id, ids).cloned()),
                more.iter().map(|r| (&b"c"[..], r)),
            )
            .unwrap_err();
        assert!(err.to_string().contains("4 records"), "{err}");
        // The refused batch counted nothing: one more record still fits.
        usage
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(instance.record(id, ids).cloned()),
                more[..1].iter().map(|r| (&b"c"[..], r)),
            )
            .unwrap();
    }

    #[test]
    fn bytes_count_what_the_merge_stores_history_included() {
        // Our record holds one version; the incoming one descends from it, so the merge keeps
        // our version in the history: both values count.
        let loc = Location::new("v", "r0").unwrap();
        let mut src = Instance::new(NodeId::from_bytes([3; 16]));
        src.write_at(b"c", &loc, SecretValue::new(vec![7; 100]), 1)
            .unwrap();
        let first = src
            .record(&ClientId::from_path(b"c"), loc.ids())
            .unwrap()
            .clone();
        src.write_at(b"c", &loc, SecretValue::new(vec![8; 100]), 2)
            .unwrap();
        let second = src
            .record(&ClientId::from_path(b"c"), loc.ids())
            .unwrap()
            .clone();
        assert_eq!(second.history().len(), 1);
        assert_eq!(
            stored_len(&second),
            stored_len(&first)
                + redoubt_vault::codec::lineage::HISTORY_VERSION_OVERHEAD as u64
                + 100
        );
        let mut ours = Instance::new(NodeId::from_bytes([1; 16]));
        ours.merge_record(b"c", first, MergePolicy::Newest).unwrap();
        let quota = Quota {
            bytes_per_client: stored_len(&second) - 1,
            ..Quota::default()
        };
        let err = Usage::of(&ours)
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(ours.record(id, ids).cloned()),
                std::iter::once((&b"c"[..], &second)),
            )
            .unwrap_err();
        assert!(err.to_string().contains("stored bytes"), "{err}");
        let fits = Quota {
            bytes_per_client: stored_len(&second),
            ..Quota::default()
        };
        Usage::of(&ours)
            .admit(
                &fits,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(ours.record(id, ids).cloned()),
                std::iter::once((&b"c"[..], &second)),
            )
            .unwrap();
    }

    #[test]
    fn bytes_count_paths_values_and_tombstones() {
        let instance = Instance::new(NodeId::from_bytes([1; 16]));
        let one = record(0, 100);
        let quota = Quota {
            bytes_per_client: stored_len(&one) - 1,
            ..Quota::default()
        };
        let err = Usage::of(&instance)
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(instance.record(id, ids).cloned()),
                std::iter::once((&b"c"[..], &one)),
            )
            .unwrap_err();
        assert!(err.to_string().contains("stored bytes"), "{err}");
        assert_eq!(stored_len(&one), (2 + 2 + 8 + 4 + 16 + 1 + 4) + 1 + 2 + 100);
    }

    /// A writer cannot free quota with stale versions the merge will not take: a tombstone
    /// older than a large record we hold, sent many times, frees nothing.
    #[test]
    fn stale_versions_free_no_quota() {
        let mut instance = Instance::new(NodeId::from_bytes([1; 16]));
        let loc = Location::new("v", "big").unwrap();
        instance
            .write_at(b"c", &loc, SecretValue::new(vec![1; 1000]), 10)
            .unwrap();
        let big = instance
            .record(&ClientId::from_path(b"c"), loc.ids())
            .unwrap()
            .clone();
        let stale = Record::tombstone(
            loc.clone(),
            redoubt_vault::Stamp {
                wall_ms: 5,
                counter: 0,
                node: NodeId::from_bytes([2; 16]),
            },
        );
        let newcomer = record(7, 900);
        let quota = Quota {
            bytes_per_client: stored_len(&big) + 100,
            ..Quota::default()
        };
        let mut usage = Usage::of(&instance);
        let mut batch: Vec<&Record> = vec![&stale; 5];
        batch.push(&newcomer);
        let err = usage
            .admit(
                &quota,
                MergePolicy::Newest,
                |id: &ClientId, ids| Ok::<_, Error>(instance.record(id, ids).cloned()),
                batch.into_iter().map(|r| (&b"c"[..], r)),
            )
            .unwrap_err();
        assert!(err.to_string().contains("stored bytes"), "{err}");
    }
}
