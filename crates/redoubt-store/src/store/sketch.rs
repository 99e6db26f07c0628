//! The store's kept reconciliation state ([`crate::sketch_rows`]): every client's sketch sums
//! in memory, loaded at open from the `clients` rows and the deltas since the last checkpoint,
//! and the `sketch index` on disk; every commit updates both in its own transaction.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableError};
use redoubt_vault::{
    ClientId, Instance, Record, Shape,
    sketch::{Element, Lookup, SketchSums},
};

use crate::{
    Error,
    envelope::{
        CLIENT_AAD_LABEL, SKETCH_DELTA_AAD_LABEL, open_state_capped, random_nonce, seal_state,
    },
    keys::Keys,
    sketch_rows::{
        ClientRow, DeltaEntry, MAX_CLIENT_ENVELOPE, MAX_DELTA_ENTRIES, MAX_DELTA_ENVELOPE,
        MAX_INDEX_ROWS, decode_delta, decode_index, encode_delta, encode_index,
    },
    tables::{CLIENTS, SKETCH_DELTAS, Tables},
};

/// Delta rows kept before a commit writes a checkpoint (every changed client's row) and
/// deletes them: what an open replays at most.
pub(crate) const CHECKPOINT_EVERY: u64 = 256;

/// One client's kept sums.
#[derive(Clone, Debug)]
struct Kept {
    path: Vec<u8>,
    /// The last delta its `clients` row includes.
    through: u64,
    /// Stored bytes of its records (the quota's count).
    bytes: u64,
    sums: SketchSums,
    /// Changed since its row was written.
    dirty: bool,
}

/// Every client's sums, and where the deltas stand.
#[derive(Debug, Default)]
pub(crate) struct SketchState {
    clients: BTreeMap<ClientId, Kept>,
    /// The sequence number the next delta takes.
    next: u64,
    /// Delta rows written since the last checkpoint.
    pending: u64,
}

/// What a record row held before a commit writes it.
#[derive(Clone, Debug)]
pub(crate) enum Before {
    /// No row.
    Absent,
    /// A version of this shape and stored length.
    Held { shape: Shape, stored: u64 },
    /// A row that does not open: its version is unknown, so its client's sums and bytes are
    /// rebuilt from every record row that opens.
    Damaged,
}

impl Before {
    /// What `record` (held at the row) was.
    pub(crate) fn of(record: &Record) -> Self {
        Self::Held {
            shape: record.shape(),
            stored: redoubt_vault::stored_len(record),
        }
    }
}

/// One record row a commit writes: its client, row, and the versions before and after.
pub(crate) struct RowChange<'a> {
    pub(crate) client: &'a [u8],
    pub(crate) row: [u8; 32],
    pub(crate) before: Before,
    pub(crate) new: &'a Record,
}

/// What a commit made of the sums, to keep once it has committed.
pub(crate) struct Staged {
    clients: Vec<(ClientId, Kept)>,
    checkpoint: bool,
    next: u64,
}

impl SketchState {
    /// The kept sums of `client`.
    pub(crate) fn sums(&self, client: &ClientId) -> Option<&SketchSums> {
        self.clients.get(client).map(|k| &k.sums)
    }

    /// Loads the state of a format 2 store: every `clients` row, then every delta newer than
    /// a row applied to it.
    pub(crate) fn load(tx: &ReadTransaction, keys: &Keys) -> Result<Self, Error> {
        let mut state = Self {
            next: 1,
            ..Self::default()
        };
        let clients = match tx.open_table(CLIENTS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(state),
            Err(e) => return Err(e.into()),
        };
        for row in clients.iter()? {
            let (key, value) = row?;
            let row = open_client_row(keys, key.value(), value.value())?;
            let id = ClientId::from_path(&row.path);
            if keys.client_row(&id) != *key.value() {
                return Err(Error::Corrupted(
                    "a clients row is not under its client's id",
                ));
            }
            state.next = state.next.max(row.through + 1);
            state.clients.insert(
                id,
                Kept {
                    path: row.path,
                    through: row.through,
                    bytes: row.bytes,
                    sums: row.sums,
                    dirty: false,
                },
            );
        }
        let deltas = match tx.open_table(SKETCH_DELTAS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(state),
            Err(e) => return Err(e.into()),
        };
        for row in deltas.iter()? {
            let (seq, value) = row?;
            let seq = seq.value();
            let plain = open_state_capped(
                &keys.state,
                SKETCH_DELTA_AAD_LABEL,
                &seq.to_be_bytes(),
                value.value(),
                MAX_DELTA_ENVELOPE,
                "a sketch delta row does not open",
            )?;
            for entry in decode_delta(&plain)? {
                let kept = state
                    .clients
                    .get_mut(&entry.client)
                    .ok_or(Error::Corrupted(
                        "a sketch delta names a client without a row",
                    ))?;
                if seq > kept.through {
                    entry.apply(&mut kept.sums, &mut kept.bytes);
                    kept.dirty = true;
                }
            }
            state.next = state.next.max(seq + 1);
            state.pending += 1;
        }
        Ok(state)
    }

