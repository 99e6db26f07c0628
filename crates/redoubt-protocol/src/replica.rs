//! What a session reads of the replica it syncs: the clients held, each client's kept sketch,
//! its records in location order, and one record by key. A store implements [`Replica`] and
//! every session runs over it (iroh-docs' `ranger::Store` plays the same part); sessions read,
//! never write: merging what a pull received is the caller's.

use std::borrow::Cow;

use redoubt_vault::{ClientId, Instance, Record, RecordId, VaultId, sketch::ClientSketch};

/// A replica as a sync session reads it.
///
/// Values come as [`Cow`]: an in-memory store lends them, a store on disk may hand out owned
/// copies. Records of one client come in strictly increasing `(vault id, record id)` order,
/// as both sides' merge-joins and the requester's order check rely on.
pub trait Replica {
    /// The path of `client`, when the replica holds it.
    fn client_path(&self, client: &ClientId) -> Option<Cow<'_, [u8]>>;

    /// The sketch kept of the whole of `client` (every record's version), when the replica
    /// holds it.
    fn sketch(&self, client: &ClientId) -> Option<Cow<'_, ClientSketch>>;

    /// The records of `client` after the location `after` (from the first when `None`), in
    /// location order.
    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Cow<'_, Record>>;

    /// The record of `client` at the location `ids`.
    fn record(&self, client: &ClientId, ids: (VaultId, RecordId)) -> Option<Cow<'_, Record>>;

    /// Whether the replica holds `client`.
    fn holds(&self, client: &ClientId) -> bool {
        self.client_path(client).is_some()
    }
}

impl Replica for Instance {
    fn client_path(&self, client: &ClientId) -> Option<Cow<'_, [u8]>> {
        Instance::client_path(self, client).map(Cow::Borrowed)
    }

    fn sketch(&self, client: &ClientId) -> Option<Cow<'_, ClientSketch>> {
        Instance::sketch(self, client).map(Cow::Borrowed)
    }

    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Cow<'_, Record>> {
        Instance::records_after(self, client, after).map(Cow::Borrowed)
    }

    fn record(&self, client: &ClientId, ids: (VaultId, RecordId)) -> Option<Cow<'_, Record>> {
        Instance::record(self, client, ids).map(Cow::Borrowed)
    }
}
