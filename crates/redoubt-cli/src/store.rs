//! Finding, creating, opening and migrating this node's vault: a `redoubt_node::store::Store` file.
//!
//! A vault made by an older version is a format-1 snapshot file. The first command that opens
//! it migrates it: the snapshot's whole state goes into a new store beside it, the old file is
//! kept (a hard link) as `PATH.v1-snapshot`, and the new store is renamed over `PATH`.
//!
//! `passwd --rekey` rewrites the vault the same way: its whole state into a new store, with a
//! new data key, at `PATH.rekeying`, renamed over `PATH`.
//!
//! A vault `PATH` that is a symbolic link is opened through the link, but neither migrated nor
//! rekeyed (both rename a new file over `PATH`, which would replace the link, not the file it
//! points to): the user is told to name the file itself.

use std::{
    io::{IsTerminal, Read},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use redoubt_node::store::{KdfLimits, Store};
use redoubt_snapshot::{KdfParams, MAGIC, VaultFile};

use crate::secrets::{PASSWORD_ENV, Secret, password};

/// What the name of a migration's backup adds to the vault's: the old snapshot, kept.
pub(crate) const BACKUP_SUFFIX: &str = "v1-snapshot";
/// What the name of a migration's new store adds to the vault's, until it is renamed over it.
const MIGRATING_SUFFIX: &str = "migrating";
/// What the name of a rekey's new store adds to the vault's, until it is renamed over it.
pub(crate) const REKEYING_SUFFIX: &str = "rekeying";
/// The first bytes of every redb file (redb's header magic), so a store is told from other
/// files before any password is asked for.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// How the error for a file that is neither kind of vault starts (`open_store` says the same).
pub(crate) const NOT_A_VAULT: &str =
    "is not a Redoubt vault (neither a vault store nor a snapshot file)";

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
    // Nothing is created beside a file that is not a vault, and no password is asked for
    // one: the kind is read first, and a store needs no lock file (redb locks the database
    // file itself).
    let snapshot = match file_kind(path)? {
        Some(Kind::Snapshot) => true,
        Some(Kind::Store) => false,
        None => bail!(
            "{} {NOT_A_VAULT}: it starts with neither magic",
            path.display()
        ),
    };
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    if !snapshot {
        wait_not_in_use(path, deadline)?;
    }
    let password = password(PASSWORD_ENV, &format!("Password for {}: ", path.display()))?;
    if snapshot {
        migrate(path, &password)?;
    }
    // Another command may have taken the vault between the check and the open: wait for it
    // as well, up to the same deadline.
    let store = loop {
        match Store::open(path, &password.store(), &KdfLimits::default()) {
            Err(redoubt_node::store::Error::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_POLL);
            }
            opened => break opened.map_err(|e| explain(path, e))?,
        }
    };
    Ok(Opened { store, password })
}

/// How long a command waits for another process to let go of the vault before it says the
/// vault is in use.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often it looks while it waits.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// The advice on a vault in use.
const IN_USE_ADVICE: &str = "if `redoubt agent` (or `serve`) runs on it, this command does not \
     go through the agent: stop the agent first";

/// Opens the store at `path` with `password`, saying what to do about a lock or a file that
/// is not a vault.
pub(crate) fn open_store(path: &Path, password: &Secret) -> Result<Store> {
    Store::open(path, &password.store(), &KdfLimits::default()).map_err(|e| explain(path, e))
}

/// A store's open error, saying what to do about a lock or a file that is not a vault.
fn explain(path: &Path, e: redoubt_node::store::Error) -> anyhow::Error {
    match e {
        redoubt_node::store::Error::Locked(_) => anyhow::anyhow!("{e}; {IN_USE_ADVICE}"),
        redoubt_node::store::Error::NotAStore { path, reason } => {
            anyhow::anyhow!("{} {NOT_A_VAULT}: {reason}", path.display())
        }
        e => anyhow::Error::from(e).context(format!("opening {}", path.display())),
    }
}

