//! Finding, creating, opening and migrating this node's vault: a `redoubt_node::store::Store` file.
//!
//! A vault made by an older version is a format-1 snapshot file. The first command that opens
//! it migrates it: the snapshot's whole state goes into a new store beside it, the old file is
//! kept (a hard link) as `PATH.v1-snapshot`, and the new store is renamed over `PATH`.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use redoubt_node::store::{KdfLimits, Store};
use redoubt_snapshot::{MAGIC, VaultFile};

use crate::secrets::{PASSWORD_ENV, Secret, password};

/// What the name of a migration's backup adds to the vault's: the old snapshot, kept.
pub(crate) const BACKUP_SUFFIX: &str = "v1-snapshot";
/// What the name of a migration's new store adds to the vault's, until it is renamed over it.
const MIGRATING_SUFFIX: &str = "migrating";

/// The vault path: `--vault`, `REDOUBT_VAULT`, or the per-user data directory.
pub(crate) fn vault_path(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let dirs = directories::ProjectDirs::from("", "", "redoubt")
        .context("cannot find a per-user data directory; pass --vault PATH")?;
    Ok(dirs.data_dir().join("vault.rdb"))
}

/// Creates the directory that will hold a new vault (owner-only where possible).
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(parent)
        .with_context(|| format!("creating directory {}", parent.display()))
}

/// An opened vault and the password that opened it (`passwd` checks it again, `export` may
/// seal with it).
pub(crate) struct Opened {
    pub(crate) store: Store,
    pub(crate) password: Secret,
}

/// Opens the vault at `path` with the password from the user, migrating a format-1 snapshot
/// first. The store holds the file's lock until it is dropped.
pub(crate) fn open(path: &Path) -> Result<Opened> {
    if !path.exists() {
        bail!("no vault at {} (run `redoubt init` first)", path.display());
    }
    // Nothing is created beside a file that is not a vault: the kind is read first, and a
    // store needs no lock file (redb locks the database file itself).
    let snapshot = is_snapshot(path)?;
    if !snapshot {
        check_not_in_use(path)?;
    }
    let password = password(PASSWORD_ENV, &format!("Password for {}: ", path.display()))?;
    if snapshot {
        migrate(path, &password)?;
    }
    let store = open_store(path, &password)?;
    Ok(Opened { store, password })
}

/// Opens the store at `path` with `password`, saying what to do about a lock or a file that
/// is not a vault.
pub(crate) fn open_store(path: &Path, password: &Secret) -> Result<Store> {
    Store::open(path, &password.store(), &KdfLimits::default()).map_err(|e| match e {
        redoubt_node::store::Error::Locked(_) => {
            anyhow::anyhow!("{e}; if `redoubt serve` runs on it, stop it first or sync with it")
        }
        redoubt_node::store::Error::NotAStore { path, reason } => anyhow::anyhow!(
            "{} is not a Redoubt vault (neither a vault store nor a snapshot file): {reason}",
            path.display()
        ),
        e => anyhow::Error::from(e).context(format!("opening {}", path.display())),
    })
}

/// Fails, before a password is asked for, when another process has the store at `path`
/// open: redb holds an exclusive `flock` on an open database file, which a shared try-lock
/// here meets. Anything else is left to the open to report.
fn check_not_in_use(path: &Path) -> Result<()> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "store {} is in use by another process; if `redoubt serve` runs on it, stop it \
             first or sync with it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Whether the file at `path` starts like a format-1 snapshot (reads at most 8 bytes).
pub(crate) fn is_snapshot(path: &Path) -> Result<bool> {
    let mut magic = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut magic))
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(magic == MAGIC)
}

/// Migrates the format-1 snapshot at `path` to a store, crash-safely: under the snapshot's
/// exclusive lock, the new store is made in full at `PATH.migrating` (one durable commit),
/// the old file is hard-linked to `PATH.v1-snapshot`, the directory is synced, the store is
/// renamed over `PATH` and the directory synced again. A crash before the rename leaves the
/// snapshot at `PATH` (the next open migrates again); after it, the store, with the snapshot
/// kept beside it.
fn migrate(path: &Path, password: &Secret) -> Result<()> {
    let file = VaultFile::lock_exclusive(path).map_err(|e| match e {
        redoubt_snapshot::Error::Locked { .. } => {
            anyhow::anyhow!("{e}; if `redoubt serve` runs on it, stop it first or sync with it")
        }
        e => e.into(),
    })?;
    // Another process may have migrated it between our first look and the lock.
    if !is_snapshot(path)? {
        return Ok(());
    }
    let (snapshot, key) = file
        .load(&password.snapshot())
        .with_context(|| format!("opening {}", path.display()))?;
    let temp = sibling(path, MIGRATING_SUFFIX);
    // Only a migration, under this lock, writes that name: what is there is a crashed one's.
    match std::fs::remove_file(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", temp.display()));
        }
        _ => {}
    }
    // The same KDF cost as the snapshot had.
    let store = Store::create_from_snapshot(&temp, &snapshot, &password.store(), key.params())
        .with_context(|| format!("migrating {} into {}", path.display(), temp.display()))?;
    drop(store);
    let backup = keep_backup(path)?;
    sync_dir(path)?;
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(e)
            .with_context(|| format!("renaming {} over {}", temp.display(), path.display()));
    }
    sync_dir(path)?;
    // The snapshot's lock file has no use beside a store (redb locks the file itself).
    let _ = std::fs::remove_file(sibling(path, "lock"));
    drop(file);
    eprintln!(
        "redoubt: migrated {} to the new vault format; the old file is kept at {} and still \
         opens with the password it had (delete it when no longer needed)",
        path.display(),
        backup.display()
    );
    Ok(())
}

/// Keeps the snapshot at `path` under `PATH.v1-snapshot` (or `.v1-snapshot.N` when another
/// file has that name): a hard link, or a synced copy where links are not supported. A name
/// that already is this very file (a migration that crashed before its rename) is reused.
fn keep_backup(path: &Path) -> Result<PathBuf> {
    for n in 1..=100u32 {
        let backup = if n == 1 {
            sibling(path, BACKUP_SUFFIX)
        } else {
            sibling(path, &format!("{BACKUP_SUFFIX}.{n}"))
        };
        match std::fs::hard_link(path, &backup) {
            Ok(()) => return Ok(backup),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if same_file(path, &backup) {
                    return Ok(backup);
                }
            }
            Err(_) => {
                copy_synced(path, &backup)?;
                return Ok(backup);
            }
        }
    }
    bail!(
        "cannot keep a backup of {}: {} and 99 numbered names beside it are taken",
        path.display(),
        sibling(path, BACKUP_SUFFIX).display()
    )
}

/// Copies `from` to the new file `to` (mode 0600, never over an existing file) and syncs it.
fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    let mut input =
        std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    std::io::copy(&mut input, &mut out).with_context(|| format!("copying to {}", to.display()))?;
    out.sync_all()
        .with_context(|| format!("syncing {}", to.display()))
}

/// Whether `a` and `b` name the same file (the same inode on Unix).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `dir/name.ext` for the file `dir/name`.
pub(crate) fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    path.with_file_name(name)
}

/// Syncs the directory holding `path`, so a rename or link in it is durable (Unix; elsewhere
/// the rename itself is all there is).
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
