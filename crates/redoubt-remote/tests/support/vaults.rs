//! Vaults and remotes for the remote tests: a fresh vault per device, records in and out, add,
//! join, and rounds of syncs.
#![allow(unreachable_pub, dead_code)]

use redoubt_remote::{Backend, Flavor, Remote};
use redoubt_store::{KdfLimits, KdfParams, Password, Store};
use redoubt_vault::{Location, SecretValue};

pub const PASSPHRASE: &[u8] = b"correct horse battery staple";
/// Every test vault's password.
const PASSWORD: &[u8] = b"pw";
// ---------------------------------------------------------------------------------------------
// Vaults.

pub struct Vault {
    pub store: Store,
    pub _dir: tempfile::TempDir,
}

pub fn vault() -> Vault {
    vault_in(tempfile::tempdir().unwrap())
}

/// A fresh vault in `dir`.
pub fn vault_in(dir: tempfile::TempDir) -> Vault {
    let pw = Password::new(PASSWORD.to_vec());
    let store = Store::create(&file_in(dir.path()), &pw, KdfParams::insecure_fast()).unwrap();
    Vault { store, _dir: dir }
}

/// The vault file in a vault's directory.
pub fn file_in(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("v.redb")
}

/// Closes `v`'s store and keeps its directory, so that another process can open the vault.
pub fn close(v: Vault) -> tempfile::TempDir {
    drop(v.store);
    v._dir
}

/// The vault file at `path` opened (by a process other than the one that made it).
pub fn open_file(path: &std::path::Path) -> Store {
    Store::open(
        path,
        &Password::new(PASSWORD.to_vec()),
        &KdfLimits::default(),
    )
    .unwrap()
}

/// The vault in `dir` opened again.
pub fn reopen(dir: tempfile::TempDir) -> Vault {
    let store = open_file(&file_in(dir.path()));
    Vault { store, _dir: dir }
}

pub fn loc(record: &str) -> Location {
    Location::new("wallet", record).unwrap()
}

pub fn put(v: &mut Vault, client: &[u8], record: &str, value: &str) {
    v.store
        .put(
            client,
            &loc(record),
            SecretValue::new(value.as_bytes().to_vec()),
        )
        .unwrap();
}

pub fn read(v: &Vault, client: &[u8], record: &str) -> Option<Vec<u8>> {
    v.store
        .get(client, &loc(record))
        .unwrap()
        .map(|s| s.expose().to_vec())
}

pub async fn add(v: &mut Vault, backend: Backend, clients: Option<Vec<Vec<u8>>>) -> Remote {
    Remote::add(
        &mut v.store,
        "r",
        "test://",
        backend,
        clients,
        PASSPHRASE,
        KdfParams::insecure_fast(),
    )
    .await
    .unwrap()
}

pub async fn join(v: &mut Vault, backend: Backend, clients: Option<Vec<Vec<u8>>>) -> Remote {
    Remote::join(
        &mut v.store,
        "r",
        "test://",
        backend,
        clients,
        PASSPHRASE,
        &KdfLimits::default(),
    )
    .await
    .unwrap()
}

/// Syncs each (vault, remote) in turn, `rounds` times, checking no device failed.
pub async fn rounds(devices: &mut [(&mut Vault, &mut Remote)], rounds: usize) {
    for _ in 0..rounds {
        for (v, r) in devices.iter_mut() {
            let report = r.sync(&mut v.store).await.unwrap();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
        }
    }
}

/// A folder remote in a fresh temporary directory: the directory, and a maker of backends on it.
pub fn folder() -> (tempfile::TempDir, impl Fn() -> Backend) {
    folder_in(tempfile::tempdir().unwrap())
}

/// A folder remote in `dir`.
pub fn folder_in(dir: tempfile::TempDir) -> (tempfile::TempDir, impl Fn() -> Backend) {
    let url = format!("file://{}", dir.path().join("remote").display());
    let make = move || {
        let b = Backend::from_url(&url).unwrap();
        assert_eq!(b.flavor, Flavor::Folder);
        b
    };
    (dir, make)
}

/// A temporary directory in memory (`/dev/shm`) where there is one, for tests whose subject is
/// the sync protocol over thousands of commits rather than the disk's flush latency.
pub fn memory_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}