/// Waits, before a password is asked for, while another process has the store at `path`
/// open (redb holds an exclusive `flock` on an open database file, as the agent does on a
/// locked vault, which an exclusive try-lock here meets), and fails once `deadline` passes.
/// Says once on stderr that it waits, on a terminal. Anything else is left to the open to report.
fn wait_not_in_use(path: &Path, deadline: std::time::Instant) -> Result<()> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut said = false;
    loop {
        match file.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) => {}
            // Let go at once (dropping `file` would too): the open takes its own lock.
            Ok(()) => return Ok(file.unlock()?),
            Err(_) => return Ok(()),
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "store {} is in use by another process (waited {} s); {IN_USE_ADVICE}",
                path.display(),
                LOCK_WAIT.as_secs()
            );
        }
        // A person at a terminal is told why it pauses; a script gets one error line at most.
        if !said && std::io::stderr().is_terminal() {
            eprintln!(
                "redoubt: {} is in use by another process; waiting up to {} s",
                path.display(),
                LOCK_WAIT.as_secs()
            );
            said = true;
        }
        std::thread::sleep(LOCK_POLL);
    }
}

/// Whether the file at `path` starts like a format-1 snapshot (reads at most 8 bytes).
pub(crate) fn is_snapshot(path: &Path) -> Result<bool> {
    Ok(file_kind(path)? == Some(Kind::Snapshot))
}

/// The two kinds of vault file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A format-1 snapshot ([`MAGIC`]).
    Snapshot,
    /// A redb file: a store, or at least redb's ([`REDB_MAGIC`]).
    Store,
}

/// The kind of the file at `path` by its first bytes (at most 9 read), `None` for neither.
pub(crate) fn file_kind(path: &Path) -> Result<Option<Kind>> {
    let want = MAGIC.len().max(REDB_MAGIC.len());
    let mut head = Vec::with_capacity(want);
    std::fs::File::open(path)
        .and_then(|f| f.take(want as u64).read_to_end(&mut head))
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(if head.starts_with(&MAGIC) {
        Some(Kind::Snapshot)
    } else if head.starts_with(&REDB_MAGIC) {
        Some(Kind::Store)
    } else {
        None
    })
}

/// Refuses to `what` (migrate, rekey) a vault `path` that is a symbolic link: both rename a
/// new file over `PATH`, which would replace the link and leave the file it names as it was.
fn refuse_symlink(path: &Path, what: &str) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.file_type().is_symlink() {
        let target = path.canonicalize().map_or_else(
            |_| "the file it names".to_owned(),
            |t| t.display().to_string(),
        );
        bail!(
            "{} is a symbolic link; to {what} the vault, pass the file itself: --vault {target}",
            path.display()
        );
    }
    Ok(())
}

/// Removes a leftover `temp` (a crashed migration's or rekey's; only one under the vault's
/// lock writes that name).
fn remove_leftover(temp: &Path) -> Result<()> {
    match std::fs::remove_file(temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", temp.display()))
        }
        _ => Ok(()),
    }
}

