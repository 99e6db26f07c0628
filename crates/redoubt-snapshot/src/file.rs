//! A snapshot on disk: advisory lock, bounded reads, atomic saves.

use std::{
    ffi::OsString,
    fs::{self, File, OpenOptions, TryLockError},
    io::{Read, Write},
    path::{Path, PathBuf},
};

use crate::{
    Error, KdfParams, Password, SealKey, Snapshot,
    crypto::fill_random,
    format::{HEADER_LEN, MAX_BODY_LEN},
};

/// What a save's temporary file name adds to the snapshot's name, before its random part.
const TEMP_INFIX: &str = ".tmp.";
/// Random bytes in a temporary file's name (written as twice as many hex digits).
const TEMP_RANDOM_LEN: usize = 8;

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
    /// the lock. The parent directory must exist. Temporary files that a crashed save left
    /// beside the snapshot are removed (no one else can be writing them under this lock).
    pub fn lock_exclusive(path: &Path) -> Result<Self, Error> {
        let file = Self::lock(path, true)?;
        remove_stale_temps(path);
        Ok(file)
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

    /// Saves atomically: a new temporary file in the same directory, fsync, rename over the
    /// snapshot, fsync of the directory. A crash leaves the old snapshot or the new one.
    ///
    /// The temporary file, `<name>.tmp.<16 hex digits>` with a fresh random part, is created
    /// exclusively (`O_CREAT | O_EXCL`, and `O_NOFOLLOW` on Unix) with mode 0600 from the
    /// start: nothing planted at its path, a symbolic link or a file with wider permissions, is
    /// ever followed or reused ([`Error::TempFileExists`]).
    pub fn save(&self, snapshot: &Snapshot, key: &SealKey) -> Result<(), Error> {
        if !self.exclusive {
            return Err(Error::ReadOnly(self.path.clone()));
        }
        let bytes = snapshot.seal(key)?;
        let tmp = temp_path(&self.path)?;
        let mut file = create_new_private(&tmp)?;
        // From here on the temporary file is ours: remove it on any failure.
        let result = write_synced(&mut file, &tmp, &bytes).and_then(|()| {
            drop(file);
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

/// A fresh temporary name beside the snapshot: `<name>.tmp.<16 hex digits>`.
fn temp_path(path: &Path) -> Result<PathBuf, Error> {
    let mut random = [0u8; TEMP_RANDOM_LEN];
    fill_random(&mut random)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_INFIX);
    for b in random {
        name.push(format!("{b:02x}"));
    }
    Ok(path.with_file_name(name))
}

/// Whether `name` is one of the temporary names [`temp_path`] makes for the snapshot `stem`.
fn is_temp_name(name: &OsString, stem: &OsString) -> bool {
    let (Some(name), Some(stem)) = (name.to_str(), stem.to_str()) else {
        return false;
    };
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix(TEMP_INFIX))
        .is_some_and(|hex| {
            hex.len() == 2 * TEMP_RANDOM_LEN && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Removes temporary files a crashed save left beside `path`, best effort. Only regular files
/// and symbolic links with exactly a temporary name are removed; removing a link never
/// touches its target.
fn remove_stale_temps(path: &Path) {
    let stem = path.file_name().unwrap_or_default().to_os_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_temp_name(&entry.file_name(), &stem) {
            continue;
        }
        // `DirEntry::file_type` does not follow symbolic links.
        if entry.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates `path` for writing, owner-only (0600) from its first byte; fails if anything
/// exists at the path, a symbolic link included, rather than write through it.
fn create_new_private(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_EXCL alone already refuses a symbolic link at the path (POSIX); O_NOFOLLOW says so
        // twice. The flag's value is a small positive constant, so the cast keeps it.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    open_private(&mut options, path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Error::TempFileExists(path.to_path_buf()),
        _ => Error::io("creating", path, e),
    })
}

fn write_synced(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), Error> {
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

/// Opens with owner-only permissions (0600) where the platform has them. The mode applies when
/// the open creates the file, so the file is never wider, even for an instant (a umask only
/// narrows it further).
fn open_private(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever sits at the temporary path, a link to a file, a dangling link or a file, the
    /// creation fails with a clear error and writes nothing anywhere.
    #[cfg(unix)]
    #[test]
    fn the_temp_file_is_never_opened_through_what_exists_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"untouched").unwrap();
        let to_file = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &to_file).unwrap();
        let dangling = dir.path().join("dangling");
        let nowhere = dir.path().join("nowhere");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        for path in [&to_file, &dangling, &target] {
            let err = create_new_private(path).unwrap_err();
            assert!(
                matches!(&err, Error::TempFileExists(p) if p == path),
                "{err}"
            );
            assert!(err.to_string().contains("already exists"), "{err}");
        }
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert!(!nowhere.exists());
    }

    #[test]
    fn temp_names_are_fresh_and_recognised() {
        let path = Path::new("dir").join("vault.rdb");
        let (a, b) = (temp_path(&path).unwrap(), temp_path(&path).unwrap());
        assert_ne!(a, b);
        let stem = OsString::from("vault.rdb");
        let name = a.file_name().unwrap().to_os_string();
        assert!(
            name.to_string_lossy().starts_with("vault.rdb.tmp."),
            "{name:?}"
        );
        assert!(is_temp_name(&name, &stem));
        for other in [
            "vault.rdb",
            "vault.rdb.tmp",
            "vault.rdb.tmp.123",
            "other.rdb.tmp.x",
        ] {
            assert!(!is_temp_name(&OsString::from(other), &stem), "{other}");
        }
    }
}
