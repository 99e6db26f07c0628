//! `redoubt init`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_snapshot::{KdfParams, Snapshot, VaultFile};

use crate::{cli::InitArgs, secrets::new_password, store::create_parent};

pub(crate) fn run(path: &Path, args: &InitArgs) -> Result<()> {
    if path.exists() {
        bail!("a vault already exists at {}", path.display());
    }
    let defaults = KdfParams::default();
    let params = KdfParams {
        memory_kib: args.kdf_memory_kib.unwrap_or(defaults.memory_kib),
        iterations: args.kdf_iterations.unwrap_or(defaults.iterations),
        parallelism: defaults.parallelism,
    };
    params.check()?;
    let password = new_password()?;
    create_parent(path)?;
    let file = VaultFile::lock_exclusive(path)?;
    let snapshot = Snapshot::generate()?;
    file.create(&snapshot, &password, params)
        .with_context(|| format!("creating {}", path.display()))?;
    eprintln!(
        "created vault {} (node {})",
        path.display(),
        snapshot.instance.node()
    );
    Ok(())
}
