//! A snapshot on disk: advisory lock, bounded reads, atomic saves.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{Read, Write},
    path::{Path, PathBuf},
};

use crate::{
    Error, KdfParams, Password, SealKey, Snapshot,
    format::{HEADER_LEN, MAX_BODY_LEN},
};

/// A snapshot path held under its advisory lock (`<file>.lock` beside it).
///
/// An exclusive holder may save; shared holders may only load. Two processes cannot hold the
/// exclusive lock at once, so two writers can never interleave a load and a save.
#[derive(Debug)]
pub struct VaultFile {
    path: PathBuf,
    exclusive: bool,
    _lock: File,
}

impl VaultFile {
    /// Takes the exclusive lock (to load and save), failing at once if another process holds
    /// the lock. The parent directory must exist.
    pub fn lock_exclusive(path: &Path) -> Result<Self, Error> {
        Self::lock(path, true)
    }

    /// Takes a shared lock (to load only), failing at once if a writer holds the lock.
    pub fn lock_shared(path: &Path) -> Result<Self, Error> {
        Self::lock(path, false)
    }

    fn lock(path: &Path, exclusive: bool) -> Result<Self, Error> {
        let lock_path = sibling(path, "lock");
        let file = open_private(
            OpenOptions::new().read(true).write(true).create(true),
            &lock_path,
        )
        .map_err(|e| Error::io("opening lock file", &lock_path, e))?;
        let result = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match result {
            Ok(()) => Ok(Self {
                path: path.to_path_buf(),
                exclusive,
                _lock: file,
            }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_path_buf(),
                lock: lock_path,
            }),
            Err(TryLockError::Error(e)) => Err(Error::io("locking", &lock_path, e)),
        }
    }

    /// The snapshot path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a snapshot exists at the path.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads and opens the snapshot. The file's size is checked before it is read.
    pub fn load(&self, password: &Password) -> Result<(Snapshot, SealKey), Error> {
        let mut file = File::open(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(self.path.clone()),
            _ => Error::io("opening", &self.path, e),
        })?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading metadata of", &self.path, e))?
            .len();
        let max = HEADER_LEN as u64 + MAX_BODY_LEN;
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading", &self.path, e))?;
        Snapshot::open(&bytes, password)
    }

    /// Writes a new snapshot sealed with a key derived from `password`; fails if one exists.
    pub fn create(
        &self,
        snapshot: &Snapshot,
        password: &Password,
        params: KdfParams,
    ) -> Result<SealKey, Error> {
        if self.exists() {
            return Err(Error::AlreadyExists(self.path.clone()));
        }
        params.check()?;
        let key = SealKey::generate(password, params)?;
        self.save(snapshot, &key)?;
        Ok(key)
    }

    /// Saves atomically: a temporary file in the same directory, fsync, rename over the
    /// snapshot, fsync of the directory. A crash leaves the old snapshot or the new one.
    pub fn save(&self, snapshot: &Snapshot, key: &SealKey) -> Result<(), Error> {
        if !self.exclusive {
            return Err(Error::ReadOnly(self.path.clone()));
        }
        let bytes = snapshot.seal(key)?;
        // The lock is exclusive, so one fixed temporary name is safe, and a temporary file left
        // by a crash is simply overwritten by the next save: they never pile up.
        let tmp = sibling(&self.path, "tmp");
        let result = write_synced(&tmp, &bytes).and_then(|()| {
            fs::rename(&tmp, &self.path)
                .map_err(|e| Error::io("renaming into place", &self.path, e))
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        sync_dir(&self.path)
    }
}

/// `dir/name.ext` for the snapshot `dir/name`.
fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    path.with_file_name(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = open_private(
        OpenOptions::new().write(true).create(true).truncate(true),
        path,
    )
    .map_err(|e| Error::io("creating", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("writing", path, e))?;
    file.sync_all().map_err(|e| Error::io("syncing", path, e))
}

/// Makes the rename durable by syncing the directory that holds the snapshot.
fn sync_dir(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("syncing directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens with owner-only permissions (0600) where the platform has them.
fn open_private(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options.open(path)
}
