//! A store opened only to be read: another vault, a backup, a file on read-only media.
//!
//! [`Store::open`](super::Store::open) opens the file read-write (redb rewrites its header
//! and repairs a file that was not closed cleanly), which fails on read-only media and
//! changes a backup's bytes. [`ReadOnlyStore`] opens the file with `O_RDONLY` through redb's
//! read-only database and writes nothing, anywhere.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use redb::{Database, ReadableDatabase};
use redoubt_snapshot::KdfLimits;
use redoubt_vault::Instance;

use super::{CACHE_BYTES, Loaded, load, load_records, open_error, sniff};
use crate::{Error, keys::Password};

/// A store's records, read once from a file opened read-only; nothing of the file is kept
/// open or locked once [`Self::open`] returns.
pub struct ReadOnlyStore {
    path: PathBuf,
    instance: Instance,
    damaged: BTreeSet<[u8; 32]>,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.path)
            .field("node", &self.instance.node())
            .field("records", &self.instance.len())
            .finish_non_exhaustive()
    }
}

impl ReadOnlyStore {
    /// Opens the store at `path` with `password` without writing to it: the file is opened
    /// read-only and never repaired. Errors as [`Store::open`](super::Store::open)'s, and
    /// [`Error::Damaged`] for a file that was not closed cleanly (its owner's next open
    /// repairs it; a read-only open does not).
    pub fn open(path: &Path, password: &Password, limits: &KdfLimits) -> Result<Self, Error> {
        sniff(path)?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .open_read_only(path)
            .map_err(|e| match e {
                redb::DatabaseError::RepairAborted => Error::Damaged {
                    path: path.to_path_buf(),
                    detail: "the store was not closed cleanly and needs a repair, which a \
                             read-only open does not make (open it as a vault once)"
                        .into(),
                },
                e => open_error(path, e),
            })?;
        let Loaded {
            keys,
            identity,
            clock,
            ..
        } = load(&db.begin_read()?, path, password, limits)?;
        let (instance, damaged) =
            load_records(&db.begin_read()?, &keys, identity.node_id(), clock)?;
        Ok(Self {
            path: path.to_path_buf(),
            instance,
            damaged,
        })
    }

    /// The file this store was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record the store holds, as [`Store::load_instance`](super::Store::load_instance)
    /// would have loaded it.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Record rows that failed to open, by keyed id (hex), as
    /// [`Store::damaged_rows`](super::Store::damaged_rows).
    pub fn damaged_rows(&self) -> impl Iterator<Item = String> + '_ {
        self.damaged.iter().map(|row| redoubt_vault::hex(row))
    }
}

#[cfg(test)]
mod tests {
    use redoubt_snapshot::KdfParams;
    use redoubt_vault::{Location, SecretValue};

    use super::*;
    use crate::Store;

    #[test]
    fn a_read_only_open_reads_every_record_and_changes_no_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.redb");
        let pw = Password::new(b"pw".to_vec());
        let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
        let loc = Location::new("v", "r").unwrap();
        store
            .put(b"c", &loc, SecretValue::new(b"x".to_vec()))
            .unwrap();
        let digest = store.state_digest().unwrap();
        drop(store);
        let before = std::fs::read(&path).unwrap();
        let ro = ReadOnlyStore::open(&path, &pw, &KdfLimits::default()).unwrap();
        assert_eq!(ro.instance().state_digest(), digest);
        assert_eq!(ro.damaged_rows().count(), 0);
        drop(ro);
        assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing made beside it");
        // A wrong password is refused as by the read-write open.
        let wrong = Password::new(b"no".to_vec());
        assert!(matches!(
            ReadOnlyStore::open(&path, &wrong, &KdfLimits::default()),
            Err(Error::WrongPassword)
        ));
    }

    #[test]
    fn a_store_not_closed_cleanly_is_refused_not_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.redb");
        let pw = Password::new(b"pw".to_vec());
        let store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
        // A copy taken while the store is open, as of a vault in use or a crashed one.
        let copy = dir.path().join("copy.redb");
        std::fs::copy(&path, &copy).unwrap();
        drop(store);
        let before = std::fs::read(&copy).unwrap();
        match ReadOnlyStore::open(&copy, &pw, &KdfLimits::default()) {
            Err(Error::Damaged { detail, .. }) => {
                assert!(detail.contains("not closed cleanly"), "{detail}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(std::fs::read(&copy).unwrap(), before, "no repair written");
    }
}
