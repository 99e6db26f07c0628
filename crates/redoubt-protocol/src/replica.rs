//! What a session reads of the replica it syncs: the clients held, each client's kept sketch,
//! its records in location order, and one record by key. A store implements [`Replica`] and
//! every session runs over it (iroh-docs' `ranger::Store` plays the same part); sessions read,
//! never write: merging what a pull received is the caller's.

use std::{borrow::Cow, convert::Infallible};

use redoubt_vault::{
    ClientId, Instance, Record, RecordId, VaultId,
    sketch::{Lookup, SketchSums},
};

use crate::Error;

/// A replica as a sync session reads it.
///
/// Values come as [`Cow`]: an in-memory store lends them, a store on disk may hand out owned
/// copies. Records of one client come in strictly increasing `(vault id, record id)` order,
/// as both sides' merge-joins and the requester's order check rely on. A client path is 1 to
/// [`MAX_PATH_LEN`](redoubt_vault::MAX_PATH_LEN) bytes, as the
/// vault model allows: a longer one ends the session with
/// [`Error::Vault`] before it is written to a frame.
///
/// Every read may fail ([`Self::Error`]: an I/O error or a corrupt entry of a store on disk).
/// A failure is never taken for "absent": it ends the session with [`Error::Replica`], and the
/// responder answers with [`crate::RefusalCode::Internal`], so a pull never reports a partial
/// complement as complete. `Ok(None)` means the replica really does not hold it.
///
/// The trait is not object-safe (its iterator is an `impl Iterator` and its error an
/// associated type): sessions take `&impl Replica`, monomorphised per store.
pub trait Replica {
    /// Why a read failed ([`Infallible`] for a store in memory).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The path of `client`, when the replica holds it.
    fn client_path(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, Self::Error>;

    /// The sketch sums kept of the whole of `client` (every record's version), when the
    /// replica holds it.
    fn sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, Self::Error>;

    /// Where `client`'s version whose element key is `key` lives ([`Lookup::Absent`] when the
    /// replica does not hold the client). A store may answer from an index on disk; what it
    /// names is checked against the record read back before anything is sent.
    fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, Self::Error>;

    /// The records of `client` after the location `after` (from the first when `None`), in
    /// location order; an item that could not be read is an `Err`, after which the session
    /// reads no further.
    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, Self::Error>>;

    /// The record of `client` at the location `ids`.
    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Self::Error>;

    /// Whether the replica holds `client`.
    fn holds(&self, client: &ClientId) -> Result<bool, Self::Error> {
        Ok(self.client_path(client)?.is_some())
    }
}

/// A failed read of a replica, as the session's error.
pub(crate) fn failed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::Replica(Box::new(e))
}

/// Extension methods that read a replica and map its failure to [`Error::Replica`].
pub(crate) trait ReplicaExt: Replica {
    fn path_of(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, Error> {
        self.client_path(client).map_err(failed)
    }

    fn record_at(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Error> {
        self.record(client, ids).map_err(failed)
    }

    fn has(&self, client: &ClientId) -> Result<bool, Error> {
        self.holds(client).map_err(failed)
    }

    fn kept_sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, Error> {
        self.sketch(client).map_err(failed)
    }

    fn locate_key(&self, client: &ClientId, key: u64) -> Result<Lookup, Error> {
        self.locate(client, key).map_err(failed)
    }

    fn walk(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, Error>> {
        self.records_after(client, after).map(|r| r.map_err(failed))
    }
}

impl<R: Replica> ReplicaExt for R {}

impl Replica for Instance {
    type Error = Infallible;

    fn client_path(&self, client: &ClientId) -> Result<Option<Cow<'_, [u8]>>, Infallible> {
        Ok(Instance::client_path(self, client).map(Cow::Borrowed))
    }

    fn sketch(&self, client: &ClientId) -> Result<Option<Cow<'_, SketchSums>>, Infallible> {
        Ok(Instance::sketch(self, client).map(|s| Cow::Borrowed(s.sums())))
    }

    fn locate(&self, client: &ClientId, key: u64) -> Result<Lookup, Infallible> {
        Ok(Instance::sketch(self, client).map_or(Lookup::Absent, |s| s.locate(key)))
    }

    fn records_after(
        &self,
        client: &ClientId,
        after: Option<(VaultId, RecordId)>,
    ) -> impl Iterator<Item = Result<Cow<'_, Record>, Infallible>> {
        Instance::records_after(self, client, after).map(|r| Ok(Cow::Borrowed(r)))
    }

    fn record(
        &self,
        client: &ClientId,
        ids: (VaultId, RecordId),
    ) -> Result<Option<Cow<'_, Record>>, Infallible> {
        Ok(Instance::record(self, client, ids).map(Cow::Borrowed))
    }
}