    /// Builds the state of `instance` and writes all of it (every client's row, every index
    /// row) into `t`: a new store's first transaction, or a format 1 store's migration.
    pub(crate) fn create(
        t: &mut Tables<'_>,
        keys: &Keys,
        instance: &Instance,
    ) -> Result<Self, Error> {
        let mut state = Self {
            next: 1,
            ..Self::default()
        };
        for (id, path) in instance.clients() {
            let mut sums = SketchSums::default();
            let mut bytes = 0u64;
            for record in instance.records(id) {
                let e = Element::of(id, &record.shape());
                sums.insert(e.key, &e.hash);
                bytes += redoubt_vault::stored_len(record);
                let row = keys.record_row(id, record.location().ids());
                index_add(t, keys, id, e.key, row)?;
            }
            let kept = Kept {
                path: path.to_vec(),
                through: 0,
                bytes,
                sums,
                dirty: false,
            };
            write_client_row(t, keys, id, &kept)?;
            state.clients.insert(*id, kept);
        }
        Ok(state)
    }

    /// Writes what `changes` do to the sketch state into `t` (index rows, and a delta row or
    /// a checkpoint), and returns the sums to keep once `t`'s transaction commits. Runs before
    /// the commit's record rows are written: a client with a damaged row among `changes` is
    /// rebuilt from the rows as they were.
    pub(crate) fn stage(
        &self,
        t: &mut Tables<'_>,
        keys: &Keys,
        changes: &[RowChange<'_>],
    ) -> Result<Staged, Error> {
        let seq = self.next;
        let rebuild: Vec<ClientId> = changes
            .iter()
            .filter(|c| matches!(c.before, Before::Damaged))
            .map(|c| ClientId::from_path(c.client))
            .collect();
        let mut touched: BTreeMap<ClientId, Kept> = BTreeMap::new();
        let mut rewrite: Vec<ClientId> = Vec::new();
        let mut entries = Vec::new();
        for c in changes {
            let id = ClientId::from_path(c.client);
            if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(id) {
                let mut k = self.clients.get(&id).cloned().unwrap_or_else(|| Kept {
                    path: c.client.to_vec(),
                    through: 0,
                    bytes: 0,
                    sums: SketchSums::default(),
                    dirty: true,
                });
                if rebuild.contains(&id) {
                    (k.sums, k.bytes) = rebuilt(t, keys, &id)?;
                    rewrite.push(id);
                }
                slot.insert(k);
            }
            let Some(kept) = touched.get_mut(&id) else {
                continue;
            };
            let new = Element::of(&id, &c.new.shape());
            let new_stored = redoubt_vault::stored_len(c.new);
            if let Before::Held { shape, stored } = &c.before {
                let old = Element::of(&id, shape);
                if old == new && *stored == new_stored {
                    continue;
                }
                let e = DeltaEntry {
                    client: id,
                    insert: false,
                    key: old.key,
                    hash: old.hash,
                    stored: *stored,
                };
                e.apply(&mut kept.sums, &mut kept.bytes);
                entries.push(e);
                if old.key != new.key {
                    index_remove(t, keys, &id, old.key, c.row)?;
                }
            }
            let e = DeltaEntry {
                client: id,
                insert: true,
                key: new.key,
                hash: new.hash,
                stored: new_stored,
            };
            e.apply(&mut kept.sums, &mut kept.bytes);
            entries.push(e);
            index_add(t, keys, &id, new.key, c.row)?;
            kept.dirty = true;
        }
        let checkpoint = self.pending + 1 >= CHECKPOINT_EVERY || entries.len() > MAX_DELTA_ENTRIES;
        if checkpoint {
            // Every client changed since the last checkpoint, this commit's included, gets
            // its row rewritten through this delta; then no delta is needed any more.
            let mut all: BTreeMap<ClientId, Kept> = self
                .clients
                .iter()
                .filter(|(_, k)| k.dirty)
                .map(|(id, k)| (*id, k.clone()))
                .collect();
            all.extend(touched);
            for (id, kept) in &mut all {
                kept.through = seq;
                kept.dirty = false;
                write_client_row(t, keys, id, kept)?;
            }
            let old: Vec<u64> = t
                .deltas
                .iter()?
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            for k in old {
                t.deltas.remove(k)?;
            }
            return Ok(Staged {
                clients: all.into_iter().collect(),
                checkpoint: true,
                next: seq + 1,
            });
        }
        for (id, kept) in &mut touched {
            if !self.clients.contains_key(id) || rewrite.contains(id) {
                // A new client's row, or a rebuilt one, is written at once, through this
                // delta (which replay then skips for it).
                kept.through = seq;
                kept.dirty = false;
                write_client_row(t, keys, id, kept)?;
            }
        }
        if !entries.is_empty() {
            let plain = encode_delta(&entries)?;
            let sealed = seal_state(
                &keys.state,
                SKETCH_DELTA_AAD_LABEL,
                &seq.to_be_bytes(),
                &plain,
                &random_nonce()?,
            )?;
            t.deltas.insert(seq, sealed.as_slice())?;
        }
        let wrote = !entries.is_empty() || !rewrite.is_empty();
        Ok(Staged {
            clients: touched.into_iter().collect(),
            checkpoint: false,
            next: if wrote { seq + 1 } else { seq },
        })
    }

    /// Keeps what [`Self::stage`] made, once its transaction committed.
    pub(crate) fn committed(&mut self, staged: Staged) {
        let wrote_delta = staged.next > self.next;
        self.next = staged.next;
        if staged.checkpoint {
            self.pending = 0;
            for kept in self.clients.values_mut() {
                kept.dirty = false;
            }
        } else if wrote_delta {
            self.pending += 1;
        }
        self.clients.extend(staged.clients);
    }

    /// Every client's path, by id.
    pub(crate) fn clients(&self) -> impl Iterator<Item = (&ClientId, &[u8])> {
        self.clients.iter().map(|(id, k)| (id, k.path.as_slice()))
    }
}

/// Where `client`'s version with element key `key` lives, from the index on disk: each row it
/// names is opened by `open_row` (client path and record) and must hold that very version. A
/// row that no longer does (absent, or another version: an entry left by a damaged row's
/// repair, or altered) is passed over, so the index can hide a version but never name a wrong
/// one; a row that does not open is its error.
pub(crate) fn locate(
    tx: &ReadTransaction,
    keys: &Keys,
    client: &ClientId,
    key: u64,
    open_row: impl Fn(&[u8; 32]) -> Result<Option<(Vec<u8>, Record)>, Error>,
) -> Result<Lookup, Error> {
    let table = match tx.open_table(crate::tables::SKETCH_INDEX) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Lookup::Absent),
        Err(e) => return Err(e.into()),
    };
    let Some(value) = table.get(&keys.index_row(client, key))? else {
        return Ok(Lookup::Absent);
    };
    let mut found = Vec::new();
    for row in decode_index(value.value())? {
        let Some((path, record)) = open_row(&row)? else {
            continue;
        };
        if ClientId::from_path(&path) == *client && Element::of(client, &record.shape()).key == key
        {
            found.push(record.location().ids());
        }
    }
    Ok(match found.as_slice() {
        [] => Lookup::Absent,
        [(v, r)] => Lookup::One(*v, *r),
        _ => Lookup::Ambiguous,
    })
}

