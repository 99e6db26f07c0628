//! One replica: its clients, their records, and this node's clock.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
};

use crate::{
    ClientId, Clock, Error, Location, NodeId, Record, RecordId, SecretValue, Selection, Shape,
    Stamp, VaultId,
    id::check_path,
    sketch::{ClientSketch, Element},
    stamp::now_ms,
};

/// `blake3` context of [`Instance::state_digest`].
pub const STATE_DIGEST_CONTEXT: &str = "redoubt v1 state digest";

/// Records of one client, keyed by location ids.
#[derive(Clone, Debug)]
pub(crate) struct ClientRecords {
    pub(crate) path: Vec<u8>,
    pub(crate) records: BTreeMap<(VaultId, RecordId), Record>,
    /// Reconciliation state of `records`, updated on every write.
    pub(crate) sketch: ClientSketch,
}

/// A replica: every client's records, including tombstones, and the writer's clock.
///
/// ```
/// use redoubt_vault::{Instance, Location, NodeId, SecretValue};
/// let mut desktop = Instance::new(NodeId::from_bytes([1; 16]));
/// let loc = Location::new("wallet", "seed")?;
/// desktop.write(b"alice", &loc, SecretValue::new(b"correct horse".to_vec()))?;
/// assert_eq!(desktop.read(b"alice", &loc).map(|v| v.expose()), Some(&b"correct horse"[..]));
/// desktop.delete(b"alice", &loc)?;
/// assert!(desktop.read(b"alice", &loc).is_none());
/// # Ok::<(), redoubt_vault::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Instance {
    node: NodeId,
    clock: Clock,
    clients: BTreeMap<ClientId, ClientRecords>,
}

impl Instance {
    /// An empty replica written by `node`.
    pub fn new(node: NodeId) -> Self {
        Self::with_clock(node, Clock::default())
    }

    /// An empty replica whose clock resumes from `clock` (when loading a saved instance).
    pub fn with_clock(node: NodeId, clock: Clock) -> Self {
        Self {
            node,
            clock,
            clients: BTreeMap::new(),
        }
    }

    /// The node that stamps this replica's writes.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The clock's state.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Writes `value` at `location` of `client`, stamped now.
    pub fn write(
        &mut self,
        client: &[u8],
        location: &Location,
        value: SecretValue,
    ) -> Result<Stamp, Error> {
        self.write_at(client, location, value, now_ms())
    }

    /// Writes `value` as if the wall clock read `now_ms` (deterministic tests and replays).
    ///
    /// Fails with [`Error::ClockExhausted`] when the clock has no later stamp to issue.
    pub fn write_at(
        &mut self,
        client: &[u8],
        location: &Location,
        value: SecretValue,
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        check_path("client path", client)?;
        let stamp = self.clock.tick(now_ms, self.node)?;
        let previous = self.record(&ClientId::from_path(client), location.ids());
        let record = Record::successor(location.clone(), stamp, Some(value), previous)?;
        self.put(client, record);
        Ok(stamp)
    }

    /// Deletes the live record at `location`, leaving a tombstone stamped now.
    pub fn delete(&mut self, client: &[u8], location: &Location) -> Result<Stamp, Error> {
        self.delete_at(client, location, now_ms())
    }

    /// Deletes as if the wall clock read `now_ms`.
    ///
    /// Fails with [`Error::RecordNotFound`] when no live record is there, and with
    /// [`Error::ClockExhausted`] when the clock has no later stamp to issue.
    pub fn delete_at(
        &mut self,
        client: &[u8],
        location: &Location,
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        if self.read(client, location).is_none() {
            return Err(Error::RecordNotFound {
                location: describe(client, location),
            });
        }
        let stamp = self.clock.tick(now_ms, self.node)?;
        let previous = self.record(&ClientId::from_path(client), location.ids());
        let record = Record::successor(location.clone(), stamp, None, previous)?;
        self.put(client, record);
        Ok(stamp)
    }

