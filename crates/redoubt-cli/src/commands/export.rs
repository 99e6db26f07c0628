//! `redoubt export FILE`: the vault's whole state as a sealed format-1 snapshot file.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use redoubt_snapshot::SealKey;

use crate::{
    cli::ExportArgs,
    secrets::{EXPORT_PASSWORD_ENV, new_password},
    store::{open, same_file, sync_dir},
};

pub(crate) fn run(path: &Path, args: &ExportArgs) -> Result<()> {
    let file = &args.file;
    if same_file(path, file) {
        bail!("{} is this vault itself", file.display());
    }
    if !args.force && std::fs::symlink_metadata(file).is_ok() {
        bail!(
            "{} already exists; pass --force to replace it",
            file.display()
        );
    }
    let vault = open(path)?;
    let snapshot = vault
        .store
        .export()
        .with_context(|| format!("exporting {}", path.display()))?;
    // As costly to guess as the vault itself.
    let params = vault.store.kdf_params()?;
    let (password, which) = if std::env::var_os(EXPORT_PASSWORD_ENV).is_some() {
        (
            new_password(EXPORT_PASSWORD_ENV, "Export password", None)?,
            EXPORT_PASSWORD_ENV,
        )
    } else {
        (vault.password.clone(), "the vault's password")
    };
    let key = SealKey::generate(&password.snapshot(), params)?;
    let bytes = snapshot
        .seal(&key)
        .with_context(|| format!("sealing the export of {}", path.display()))?;
    write_new(file, &bytes, args.force)?;
    eprintln!(
        "exported {} record version(s) and {} grant(s) to {}, sealed with {which}",
        snapshot.instance.len(),
        snapshot.access.len(),
        file.display()
    );
    Ok(())
}

/// Writes `bytes` to `file` atomically: a new temporary file beside it (mode 0600, created
/// exclusively), synced, then linked at `file` (which fails if anything is there) or, with
/// `replace`, renamed over it; then the directory is synced. A crash leaves no `file` or the
/// whole of it, and never a partly written one.
fn write_new(file: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let temp = temp_beside(file)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    let result = (|| {
        out.write_all(bytes)
            .and_then(|()| out.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        drop(out);
        if replace {
            return std::fs::rename(&temp, file)
                .with_context(|| format!("renaming {} to {}", temp.display(), file.display()));
        }
        match std::fs::hard_link(&temp, file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(
                    "{} already exists; pass --force to replace it",
                    file.display()
                )
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", file.display())),
        }
    })();
    let _ = std::fs::remove_file(&temp);
    result?;
    sync_dir(file)
}

/// `FILE.tmp.<16 hex digits>` beside `file`, fresh random.
fn temp_beside(file: &Path) -> Result<PathBuf> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut name = file
        .file_name()
        .with_context(|| format!("{} names no file", file.display()))?
        .to_os_string();
    name.push(".tmp.");
    for b in random {
        name.push(format!("{b:02x}"));
    }
    Ok(file.with_file_name(name))
}
