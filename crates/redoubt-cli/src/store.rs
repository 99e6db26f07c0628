//! Finding, creating and opening this node's vault.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use redoubt_snapshot::{MAGIC, Password, SealKey, Snapshot, VaultFile};

use crate::secrets::{PASSWORD_ENV, password};

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

/// An opened vault: its lock, its state and the key to save it with.
pub(crate) struct Opened {
    pub(crate) file: VaultFile,
    pub(crate) snapshot: Snapshot,
    pub(crate) key: SealKey,
}

/// Locks (exclusively when `write`) and loads the vault with the password from the user.
pub(crate) fn open(path: &Path, write: bool) -> Result<Opened> {
    if !path.exists() {
        bail!("no vault at {} (run `redoubt init` first)", path.display());
    }
    recognise(path)?;
    let file = if write {
        VaultFile::lock_exclusive(path)
    } else {
        VaultFile::lock_shared(path)
    }
    .map_err(|e| match e {
        redoubt_snapshot::Error::Locked { .. } => {
            anyhow::anyhow!("{e}; if `redoubt serve` runs on it, stop it first or sync with it")
        }
        e => e.into(),
    })?;
    let pw = password(PASSWORD_ENV, &format!("Password for {}: ", path.display()))?;
    let (snapshot, key) = load(&file, &pw)?;
    Ok(Opened {
        file,
        snapshot,
        key,
    })
}

/// Checks that `path` starts like a Redoubt snapshot before anything is created beside it: the
/// lock file `PATH.lock` is only ever made for a vault (`redoubt --vault /etc/passwd list` must
/// not leave `/etc/passwd.lock`). The full checks come with the load, under the lock.
pub(crate) fn recognise(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut magic = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut magic))
        .with_context(|| format!("opening {}", path.display()))?;
    if magic != MAGIC {
        bail!(
            "opening {}: {}",
            path.display(),
            redoubt_snapshot::Error::NotASnapshot
        );
    }
    Ok(())
}

/// Loads a locked snapshot, naming the file in the error.
pub(crate) fn load(file: &VaultFile, pw: &Password) -> Result<(Snapshot, SealKey)> {
    file.load(pw)
        .with_context(|| format!("opening {}", file.path().display()))
}

impl Opened {
    /// Saves atomically.
    pub(crate) fn save(&self) -> Result<()> {
        self.file
            .save(&self.snapshot, &self.key)
            .with_context(|| format!("saving {}", self.file.path().display()))
    }
}