    /// Makes the version hashed `version` of the record at `location` (its current one or
    /// one in its history) current again, as a new write stamped as if the wall clock read
    /// `now_ms`: same value (or a tombstone, if that version was one), parent the current
    /// version. Fails with [`Error::VersionNotFound`] when the record holds no such version.
    pub fn revert_at(
        &mut self,
        client: &[u8],
        location: &Location,
        version: &[u8; 32],
        now_ms: u64,
    ) -> Result<Stamp, Error> {
        check_path("client path", client)?;
        let value = self.version_content(client, location, version)?;
        let stamp = self.clock.tick(now_ms, self.node)?;
        let previous = self.record(&ClientId::from_path(client), location.ids());
        let record = Record::successor(location.clone(), stamp, value, previous)?;
        self.put(client, record);
        Ok(stamp)
    }

    /// The content of the version hashed `version` of the record at `location` (its current
    /// one or one in its history): its value, or `None` for a tombstone. Fails with
    /// [`Error::VersionNotFound`] when the record holds no such version.
    pub fn version_content(
        &self,
        client: &[u8],
        location: &Location,
        version: &[u8; 32],
    ) -> Result<Option<SecretValue>, Error> {
        self.record(&ClientId::from_path(client), location.ids())
            .and_then(|r| r.version(version))
            .map(|v| v.value().cloned())
            .ok_or_else(|| Error::VersionNotFound {
                location: describe(client, location),
                version: crate::hex(version),
            })
    }

    /// The live value at `location`, or `None` if absent or deleted.
    pub fn read(&self, client: &[u8], location: &Location) -> Option<&SecretValue> {
        self.record(&ClientId::from_path(client), location.ids())
            .and_then(Record::value)
    }

    /// The current version (live or tombstone) at a location, by ids.
    pub fn record(
        &self,
        client: &ClientId,
        (vault, record): (VaultId, RecordId),
    ) -> Option<&Record> {
        self.clients.get(client)?.records.get(&(vault, record))
    }

    /// Every client: its id and path.
    pub fn clients(&self) -> impl Iterator<Item = (&ClientId, &[u8])> {
        self.clients.iter().map(|(id, c)| (id, c.path.as_slice()))
    }

    /// Every version held for `client`, tombstones included, ordered by location ids.
    pub fn records(&self, client: &ClientId) -> impl Iterator<Item = &Record> {
        self.clients
            .get(client)
            .into_iter()
            .flat_map(|c| c.records.values())
    }

    /// The path of a client we hold, by id.
    pub fn client_path(&self, client: &ClientId) -> Option<&[u8]> {
        self.clients.get(client).map(|c| c.path.as_slice())
    }