/// The sums and stored bytes of `client` rebuilt from every record row of `t` that opens.
fn rebuilt(t: &Tables<'_>, keys: &Keys, client: &ClientId) -> Result<(SketchSums, u64), Error> {
    let mut sums = SketchSums::default();
    let mut bytes = 0u64;
    for row in t.records.iter()? {
        let (key, value) = row?;
        let Ok((path, record)) = super::open_record_row(keys, key.value(), value.value()) else {
            continue;
        };
        if ClientId::from_path(&path) == *client {
            let e = Element::of(client, &record.shape());
            sums.insert(e.key, &e.hash);
            bytes += redoubt_vault::stored_len(&record);
        }
    }
    Ok((sums, bytes))
}

fn index_add(
    t: &mut Tables<'_>,
    keys: &Keys,
    client: &ClientId,
    key: u64,
    row: [u8; 32],
) -> Result<(), Error> {
    let at = keys.index_row(client, key);
    let mut rows = match t.index.get(&at)? {
        Some(v) => decode_index(v.value())?,
        None => Vec::new(),
    };
    if rows.contains(&row) {
        return Ok(());
    }
    if rows.len() >= MAX_INDEX_ROWS {
        return Err(Error::Corrupted(
            "more than 64 versions share one sketch key",
        ));
    }
    rows.push(row);
    t.index.insert(&at, encode_index(&rows)?.as_slice())?;
    Ok(())
}

