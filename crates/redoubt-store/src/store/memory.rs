//! Stores that live in memory: redb's [`InMemoryBackend`], or any other backend a test hands
//! in (one that can be made to fail, say). Same tables, same sealing, same journal as a file;
//! nothing survives the process.

use std::path::Path;

use redb::{StorageBackend, backends::InMemoryBackend};
use redoubt_snapshot::{Identity, KdfParams};
use redoubt_vault::{AccessTable, Instance};

use super::{Store, check_client, migrate::fill};
use crate::{Error, keys::Password};

/// What an in-memory store's [`Store::path`] shows (in errors and `Debug`).
pub const IN_MEMORY_PATH: &str = "(in memory)";

impl Store {
    /// A store in memory (redb's [`InMemoryBackend`]) holding `instance`'s records (every
    /// version, tombstones included) and clock, and the grants of `access`: for tests,
    /// examples, benches and apps that keep nothing on disk.
    ///
    /// Local writes are stamped by `instance`'s node id, as they were in the instance. The
    /// store's [`Store::identity`] is a fresh random one, unrelated to that node id (an
    /// in-memory replica usually runs beside a libp2p key of its own); a store made from a file
    /// or a snapshot keeps the identity whose node id stamps its writes. The data key is
    /// wrapped under a random password nobody holds, so [`Store::change_password`] fails with
    /// [`Error::WrongPassword`]; [`Store::path`] is [`IN_MEMORY_PATH`].
    pub fn in_memory_from(instance: Instance, access: &AccessTable) -> Result<Self, Error> {
        Self::from_backend(InMemoryBackend::new(), instance, access)
    }

    /// [`Self::in_memory_from`] on any `backend`: failure-injection tests pass one whose
    /// writes can be made to fail. Not a stable API.
    #[doc(hidden)]
    pub fn from_backend(
        backend: impl StorageBackend,
        instance: Instance,
        access: &AccessTable,
    ) -> Result<Self, Error> {
        let mut random = zeroize::Zeroizing::new([0u8; 32]);
        redoubt_crypto::fill_random(random.as_mut())?;
        let password = Password::new(random.to_vec());
        redoubt_crypto::fill_random(random.as_mut())?;
        let identity = Identity::from_seed(*random);
        // The records and the clock move over as they are, node id included.
        let mut replica = Instance::with_clock(instance.node(), instance.clock());
        for (client_id, client) in instance.clients() {
            check_client(client)?;
            for record in instance.records(client_id) {
                replica.restore(client, record.clone())?;
            }
        }
        drop(instance);
        Self::create_on(
            backend,
            Path::new(IN_MEMORY_PATH),
            &password,
            // The password is 256 random bits: no work factor adds anything to it.
            KdfParams::insecure_fast(),
            identity,
            replica,
            |t, keys, records| fill(t, keys, records, access),
        )
    }
}

#[cfg(test)]
mod tests {
    use redoubt_vault::{Location, NodeId, Rights, SecretValue};

    use super::*;

    #[test]
    fn an_in_memory_store_holds_the_instance_and_the_grants_and_stamps_with_its_node() {
        let node = NodeId::from_bytes([9; 16]);
        let mut instance = Instance::new(node);
        let loc = Location::new("v", "r").unwrap();
        instance
            .write(b"c", &loc, SecretValue::new(b"one".to_vec()))
            .unwrap();
        let gone = Location::new("v", "gone").unwrap();
        instance
            .write(b"c", &gone, SecretValue::new(b"x".to_vec()))
            .unwrap();
        instance.delete(b"c", &gone).unwrap();
        let mut access = AccessTable::default();
        let rw = Rights {
            read: true,
            write: true,
        };
        access.grant(b"peer", b"c", rw).unwrap();
        let digest = instance.state_digest();
        let clock = instance.clock();

        let mut store = Store::in_memory_from(instance, &access).unwrap();
        assert_eq!(store.state_digest().unwrap(), digest);
        assert_eq!(store.clock(), clock);
        assert_eq!(store.rights(b"peer", b"c"), rw);
        assert_eq!(store.path(), Path::new(IN_MEMORY_PATH));
        assert_eq!(
            store.get(b"c", &loc).unwrap().map(|v| v.expose().to_vec()),
            Some(b"one".to_vec())
        );
        let stamp = store
            .put(b"c", &loc, SecretValue::new(b"two".to_vec()))
            .unwrap();
        assert_eq!(stamp.node, node);
        assert!((stamp.wall_ms, stamp.counter) > clock.last());
        assert_eq!(store.journal(1).unwrap().len(), 1);
    }
}
