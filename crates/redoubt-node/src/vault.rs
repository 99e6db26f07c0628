//! The [`Vault`]: the one owner of a vault's state, through which every change goes, each one
//! committed before it returns `Ok`; and the node's private, lock-holding handle on it.

use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use redoubt_store::{KdfParams, Password, Store};
use redoubt_sync::{MergeTarget, quota::Usage};
use redoubt_vault::{
    AccessTable, ClientId, Instance, Location, MergeBounds, MergePolicy, MergeReport, Record,
    RecordId, Rights, SecretValue, Stamp, VaultId,
};

use crate::{
    Error,
    changes::{Changes, Notifier, Origin, What},
};

/// The one owner of a vault: the database, the key, the identity and the grants. Every change goes through it — a local write, a merge from a peer, a grant — and
/// is committed (durably, for a vault on a file) before it returns `Ok`.
///
/// A node takes its vault at [`crate::spawn`] and keeps it; the app reads and changes it
/// through [`crate::Handle::read`] and [`crate::Handle::write`]. Merges from peers go through
/// [`MergeTarget`], each verified batch one commit of the store
/// ([`Store::merge_batch`]).
#[derive(Debug)]
pub struct Vault {
    store: Store,
    /// What the vault holds, for the quota on merges: counted at the first merge, kept up to
    /// date by merges, dropped by every other change.
    usage: Option<Usage>,
    /// Where each committed change is told to the app's subscribers.
    changes: Notifier,
}

impl Vault {
    /// A vault over `store`: durable when the store is a file ([`Store::create`],
    /// [`Store::open`], [`Store::create_from_snapshot`]).
    pub fn new(store: Store) -> Self {
        Self {
            store,
            usage: None,
            changes: Notifier::new(),
        }
    }

    /// A stream of the changes committed from now on: each changed location and why (a local
    /// write, a merge from a peer, a resolved conflict), sent after its commit. A subscriber
    /// that falls [`crate::CHANGE_BUFFER`] changes behind receives
    /// [`crate::ChangeEvent::Lagged`] instead of what it missed, and should re-read.
    pub fn changes(&self) -> Changes {
        self.changes.subscribe()
    }

    /// A vault in memory (redb's in-memory backend) holding `instance`'s records and clock and
    /// the grants of `access`, for tests, examples and benches: nothing outlives the process.
    /// Local writes are stamped by `instance`'s node id; see [`Store::in_memory_from`].
    pub fn in_memory(instance: Instance, access: AccessTable) -> Result<Self, Error> {
        Ok(Self::new(Store::in_memory_from(instance, &access)?))
    }

    /// The store: its identity, journal, path, and reads that open rows from the database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, to change what is this device's bookkeeping (the address book).
    pub(crate) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Every grant: which peer may read or write which client.
    pub fn grants(&self) -> &AccessTable {
        self.store.grants()
    }

    /// Writes `value` at `loc` of `client`, stamped now; committed when it returns.
    pub fn put(
        &mut self,
        client: &[u8],
        loc: &Location,
        value: SecretValue,
    ) -> Result<Stamp, Error> {
        self.usage = None;
        let stamp = self.store.put(client, loc, value)?;
        self.changes.local(client, loc, What::Written);
        Ok(stamp)
    }

    /// Deletes the live record at `loc` of `client`, leaving a tombstone stamped now;
    /// committed when it returns. Fails with the vault's `RecordNotFound` when none is live.
    pub fn delete(&mut self, client: &[u8], loc: &Location) -> Result<Stamp, Error> {
        self.usage = None;
        let stamp = self.store.delete(client, loc)?;
        self.changes.local(client, loc, What::Deleted);
        Ok(stamp)
    }

    /// Makes the version hashed `version` of the record at `loc` of `client` current again as
    /// a new write stamped now (its parent is the current version); committed when it returns.
    /// Fails with the vault's `VersionNotFound` when the record holds no such version.
    pub fn revert(
        &mut self,
        client: &[u8],
        loc: &Location,
        version: &[u8; 32],
    ) -> Result<Stamp, Error> {
        self.usage = None;
        let stamp = self.store.revert(client, loc, version)?;
        self.changes.local(client, loc, What::Written);
        Ok(stamp)
    }

    /// The live value at `loc` of `client` (read and checked from the database), or `None`
    /// when absent or deleted.
    pub fn get(&self, client: &[u8], loc: &Location) -> Result<Option<SecretValue>, Error> {
        Ok(self.store.get(client, loc)?)
    }