    /// `client`'s versions whose location ids come strictly after `after` (from the first when
    /// `None`), in location order: lets a caller walk a large client in bounded pages.
    pub fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = &Record> {
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Unbounded,
        };
        self.clients
            .get(client)
            .into_iter()
            .flat_map(move |c| c.records.range((start, Bound::Unbounded)).map(|(_, r)| r))
    }

    /// Number of versions held (tombstones included) over all clients.
    pub fn len(&self) -> usize {
        self.clients.values().map(|c| c.records.len()).sum()
    }

    /// Whether no client holds any record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A digest of every version held, over all clients: two replicas hold the same state
    /// exactly when their digests are equal.
    pub fn state_digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key(STATE_DIGEST_CONTEXT);
        for (id, client) in &self.clients {
            h.update(id.as_bytes());
            h.update(&(client.records.len() as u64).to_le_bytes());
            for ((vault, record), version) in &client.records {
                h.update(vault.as_bytes());
                h.update(record.as_bytes());
                h.update(&version.size().to_le_bytes());
                h.update(version.hash());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Shapes of `client`'s selected records, ordered by location ids.
    pub fn shapes(&self, client: &ClientId, selection: &Selection) -> Vec<Shape> {
        self.records(client)
            .filter(|r| {
                let (v, rec) = r.location().ids();
                selection.contains(v, rec)
            })
            .map(Record::shape)
            .collect()
    }

    /// The complement: `client`'s selected records whose version the holder of `theirs` lacks
    /// (absent there, or present in another version).
    pub fn complement<'a>(
        &'a self,
        client: &ClientId,
        theirs: &[Shape],
        selection: &Selection,
    ) -> Vec<&'a Record> {
        let known: HashMap<(VaultId, RecordId), &[u8; 32]> = theirs
            .iter()
            .map(|s| ((s.vault, s.record), &s.hash))
            .collect();
        let Some(records) = self.clients.get(client) else {
            return Vec::new();
        };
        records
            .records
            .iter()
            .filter(|((v, r), rec)| {
                selection.contains(*v, *r) && known.get(&(*v, *r)) != Some(&rec.hash())
            })
            .map(|(_, rec)| rec)
            .collect()
    }

    /// A copy of this replica whose records keep only their current versions, parentless:
    /// what a format without lineage (snapshot format 1) holds. The clock is kept.
    pub fn without_lineage(&self) -> Self {
        let mut out = Self::with_clock(self.node, self.clock);
        for (id, client) in &self.clients {
            for (ids, record) in &client.records {
                out.put_with_ids(*id, &client.path, *ids, record.without_lineage());
            }
        }
        out
    }

    /// Restores a saved version as it is (no merge, no clock tick), replacing whatever is there.
    /// Loaders use this; the clock still moves past the stamp, unbounded: a restored version is
    /// trusted like the saved clock, so never restore what came from elsewhere (merge it).
    pub fn restore(&mut self, client: &[u8], record: Record) -> Result<(), Error> {
        check_path("client path", client)?;
        self.clock.observe(record.newest_stamp());
        self.put(client, record);
        Ok(())
    }

    /// Stores `record` for `client` (whose path is already checked), replacing any version.
    pub(crate) fn put(&mut self, client: &[u8], record: Record) {
        let ids = record.location().ids();
        self.put_with_ids(ClientId::from_path(client), client, ids, record);
    }

    pub(crate) fn put_with_ids(
        &mut self,
        client_id: ClientId,
        client: &[u8],
        ids: (VaultId, RecordId),
        record: Record,
    ) {
        let entry = self
            .clients
            .entry(client_id)
            .or_insert_with(|| ClientRecords {
                path: client.to_vec(),
                records: BTreeMap::new(),
                sketch: ClientSketch::default(),
            });
        let new = Element::of(&client_id, &record.shape());
        if let Some(old) = entry.records.insert(ids, record) {
            entry
                .sketch
                .remove(&Element::of(&client_id, &old.shape()), ids);
        }
        entry.sketch.insert(&new, ids);
    }

    /// The reconciliation state of `client`'s versions, kept up to date by every write.
    pub fn sketch(&self, client: &ClientId) -> Option<&ClientSketch> {
        self.clients.get(client).map(|c| &c.sketch)
    }

    /// Whether every client's kept sketch equals one built afresh from its records: same
    /// count, digest and first `symbols` coded symbols. A self-check for tests and for the
    /// reliability suite; it costs a rebuild.
    pub fn sketches_match_records(&self, symbols: usize) -> bool {
        use crate::sketch::Symbol;
        self.clients.iter().all(|(id, c)| {
            let fresh = ClientSketch::from_elements(
                c.records
                    .iter()
                    .map(|(ids, r)| (Element::of(id, &r.shape()), *ids)),
            );
            let (mut kept, mut built) = (
                vec![Symbol::default(); symbols],
                vec![Symbol::default(); symbols],
            );
            c.sketch.add_symbols(0, &mut kept);
            fresh.add_symbols(0, &mut built);
            c.sketch.len() == fresh.len() && c.sketch.digest() == fresh.digest() && kept == built
        })
    }

    pub(crate) fn client_records(&self, client: &ClientId) -> Option<&ClientRecords> {
        self.clients.get(client)
    }

    pub(crate) fn observe(&mut self, stamp: &Stamp) {
        self.clock.observe(stamp);
    }
}

