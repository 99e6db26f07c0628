//! What a sync session reads of the [`Vault`]: its store's records, each read from its row
//! when the session reaches it, and the sketch state the store keeps (the sums loaded at open,
//! the index on disk) rather than one rebuilt in memory.

use std::borrow::Cow;

use redoubt_protocol::Replica;
use redoubt_vault::{
    ClientId, Record, RecordId, VaultId,
    sketch::{Lookup, SketchSums},
};

use crate::Vault;

impl Replica for Vault {
    type Error = redoubt_store::Error;

    fn client_path(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, Self::Error> {
        Ok(self.store().client_path(client).map(Cow::Borrowed))
    }

    fn sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, Self::Error> {
        Ok(self.store().sketch_sums(client).map(Cow::Borrowed))
    }

    fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, Self::Error> {
        self.store().locate(client, key)
    }

    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, Self::Error>> {
        // A walk that cannot start is one failed item: the session ends on it.
        let (walk, failed) = match self.store().records_after(client, after) {
            Ok(walk) => (Some(walk), None),
            Err(e) => (None, Some(Err(e))),
        };
        failed
            .into_iter()
            .chain(walk.into_iter().flatten())
            .map(|r| r.map(Cow::Owned))
    }

    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Self::Error> {
        Ok(self.store().record_at(client, ids)?.map(Cow::Owned))
    }
}
