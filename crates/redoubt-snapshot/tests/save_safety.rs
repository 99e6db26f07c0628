//! A save's temporary file is created exclusively, owner-only from its first byte, and never
//! through whatever someone planted beside the snapshot (Unix; issue 11).
#![cfg(unix)]

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
};

use redoubt_snapshot::{KdfParams, Password, Snapshot, VaultFile};
use redoubt_vault::{Location, SecretValue};

fn password() -> Password {
    Password::new(b"correct horse".to_vec())
}

/// Creates a vault at `path` and saves it once more with a second record; returns the value
/// the second save wrote.
fn create_and_save(path: &Path) -> &'static [u8] {
    let file = VaultFile::lock_exclusive(path).unwrap();
    let mut snapshot = Snapshot::generate().unwrap();
    let key = file
        .create(&snapshot, &password(), KdfParams::insecure_fast())
        .unwrap();
    let loc = Location::new("wallet", "seed").unwrap();
    snapshot
        .instance
        .write(b"alice", &loc, SecretValue::new(b"second save".to_vec()))
        .unwrap();
    file.save(&snapshot, &key).unwrap();
    b"second save"
}

fn loads_with(path: &Path, value: &[u8]) {
    let (loaded, _) = VaultFile::lock_shared(path)
        .unwrap()
        .load(&password())
        .unwrap();
    let loc = Location::new("wallet", "seed").unwrap();
    assert_eq!(
        loaded.instance.read(b"alice", &loc).map(|v| v.expose()),
        Some(value)
    );
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Before, every save wrote `<name>.tmp` with `create + truncate`: a symbolic link planted
/// there was followed (the target overwritten with the snapshot), then renamed over the vault.
#[test]
fn a_symlink_planted_at_the_temp_path_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.rdb");
    let target = dir.path().join("victim");
    fs::write(&target, b"untouched").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    symlink(&target, dir.path().join("vault.rdb.tmp")).unwrap();

    let value = create_and_save(&path);

    assert_eq!(fs::read(&target).unwrap(), b"untouched");
    assert_eq!(mode(&target), 0o644);
    assert!(
        !fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(mode(&path), 0o600);
    loads_with(&path, value);
}

/// Before, a file planted at `<name>.tmp` with mode 0666 was truncated and reused, keeping its
/// mode, so the snapshot renamed into place was readable and writable by everyone.
#[test]
fn a_wider_file_planted_at_the_temp_path_does_not_widen_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.rdb");
    let planted = dir.path().join("vault.rdb.tmp");
    fs::write(&planted, b"planted").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o666)).unwrap();

    let file = VaultFile::lock_exclusive(&path).unwrap();
    let snapshot = Snapshot::generate().unwrap();
    file.create(&snapshot, &password(), KdfParams::insecure_fast())
        .unwrap();

    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read(&planted).unwrap(), b"planted");
    drop(file);
    assert!(
        VaultFile::lock_shared(&path)
            .unwrap()
            .load(&password())
            .is_ok()
    );
}

/// The mode is given at creation, so not even a umask of 000 makes the file wider than 0600
/// (a umask only ever narrows it). The umask is process-wide: every test in this file passes
/// under either umask.
#[test]
fn umask_000_does_not_widen_the_snapshot() {
    use rustix::fs::Mode;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.rdb");
    let old = rustix::process::umask(Mode::empty());
    let value = create_and_save(&path);
    rustix::process::umask(old);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("vault.rdb.lock")), 0o600);
    loads_with(&path, value);
}

/// Temporary files a crash left (named as saves name them) are removed when a writer next
/// takes the lock; links are removed, never followed; other names are left alone. A save
/// leaves no temporary file behind.
#[test]
fn crash_leftovers_are_removed_without_following_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.rdb");
    let value = create_and_save(&path);
    let target = dir.path().join("victim");
    fs::write(&target, b"untouched").unwrap();
    symlink(&target, dir.path().join("vault.rdb.tmp.0123456789abcdef")).unwrap();
    fs::write(
        dir.path().join("vault.rdb.tmp.fedcba9876543210"),
        b"half a save",
    )
    .unwrap();
    fs::write(dir.path().join("vault.rdb.tmp.notours"), b"keep").unwrap();
    fs::create_dir(dir.path().join("vault.rdb.tmp.00000000000000ff")).unwrap();

    let file = VaultFile::lock_exclusive(&path).unwrap();
    let (snapshot, key) = file.load(&password()).unwrap();
    file.save(&snapshot, &key).unwrap();
    drop(file);

    assert_eq!(fs::read(&target).unwrap(), b"untouched");
    assert_eq!(
        names(dir.path()),
        [
            "vault.rdb",
            "vault.rdb.lock",
            "vault.rdb.tmp.00000000000000ff",
            "vault.rdb.tmp.notours",
            "victim"
        ]
    );
    loads_with(&path, value);
}
