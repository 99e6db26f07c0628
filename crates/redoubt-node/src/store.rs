//! The state a node serves and merges into: its instance and its grants.

use std::sync::{Arc, Mutex, MutexGuard};

use redoubt_vault::{AccessTable, Instance};

/// What a node holds: the replica and the permission table. Kept behind [`Shared`].
#[derive(Debug)]
pub struct Store {
    /// The replica.
    pub instance: Instance,
    /// Which peer may read or write which client.
    pub access: AccessTable,
}

/// The store, shared between the app and the node's event loop. The event loop locks it
/// briefly (one shape batch, one chunk, one merge) and never across an await.
#[derive(Clone, Debug)]
pub struct Shared(Arc<Mutex<Store>>);

impl Shared {
    /// Shares `store`.
    pub fn new(store: Store) -> Self {
        Self(Arc::new(Mutex::new(store)))
    }

    /// Locks the store. A panic while it was held (a bug) does not stop later users: the
    /// store's own invariants hold between any two of its method calls.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
