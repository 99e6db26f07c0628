//! Reads of the records, each from its row in the file: one version by location, a client's
//! versions in location order, and the whole state when a caller asks for all of it.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use redoubt_vault::{ClientId, Instance, Record, RecordId, VaultId};

use super::{Store, load_records, open_record_row, sketch::Before};
use crate::{Error, tables::RECORDS};

/// Rows [`Store::records_after`] reads in one read transaction.
const PAGE: usize = 256;

/// One client's location ids in order, as of a commit generation.
#[derive(Debug)]
pub(crate) struct Order {
    generation: u64,
    client: ClientId,
    ids: Arc<Vec<(VaultId, RecordId)>>,
}

impl Store {
    /// The version `client` holds at `ids`, read from its row.
    pub fn record_at(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Record>, Error> {
        let row = self.keys.record_row(client, ids);
        let tx = self.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let Some(value) = table.get(&row)? else {
            return Ok(None);
        };
        let (_, record) = open_record_row(&self.keys, &row, value.value())?;
        Ok(Some(record))
    }

    /// What a write plans against: the version held at `ids` and what the row was. A row that
    /// does not open counts as absent, and the write replaces it ([`Before::Damaged`]).
    pub(super) fn held(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<(Option<Record>, Before), Error> {
        match self.record_at(client, ids) {
            Ok(Some(record)) => {
                let before = Before::of(&record);
                Ok((Some(record), before))
            }
            Ok(None) => Ok((None, Before::Absent)),
            Err(Error::RecordCorrupted { .. }) => Ok((None, Before::Damaged)),
            Err(e) => Err(e),
        }
    }

    /// Every client held: its id and path.
    pub fn clients(&self) -> impl Iterator<Item = (&ClientId, &[u8])> {
        self.sketch.clients()
    }

    /// The path of a client held, by id.
    pub fn client_path(&self, client: &ClientId) -> Option<&[u8]> {
        self.sketch
            .clients()
            .find(|(id, _)| *id == client)
            .map(|(_, path)| path)
    }

    /// Versions held over all clients, tombstones included (from the kept counts).
    pub fn len(&self) -> u64 {
        self.usage_counts().map(|(_, records, _)| records).sum()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `client`'s versions whose location ids come after `after` (from the first when
    /// `None`), in location order, each read from its row as the walk reaches it (rows that
    /// do not open are passed over, as [`Self::damaged_rows`] lists them). The order is built
    /// once per commit by opening every row of the file, and kept for the walks that follow.
    pub fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> Result<RecordsAfter<'_>, Error> {
        let ids = self.order_of(client)?;
        let at = match after {
            Some(key) => ids.partition_point(|x| *x <= key),
            None => 0,
        };
        Ok(RecordsAfter {
            store: self,
            client: *client,
            ids,
            at,
            page: Vec::new().into_iter(),
            failed: false,
        })
    }

    /// Every version held for `client`, tombstones included, ordered by location ids (read
    /// from the file: a cost in the client's size).
    pub fn records(&self, client: &ClientId) -> Result<Vec<Record>, Error> {
        self.records_after(client, None)?.collect()
    }

    /// The whole state as an in-memory replica: every record row that opens, and the clock.
    /// Reads the whole file; for exports, local syncs and checks, not for serving.
    pub fn load_instance(&self) -> Result<Instance, Error> {
        let (instance, _) =
            load_records(&self.db.begin_read()?, &self.keys, self.node, self.clock)?;
        Ok(instance)
    }

    /// [`Instance::state_digest`] of [`Self::load_instance`]: reads the whole file.
    pub fn state_digest(&self) -> Result<[u8; 32], Error> {
        Ok(self.load_instance()?.state_digest())
    }

    /// Opens every record row and notes those that do not open ([`Self::damaged_rows`]);
    /// returns how many do not. Reads the whole file.
    pub fn verify(&mut self) -> Result<usize, Error> {
        let (_, damaged) = load_records(&self.db.begin_read()?, &self.keys, self.node, self.clock)?;
        self.damaged = damaged;
        Ok(self.damaged.len())
    }

    /// `client`'s location ids in order, from the cache when no commit came since.
    fn order_of(&self, client: &ClientId) -> Result<Arc<Vec<(VaultId, RecordId)>>, Error> {
        let mut cache = self
            .order
            .lock()
            .map_err(|_| Error::Corrupted("the location order cache was poisoned"))?;
        if let Some(o) = cache.as_ref()
            && o.generation == self.generation
            && o.client == *client
        {
            return Ok(Arc::clone(&o.ids));
        }
        let mut ids = Vec::new();
        if self.sketch.sums(client).is_some() {
            let tx = self.db.begin_read()?;
            for row in tx.open_table(RECORDS)?.iter()? {
                let (key, value) = row?;
                if let Ok((path, record)) = open_record_row(&self.keys, key.value(), value.value())
                    && ClientId::from_path(&path) == *client
                {
                    ids.push(record.location().ids());
                }
            }
        }
        ids.sort_unstable();
        let ids = Arc::new(ids);
        *cache = Some(Order {
            generation: self.generation,
            client: *client,
            ids: Arc::clone(&ids),
        });
        Ok(ids)
    }
}

/// The walk of [`Store::records_after`]: reads [`PAGE`] rows per read transaction.
pub struct RecordsAfter<'a> {
    store: &'a Store,
    client: ClientId,
    ids: Arc<Vec<(VaultId, RecordId)>>,
    at: usize,
    page: std::vec::IntoIter<Record>,
    failed: bool,
}

impl RecordsAfter<'_> {
    fn fill(&mut self) -> Result<(), Error> {
        let tx = self.store.db.begin_read()?;
        let table = tx.open_table(RECORDS)?;
        let mut page = Vec::with_capacity(PAGE);
        while page.len() < PAGE && self.at < self.ids.len() {
            let ids = self.ids[self.at];
            self.at += 1;
            let row = self.store.keys.record_row(&self.client, ids);
            let Some(value) = table.get(&row)? else {
                continue;
            };
            if let Ok((_, record)) = open_record_row(&self.store.keys, &row, value.value()) {
                page.push(record);
            }
        }
        self.page = page.into_iter();
        Ok(())
    }
}

impl Iterator for RecordsAfter<'_> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(r) = self.page.next() {
                return Some(Ok(r));
            }
            if self.at >= self.ids.len() {
                return None;
            }
            if let Err(e) = self.fill() {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}
