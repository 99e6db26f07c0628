//! [`Access`]: what a sync needs of the vault it syncs. A sync holds the vault only for short
//! steps between its requests to storage (a read of what to upload, one merge commit, the
//! remote's state after each upload), so a vault that others use meanwhile (an agent's, whose
//! node serves peers) is never held across a request.

use redoubt_store::Store;
use redoubt_vault::{Location, MergeReport};

/// What a merge tells of each record it changed: client, location, that record's report.
pub type Noter<'a> = dyn FnMut(&[u8], &Location, &MergeReport) + 'a;

/// Short, non-reentrant access to a vault's [`Store`]. [`Store`] itself is one (a sync that
/// owns the store); an owner type that shares its store (the node's vault) is another, and
/// gives [`Access::merge`] a noter to tell its subscribers what the remote changed.
pub trait Access {
    /// Runs `f` on the store, to read it.
    fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R;

    /// Runs `f` on the store, to change it (each store mutator commits before it returns).
    fn write<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R;

    /// Runs `f`, which merges what remote `remote` brought, on the store, with the noter to
    /// hand the merge when someone wants to know what changed.
    fn merge<R>(
        &mut self,
        remote: &str,
        f: impl FnOnce(&mut Store, Option<&mut Noter<'_>>) -> R,
    ) -> R {
        let _ = remote;
        self.write(|store| f(store, None))
    }
}

impl Access for Store {
    fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(self)
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(self)
    }
}