/// Migrates the format-1 snapshot at `path` to a store, crash-safely: under the snapshot's
/// exclusive lock, the new store is made in full at `PATH.migrating` (one durable commit),
/// the old file is hard-linked to `PATH.v1-snapshot`, the directory is synced, the store is
/// renamed over `PATH` and the directory synced again. A crash before the rename leaves the
/// snapshot at `PATH` (the next open migrates again); after it, the store, with the snapshot
/// kept beside it.
fn migrate(path: &Path, password: &Secret) -> Result<()> {
    refuse_symlink(path, "migrate")?;
    let file = VaultFile::lock_exclusive(path).map_err(|e| match e {
        redoubt_snapshot::Error::Locked { .. } => {
            anyhow::anyhow!("{e}; if `redoubt serve` runs on it, stop it first or sync with it")
        }
        e => e.into(),
    })?;
    // Another process may have migrated it between our first look and the lock; the lock
    // file taking the lock just made again has no use beside a store.
    if !is_snapshot(path)? {
        drop(file);
        let _ = std::fs::remove_file(sibling(path, "lock"));
        return Ok(());
    }
    let (snapshot, key) = file
        .load(&password.snapshot())
        .with_context(|| format!("opening {}", path.display()))?;
    let temp = sibling(path, MIGRATING_SUFFIX);
    // Only a migration, under this lock, writes that name: what is there is a crashed one's.
    remove_leftover(&temp)?;
    let moved = (|| -> Result<PathBuf> {
        // The same KDF cost as the snapshot had.
        let store = Store::create_from_snapshot(&temp, &snapshot, &password.store(), key.params())
            .with_context(|| format!("migrating {} into {}", path.display(), temp.display()))?;
        drop(store);
        let backup = keep_backup(path)?;
        sync_dir(path)?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} over {}", temp.display(), path.display()))?;
        Ok(backup)
    })();
    let backup = match moved {
        Ok(backup) => backup,
        Err(e) => {
            // Before the rename the snapshot is still at PATH; the half-done store goes.
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
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
                if is_link_of(path, &backup) {
                    return Ok(backup);
                }
            }
            Err(_) => {
                // No hard links here: a copy, under a temporary name until it is whole, and
                // never over a file already at the name.
                if std::fs::symlink_metadata(&backup).is_ok() {
                    continue;
                }
                let part = sibling(&backup, "part");
                remove_leftover(&part)?;
                if let Err(e) = copy_synced(path, &part).and_then(|()| {
                    std::fs::rename(&part, &backup).with_context(|| {
                        format!("renaming {} to {}", part.display(), backup.display())
                    })
                }) {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
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

/// Whether `backup` is a regular file (not a symbolic link, whatever it names) with the same
/// device and inode as `path`: the hard link a migration that crashed before its rename made.
fn is_link_of(path: &Path, backup: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (
            std::fs::symlink_metadata(path),
            std::fs::symlink_metadata(backup),
        ) {
            (Ok(p), Ok(b)) => b.file_type().is_file() && p.dev() == b.dev() && p.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        // Where there are no inodes the copy fallback made it: a new numbered name is safer.
        let _ = (path, backup);
        false
    }
}

/// Every migration backup of the vault at `path` there is: `PATH.v1-snapshot` and any
/// `PATH.v1-snapshot.N` (or other name starting so), sorted.
pub(crate) fn backups(path: &Path) -> Vec<PathBuf> {
    let prefix = sibling(path, BACKUP_SUFFIX);
    let Some(prefix) = prefix.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name == prefix || name.starts_with(&format!("{prefix}."))
        })
        .map(|e| path.with_file_name(e.file_name()))
        .collect();
    found.sort();
    found
}

/// Rewrites the vault at `path`, open in `store`, under a new data key: its whole state
/// (identity, so the same peer id; grants; every record version) is sealed again into a new
/// store at `PATH.rekeying` under `new` and `params` (one durable commit), checked to open
/// with `new` and hold the same state, synced, and renamed over `PATH`, the directory synced
/// before and after. A crash before the rename leaves the vault as it was (the leftover
/// `PATH.rekeying` is removed by the next attempt); after it, the rekeyed vault. The change
/// journal starts again empty, as after a migration.
///
/// `store` holds `PATH`'s lock throughout, so no other process opens the vault meanwhile; it
/// is dropped at the end.
pub(crate) fn rekey(path: &Path, store: Store, new: &Secret, params: KdfParams) -> Result<()> {
    refuse_symlink(path, "rekey")?;
    let snapshot = store
        .export()
        .with_context(|| format!("reading the whole of {} to rekey it", path.display()))?;
    let temp = sibling(path, REKEYING_SUFFIX);
    remove_leftover(&temp)?;
    let made = (|| -> Result<()> {
        let fresh = Store::create_from_snapshot(&temp, &snapshot, &new.store(), params)
            .with_context(|| format!("writing the rekeyed vault {}", temp.display()))?;
        drop(fresh);
        let check = open_store(&temp, new)?;
        // The same identity, record versions, clock and grants: what the docs promise.
        if check.node() != store.node()
            || check.state_digest()? != store.state_digest()?
            || check.clock() != store.clock()
            || check.grants() != store.grants()
        {
            bail!(
                "the rekeyed vault {} does not hold what {} does; nothing was changed",
                temp.display(),
                path.display()
            );
        }
        drop(check);
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", temp.display()))?;
        sync_dir(path)?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} over {}", temp.display(), path.display()))
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is done: the vault is the rekeyed one whatever happens now.
    sync_dir(path).context(
        "the vault is rekeyed and opens only with the new password, but syncing its directory          after the rename failed (a power cut now could bring the old file back)",
    )?;
    drop(store);
    Ok(())
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
