//! `redoubt sync-file`: local sync from another instance's snapshot file or vault.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_node::store::Store;
use redoubt_snapshot::{Snapshot, VaultFile};
use redoubt_vault::{Instance, Location, SyncConfig};

use crate::{
    cli::{Policy, SyncFileArgs},
    output::print_report,
    secrets::{OTHER_PASSWORD_ENV, password},
    store::{is_snapshot, open, open_store, same_file},
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
        bail!("no vault or snapshot file at {}", args.other.display());
    }
    let mut vault = open(path)?;
    let other = Other::open(&args.other)?;
    let report = vault.store.sync_from(other.instance(), &config)?;
    print_report(&report, args.json)
}

/// The other instance: a format-1 snapshot file (read under its shared lock) or a vault store
/// (open, so locked, while it is read).
enum Other {
    Snapshot(Snapshot),
    Store(Box<Store>),
}

impl Other {
    /// Opens `other` with its password from [`OTHER_PASSWORD_ENV`] or a prompt.
    fn open(other: &Path) -> Result<Self> {
        let snapshot = is_snapshot(other)?;
        let other_password = password(
            OTHER_PASSWORD_ENV,
            &format!("Password for {}: ", other.display()),
        )?;
        if snapshot {
            let file = VaultFile::lock_shared(other)?;
            let (snapshot, _) = file
                .load(&other_password.snapshot())
                .with_context(|| format!("opening {}", other.display()))?;
            return Ok(Self::Snapshot(snapshot));
        }
        let store = open_store(other, &other_password)?;
        let damaged: Vec<String> = store.damaged_rows().collect();
        if let Some(row) = damaged.first() {
            bail!(
                "{} has {} damaged record row(s) (the first: {row}): they would be missing from \
                 the sync, so nothing was synced",
                other.display(),
                damaged.len()
            );
        }
        Ok(Self::Store(Box::new(store)))
    }

    fn instance(&self) -> &Instance {
        match self {
            Self::Snapshot(s) => &s.instance,
            Self::Store(s) => s.instance(),
        }
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
