//! What a sync session reads of the [`Vault`]: its store's records, and the sketch state the
//! store keeps (the sums loaded at open, the index on disk) rather than one rebuilt in memory.

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
        Ok(self.instance().client_path(client).map(Cow::Borrowed))
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
        self.instance()
            .records_after(client, after)
            .map(|r| Ok(Cow::Borrowed(r)))
    }

    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Self::Error> {
        Ok(self.instance().record(client, ids).map(Cow::Borrowed))
    }
}
