//! `redoubt sync-file`: local sync from another instance's snapshot file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_snapshot::VaultFile;
use redoubt_vault::{Location, SyncConfig};

use crate::{
    cli::{Policy, SyncFileArgs},
    output::print_report,
    secrets::{OTHER_PASSWORD_ENV, password},
    store::{load, open, recognise},
};

/// The sync configuration the arguments describe.
pub(crate) fn config(args: &SyncFileArgs) -> Result<SyncConfig> {
    let mut config = SyncConfig::full().policy(args.policy.into());
    for c in &args.clients {
        config = config.client(c.as_bytes())?;
    }
    for v in &args.vault_paths {
        config = config.vault(v.as_bytes())?;
    }
    for r in &args.records {
        let (vault, record) = r
            .split_once('/')
            .with_context(|| format!("--record {r:?}: expected VAULT/RECORD"))?;
        config = config.record(&Location::new(vault.as_bytes(), record.as_bytes())?);
    }
    for m in &args.map_clients {
        let (from, to) = pair(m, "--map-client")?;
        config = config.map_client(from.as_bytes(), to.as_bytes())?;
    }
    for m in &args.map_vaults {
        let (from, to) = pair(m, "--map-vault")?;
        config = config.map_vault(from.as_bytes(), to.as_bytes())?;
    }
    Ok(config)
}

fn pair<'a>(arg: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    arg.split_once('=')
        .with_context(|| format!("{flag} {arg:?}: expected FROM=TO"))
}

pub(crate) fn run(path: &Path, args: &SyncFileArgs) -> Result<()> {
    let config = config(args)?;
    if same_file(path, &args.other) {
        bail!("{} is this vault itself", args.other.display());
    }
    if !args.other.is_file() {
        bail!("no snapshot at {}", args.other.display());
    }
    let mut vault = open(path, true)?;
    recognise(&args.other)?;
    let other_file = VaultFile::lock_shared(&args.other)?;
    let other_password = password(
        OTHER_PASSWORD_ENV,
        &format!("Password for {}: ", args.other.display()),
    )?;
    let (other, _) = load(&other_file, &other_password)?;
    let report = vault
        .snapshot
        .instance
        .sync_from(&other.instance, &config)?;
    if report.changed() {
        vault.save()?;
    }
    print_report(&report, args.json)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl From<Policy> for redoubt_vault::MergePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Newest => Self::Newest,
            Policy::KeepOld => Self::KeepOld,
            Policy::Replace => Self::Replace,
        }
    }
}
