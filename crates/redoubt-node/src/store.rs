//! The state a node serves and merges into: its instance and its grants, and how they are made
//! durable.

use std::sync::{Arc, Mutex, MutexGuard};

use redoubt_vault::{AccessTable, Instance};

use crate::Error;

/// What a node holds: the replica and the permission table. Kept behind [`Shared`].
#[derive(Debug)]
pub struct Store {
    /// The replica.
    pub instance: Instance,
    /// Which peer may read or write which client.
    pub access: AccessTable,
}

/// Makes a store durable. The node calls it, with the store locked, after every merge and
/// before it acknowledges anything the merge took in (a push's answer, a pull's outcome, a
/// pairing's grants): an acknowledgement never runs ahead of the disk.
pub trait Persist: Send + Sync {
    /// Writes `store` to stable storage (fsynced) and returns once it is there. An error
    /// withholds the acknowledgement; the caller reports it.
    fn persist(&self, store: &mut Store) -> Result<(), String>;
}

/// The store, shared between the app and the node's event loop. The event loop locks it
/// briefly (one shape batch, one chunk, one merge, one commit) and never across an await.
#[derive(Clone)]
pub struct Shared {
    store: Arc<Mutex<Store>>,
    persist: Option<Arc<dyn Persist>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("durable", &self.persist.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shares `store`, kept in memory only: [`Self::commit`] does nothing, so whatever the
    /// node merges lives as long as the process (tests, or an app that saves by itself).
    pub fn new(store: Store) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            persist: None,
        }
    }

    /// Shares `store`, made durable by `persist` at every [`Self::commit`].
    pub fn durable(store: Store, persist: Arc<dyn Persist>) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            persist: Some(persist),
        }
    }

    /// Locks the store. A panic while it was held (a bug) does not stop later users: the
    /// store's own invariants hold between any two of its method calls.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the store's current state durable (a no-op for an in-memory store). The node
    /// calls it before acknowledging a merge; an app calls it after changing the store itself.
    pub fn commit(&self) -> Result<(), Error> {
        let Some(persist) = &self.persist else {
            return Ok(());
        };
        let mut store = self.lock();
        persist.persist(&mut store).map_err(Error::Persist)
    }

    /// Whether [`Self::commit`] writes to stable storage.
    pub fn is_durable(&self) -> bool {
        self.persist.is_some()
    }
}