fn index_remove(
    t: &mut Tables<'_>,
    keys: &Keys,
    client: &ClientId,
    key: u64,
    row: [u8; 32],
) -> Result<(), Error> {
    let at = keys.index_row(client, key);
    let rows = match t.index.get(&at)? {
        Some(v) => decode_index(v.value())?,
        None => {
            return Err(Error::Corrupted(
                "the sketch index lacks a version the store holds",
            ));
        }
    };
    let rest: Vec<[u8; 32]> = rows.into_iter().filter(|r| *r != row).collect();
    if rest.is_empty() {
        t.index.remove(&at)?;
    } else {
        t.index.insert(&at, encode_index(&rest)?.as_slice())?;
    }
    Ok(())
}

fn write_client_row(
    t: &mut Tables<'_>,
    keys: &Keys,
    id: &ClientId,
    kept: &Kept,
) -> Result<(), Error> {
    let row = keys.client_row(id);
    let plain = zeroize::Zeroizing::new(
        ClientRow {
            path: kept.path.clone(),
            through: kept.through,
            bytes: kept.bytes,
            sums: kept.sums.clone(),
        }
        .encode()?,
    );
    let sealed = seal_state(
        &keys.state,
        CLIENT_AAD_LABEL,
        &row,
        &plain,
        &random_nonce()?,
    )?;
    t.clients.insert(&row, sealed.as_slice())?;
    Ok(())
}

/// Opens and decodes a sealed `clients` row.
pub(crate) fn open_client_row(
    keys: &Keys,
    row: &[u8; 32],
    bytes: &[u8],
) -> Result<ClientRow, Error> {
    let plain = open_state_capped(
        &keys.state,
        CLIENT_AAD_LABEL,
        row,
        bytes,
        MAX_CLIENT_ENVELOPE,
        "a clients row does not open",
    )?;
    ClientRow::decode(&plain)
}

impl super::Store {
    /// The sketch sums kept of `client`'s versions (tombstones included), as the last commit
    /// left them: read from the `clients` row and the deltas at open, never rebuilt from the
    /// records.
    pub fn sketch_sums(&self, client: &ClientId) -> Option<&SketchSums> {
        self.sketch.sums(client)
    }

    /// Where `client`'s version whose element key is `key` lives, from the `sketch index`;
    /// each record row it names is opened and checked to hold that version
    /// ([`Error::Corrupted`] when not).
    pub fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, Error> {
        let tx = self.db.begin_read()?;
        let records = tx.open_table(crate::tables::RECORDS)?;
        locate(&tx, &self.keys, client, key, |row| {
            let Some(value) = records.get(row)? else {
                return Ok(None);
            };
            super::open_record_row(&self.keys, row, value.value()).map(Some)
        })
    }

    /// Every client's record count and stored bytes ([`redoubt_vault::stored_len`] summed),
    /// as kept with the sums: what the merge quota starts from.
    pub fn usage_counts(&self) -> impl Iterator<Item = (ClientId, u64, u64)> + '_ {
        self.sketch
            .clients
            .iter()
            .map(|(id, k)| (*id, k.sums.len(), k.bytes))
    }

    /// Whether the kept sketch state agrees with the records held: every client's sums and
    /// stored bytes equal those built afresh from its records, and the index locates every
    /// version. A self-check for tests and the reliability suite; it reads every record.
    pub fn sketches_match_records(&self) -> Result<bool, Error> {
        let instance = self.load_instance()?;
        let mut clients = 0;
        for (id, _) in instance.clients() {
            clients += 1;
            let mut fresh = SketchSums::default();
            let mut bytes = 0u64;
            for record in instance.records(id) {
                let e = Element::of(id, &record.shape());
                fresh.insert(e.key, &e.hash);
                bytes += redoubt_vault::stored_len(record);
                let ids = record.location().ids();
                match self.locate(id, e.key)? {
                    Lookup::One(v, r) if (v, r) == ids => {}
                    Lookup::Ambiguous => {}
                    _ => return Ok(false),
                }
            }
            let Some(kept) = self.sketch.clients.get(id) else {
                return Ok(false);
            };
            if kept.bytes != bytes || !sums_equal(&kept.sums, &fresh) {
                return Ok(false);
            }
        }
        Ok(clients == self.sketch.clients().count())
    }
}

/// Whether two sums hold the same elements: the same count, digest and symbols (kept keys
/// compared as multisets, since their order depends on the order of writes).
fn sums_equal(a: &SketchSums, b: &SketchSums) -> bool {
    use redoubt_vault::sketch::{MAX_SYMBOLS, Symbol};
    if a.len() != b.len() || a.digest() != b.digest() {
        return false;
    }
    let (mut x, mut y) = (
        vec![Symbol::default(); MAX_SYMBOLS],
        vec![Symbol::default(); MAX_SYMBOLS],
    );
    a.add_symbols(0, &mut x);
    b.add_symbols(0, &mut y);
    x == y
}