    /// Sets exactly `rights` for `peer` on `client`; no rights removes the grant. Committed
    /// when it returns. Grants are kept by the peer id's base58 text, the form a peer is
    /// checked against when it connects.
    pub fn set_rights(
        &mut self,
        peer: &PeerId,
        client: &[u8],
        rights: Rights,
    ) -> Result<(), Error> {
        Ok(self
            .store
            .set_rights(peer.to_base58().as_bytes(), client, rights)?)
    }

    /// Sets exactly the given rights for `peer` on each client of `grants` in ONE commit: all
    /// of them are recorded, or none is.
    pub fn set_rights_many(
        &mut self,
        peer: &PeerId,
        grants: &[(&[u8], Rights)],
    ) -> Result<(), Error> {
        Ok(self
            .store
            .set_rights_many(peer.to_base58().as_bytes(), grants)?)
    }

    /// Removes `peer`'s grant on `client`, or on every client when `None`, in one commit;
    /// returns how many were removed.
    pub fn revoke(&mut self, peer: &PeerId, client: Option<&[u8]>) -> Result<usize, Error> {
        Ok(self.store.revoke(peer.to_base58().as_bytes(), client)?)
    }

    /// Rewraps the vault's data key under `new` (a fresh salt, `params`) after checking `old`;
    /// no record is rewritten. Committed when it returns; on any error the old password still
    /// opens the vault.
    pub fn change_password(
        &mut self,
        old: &Password,
        new: &Password,
        params: KdfParams,
    ) -> Result<(), Error> {
        Ok(self.store.change_password(old, new, params)?)
    }

    /// The store, for what a vault does not offer (an export, a remote's setup).
    pub fn into_store(self) -> Store {
        self.store
    }
}

impl MergeTarget for Vault {
    type Error = Error;

    fn local(&self, client: &ClientId, ids: (VaultId, RecordId)) -> Result<Option<Record>, Error> {
        Ok(self.store.record_at(client, ids)?)
    }

    fn count_usage(&self) -> Result<Usage, Error> {
        Ok(Usage::from_counts(self.store.usage_counts()))
    }

    fn grants(&self) -> &AccessTable {
        self.store.grants()
    }

    fn usage(&mut self) -> &mut Option<Usage> {
        &mut self.usage
    }

    /// One commit of the store for the whole batch ([`Store::merge_batch`]); then each
    /// location it changed is told to the subscribers as merged from `peer`.
    fn apply(
        &mut self,
        peer: &str,
        records: Vec<(Vec<u8>, Record)>,
        policy: MergePolicy,
        bounds: &MergeBounds,
    ) -> Result<MergeReport, Error> {
        if !self.changes.listened() {
            return Ok(self.store.merge_batch(records, policy, bounds)?);
        }
        let from = Origin::Peer(peer.to_owned());
        let changes = &self.changes;
        Ok(self
            .store
            .merge_batch_noting(records, policy, bounds, |client, location, one| {
                changes.merged(&from, client, location, one)
            })?)
    }
}

/// A remote on shared storage syncs a vault through this ([`redoubt_remote::Remote::sync`]):
/// what it merges is told to the subscribers as merged from that remote, and the quota count
/// starts again, as after any change that is not a peer's merge.
impl redoubt_remote::Access for Vault {
    fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.store)
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.store)
    }

    fn merge<R>(
        &mut self,
        remote: &str,
        f: impl FnOnce(&mut Store, Option<&mut redoubt_remote::Noter<'_>>) -> R,
    ) -> R {
        self.usage = None;
        if !self.changes.listened() {
            return f(&mut self.store, None);
        }
        let from = Origin::Remote(remote.to_owned());
        let changes = &self.changes;
        let mut note = |client: &[u8], location: &Location, one: &MergeReport| {
            changes.merged(&from, client, location, one);
        };
        f(&mut self.store, Some(&mut note))
    }
}

/// The node's hold on its vault, shared by the engine, pairing and the handle. It lends the
/// vault to a closure, never a lock guard, so no lock is held across an await.
#[derive(Clone, Debug)]
pub(crate) struct Owner(Arc<Mutex<Vault>>);

impl Owner {
    pub(crate) fn new(vault: Vault) -> Self {
        Self(Arc::new(Mutex::new(vault)))
    }

    /// The vault, when no other hold on it is left.
    pub(crate) fn into_vault(self) -> Option<Vault> {
        Arc::into_inner(self.0).map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the vault. A panic while it was held (a bug) does not stop later users:
    /// the vault's invariants hold between any two of its method calls, each of which commits
    /// before it changes what it holds in memory.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Vault) -> R) -> R {
        f(&self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Runs `f` on the vault, to change it.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
