//! `redoubt passwd`: a new password for the vault, by one rewrap of its data key.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{
    cli::PasswdArgs,
    commands::init::kdf_params,
    secrets::{NEW_PASSWORD_ENV, new_password},
    store::{BACKUP_SUFFIX, open, sibling},
};

pub(crate) fn run(path: &Path, args: &PasswdArgs) -> Result<()> {
    // The current password first: a wrong one fails before the new one is asked for.
    let mut vault = open(path)?;
    let current = vault.store.kdf_params()?;
    let params =
        kdf_params(current, args.kdf_memory_kib, args.kdf_iterations).with_context(|| {
            if args.kdf_memory_kib.is_none() && args.kdf_iterations.is_none() {
                "keeping the vault's KDF settings; --kdf-memory-kib and --kdf-iterations \
                 change them"
            } else {
                "the new KDF settings"
            }
        })?;
    let new = new_password(NEW_PASSWORD_ENV, "New password", Some(&vault.password))?;
    vault
        .store
        .change_password(&vault.password.store(), &new.store(), params)
        .with_context(|| format!("changing the password of {}", path.display()))?;
    let backup = sibling(path, BACKUP_SUFFIX);
    let kept = if backup.exists() {
        format!(" (so does the migration backup {})", backup.display())
    } else {
        String::new()
    };
    eprintln!(
        "changed the password of {}; copies of the vault file made before, and exports, still \
         open with the old password{kept}",
        path.display()
    );
    Ok(())
}
