//! `redoubt sync-file`: local sync from another instance's snapshot file or vault.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_node::store::{KdfLimits, ReadOnlyStore};
use redoubt_snapshot::{HEADER_LEN, MAX_BODY_LEN, Snapshot};
use redoubt_vault::{Instance, Location, SyncConfig};

use crate::{
    cli::{Policy, SyncFileArgs},
    output::print_report,
    secrets::{OTHER_PASSWORD_ENV, password},
    store::{Kind, NOT_A_VAULT, file_kind, open, same_file},
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

/// The other instance: a format-1 snapshot file or a vault store, each only read: nothing is
/// written to it or beside it, so a backup on read-only media syncs as well as any.
enum Other {
    Snapshot(Snapshot),
    Store(Box<ReadOnlyStore>),
}

impl Other {
    /// Opens `other` with its password from [`OTHER_PASSWORD_ENV`] or a prompt.
    fn open(other: &Path) -> Result<Self> {
        // The kind first, so no password is asked for a file that is neither kind.
        let snapshot = match file_kind(other)? {
            Some(Kind::Snapshot) => true,
            Some(Kind::Store) => false,
            None => bail!(
                "{} {NOT_A_VAULT}: it starts with neither magic",
                other.display()
            ),
        };
        let other_password = password(
            OTHER_PASSWORD_ENV,
            &format!("Password for {}: ", other.display()),
        )?;
        if snapshot {
            // No lock file: a snapshot is only ever replaced by a rename, so one plain read
            // sees a whole file, old or new.
            let bytes = read_snapshot(other)?;
            let (snapshot, _) = Snapshot::open(&bytes, &other_password.snapshot())
                .with_context(|| format!("opening {}", other.display()))?;
            return Ok(Self::Snapshot(snapshot));
        }
        let store = ReadOnlyStore::open(other, &other_password.store(), &KdfLimits::default())
            .map_err(|e| match e {
                redoubt_node::store::Error::Locked(_) => anyhow::anyhow!(
                    "{e}; if `redoubt serve` runs on it, stop it first or sync with it"
                ),
                redoubt_node::store::Error::NotAStore { path, reason } => anyhow::anyhow!(
                    "{} is not a Redoubt vault (neither a vault store nor a snapshot file): \
                     {reason}",
                    path.display()
                ),
                e => anyhow::Error::from(e).context(format!("opening {}", other.display())),
            })?;
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

/// The bytes of the snapshot file at `path`, its size checked against the format's before it
/// is read.
fn read_snapshot(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading metadata of {}", path.display()))?
        .len();
    let max = HEADER_LEN as u64 + MAX_BODY_LEN;
    if len > max {
        bail!(
            "{} is {len} bytes, more than a snapshot file can be ({max})",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
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