/// `client/vault/record`, paths shown lossily as UTF-8 (how errors name a location).
pub fn describe(client: &[u8], location: &Location) -> String {
    format!(
        "{}/{}/{}",
        String::from_utf8_lossy(client),
        String::from_utf8_lossy(location.vault_path()),
        String::from_utf8_lossy(location.record_path())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(v: &str, r: &str) -> Location {
        Location::new(v, r).unwrap()
    }

    fn secret(s: &str) -> SecretValue {
        SecretValue::new(s.as_bytes().to_vec())
    }

    #[test]
    fn write_read_delete_leaves_a_tombstone() {
        let mut i = Instance::new(NodeId::from_bytes([1; 16]));
        let l = loc("v", "r");
        let s1 = i.write_at(b"c", &l, secret("one"), 10).unwrap();
        assert_eq!(i.read(b"c", &l).unwrap().expose(), b"one");
        let s2 = i.delete_at(b"c", &l, 10).unwrap();
        assert!(s2 > s1);
        assert!(i.read(b"c", &l).is_none());
        let rec = i.record(&ClientId::from_path(b"c"), l.ids()).unwrap();
        assert!(rec.is_tombstone());
        assert!(matches!(
            i.delete_at(b"c", &l, 11),
            Err(Error::RecordNotFound { .. })
        ));
    }

    #[test]
    fn shapes_follow_the_selection() {
        let mut i = Instance::new(NodeId::from_bytes([1; 16]));
        for (v, r) in [("a", "1"), ("a", "2"), ("b", "1")] {
            i.write_at(b"c", &loc(v, r), secret(r), 1).unwrap();
        }
        let c = ClientId::from_path(b"c");
        assert_eq!(i.shapes(&c, &Selection::all()).len(), 3);
        let only_a = Selection::all().with_vault(b"a").unwrap();
        assert_eq!(i.shapes(&c, &only_a).len(), 2);
        let one = Selection::all().with_record(&loc("b", "1"));
        assert_eq!(
            i.shapes(&c, &one),
            vec![i.record(&c, loc("b", "1").ids()).unwrap().shape()]
        );
    }

    #[test]
    fn complement_holds_what_the_other_lacks_or_holds_differently() {
        let mut a = Instance::new(NodeId::from_bytes([1; 16]));
        let c = ClientId::from_path(b"c");
        a.write_at(b"c", &loc("v", "same"), secret("s"), 1).unwrap();
        a.write_at(b"c", &loc("v", "edited"), secret("e1"), 1)
            .unwrap();
        let theirs = a.shapes(&c, &Selection::all());
        a.write_at(b"c", &loc("v", "edited"), secret("e2"), 2)
            .unwrap();
        a.write_at(b"c", &loc("v", "new"), secret("n"), 2).unwrap();
        let mut got: Vec<_> = a
            .complement(&c, &theirs, &Selection::all())
            .into_iter()
            .map(|r| r.location().record_path().to_vec())
            .collect();
        got.sort();
        assert_eq!(got, vec![b"edited".to_vec(), b"new".to_vec()]);
        let all: Vec<_> = a.records_after(&c, None).map(Record::shape).collect();
        assert_eq!(all, a.shapes(&c, &Selection::all()));
        let rest = a
            .records_after(&c, Some((all[0].vault, all[0].record)))
            .count();
        assert_eq!(rest, all.len() - 1);
        assert_eq!(a.client_path(&c), Some(&b"c"[..]));
        let unknown = ClientId::from_path(b"nobody");
        assert!(a.complement(&unknown, &[], &Selection::all()).is_empty());
    }

    /// The kept sketch always equals one built afresh from the records held, whatever the
    /// sequence of writes, deletions, merges and overwrites.
    #[test]
    fn sketch_tracks_every_write() {
        use crate::{MergePolicy, sketch::MATERIALIZE_AT};
        let mut i = Instance::new(NodeId::from_bytes([1; 16]));
        let c = ClientId::from_path(b"c");
        let n = MATERIALIZE_AT as usize + 100;
        for k in 0..n {
            i.write_at(b"c", &loc("v", &k.to_string()), secret("x"), 1)
                .unwrap();
        }
        for k in (0..n).step_by(7) {
            i.delete_at(b"c", &loc("v", &k.to_string()), 2).unwrap();
        }
        for k in (0..n).step_by(5) {
            i.write_at(b"c", &loc("v", &k.to_string()), secret("y"), 3)
                .unwrap();
        }
        let mut other = Instance::new(NodeId::from_bytes([2; 16]));
        other
            .write_at(b"c", &loc("w", "new"), secret("z"), 9)
            .unwrap();
        let rec = other.record(&c, loc("w", "new").ids()).unwrap().clone();
        i.merge_record(b"c", rec, MergePolicy::Newest).unwrap();
        assert_eq!(i.sketch(&c).unwrap().len(), n as u64 + 1);
        assert!(i.sketches_match_records(500));
        // The check itself catches a drifted sketch.
        let mut drifted = i.clone();
        let rec = drifted.records(&c).next().unwrap().clone();
        let ids = rec.location().ids();
        drifted
            .clients
            .get_mut(&c)
            .unwrap()
            .sketch
            .remove(&Element::of(&c, &rec.shape()), ids);
        assert!(!drifted.sketches_match_records(500));
    }
}
