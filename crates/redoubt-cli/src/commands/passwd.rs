//! `redoubt passwd`: a new password for the vault, by one rewrap of its data key; with
//! `--rekey`, by a new data key and every record sealed again.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{
    cli::PasswdArgs,
    commands::init::kdf_params,
    secrets::{NEW_PASSWORD_ENV, new_password},
    store::{REKEYING_SUFFIX, backups, open, rekey, sibling},
};

/// What a rewrap leaves readable, said by `passwd` after one (and by `--help` and the README).
pub(crate) const REWRAP_WARNING: &str = "rewrap, not rekey: whoever knew the old password and \
     has any copy of this file, including this file as it is now, may still read it; use \
     --rekey if the old password may be known";

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
    // The same password is refused unless the KDF cost changes (then it is a re-cost).
    let unchanged = (params == current).then_some(&vault.password);
    let new = new_password(NEW_PASSWORD_ENV, "New password", unchanged)?;
    let found = backups(path);
    let kept = if found.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = found.iter().map(|b| b.display().to_string()).collect();
        format!(
            "; the migration backups {} still open with the password they had (delete them \
             when no longer needed)",
            names.join(", ")
        )
    };
    if args.rekey {
        rekey(path, vault.store, &new, params)
            .with_context(|| format!("rekeying {}", path.display()))?;
        eprintln!(
            "rekeyed {}: a new data key, every record sealed again, under the new password; \
             the same identity, peer id, grants and records; its change journal starts again \
             empty, as after a migration. Copies of the file made before, and exports, still \
             open with the old password and hold what the vault held then, but nothing \
             written from now on{kept}",
            path.display()
        );
        return Ok(());
    }
    vault
        .store
        .change_password(&vault.password.store(), &new.store(), params)
        .with_context(|| format!("changing the password of {}", path.display()))?;
    // A leftover of a rekey that crashed before its rename: not the vault, and under the new
    // password only if that rekey chose this one; the next --rekey removes it.
    let leftover = sibling(path, REKEYING_SUFFIX);
    let leftover = if leftover.exists() {
        format!(
            " ({} is left from a rekey that did not finish; delete it)",
            leftover.display()
        )
    } else {
        String::new()
    };
    eprintln!(
        "changed the password of {} (a {REWRAP_WARNING}){kept}{leftover}",
        path.display()
    );
    Ok(())
}
