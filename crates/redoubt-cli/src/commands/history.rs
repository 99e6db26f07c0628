//! `redoubt history | restore`: a record's versions, and making an earlier one current again.

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_vault::{Record, history};

use crate::{
    cli::{HistoryArgs, RestoreArgs},
    commands::records::{location, target},
    output::{VersionEntry, escape},
    paths::Target,
    store::open,
};

pub(crate) fn list(path: &Path, args: &HistoryArgs) -> Result<()> {
    let target = target(&args.at)?;
    let loc = location(&target)?;
    let vault = open(path)?;
    let record = vault
        .store
        .record(target.client.as_bytes(), &loc)
        .with_context(|| format!("reading {target}"))?
        .with_context(|| format!("no record at {target}"))?;
    let entries = VersionEntry::all(&record);
    if args.json {
        outln!("{}", serde_json::to_string(&entries)?);
    } else {
        for e in &entries {
            outln!("{}", e.line());
        }
    }
    Ok(())
}

pub(crate) fn restore(path: &Path, args: &RestoreArgs) -> Result<()> {
    let target = Target {
        client: args.client.clone(),
        vault: args.vault_path.clone(),
        record: args.record.clone(),
    };
    let loc = location(&target)?;
    let mut vault = open(path)?;
    let record: Record = vault
        .store
        .record(target.client.as_bytes(), &loc)
        .with_context(|| format!("reading {target}"))?
        .with_context(|| format!("no record at {target}"))?;
    let Some(version) = history::find_version(&record, &args.version)? else {
        bail!(
            "{target} has no version {} (`redoubt history {}` lists them)",
            escape(args.version.as_bytes()),
            escape(target.to_string().as_bytes())
        );
    };
    if version.hash() == record.version_hash() {
        bail!("version {} is already current at {target}", args.version);
    }
    let hash = *version.hash();
    // One durable commit before anything is printed.
    vault
        .store
        .revert(target.client.as_bytes(), &loc, &hash)
        .with_context(|| format!("restoring {target}"))?;
    let now = vault
        .store
        .record(target.client.as_bytes(), &loc)?
        .with_context(|| format!("no record at {target}"))?;
    outln!(
        "restored {target} to {}: new version {}",
        &redoubt_vault::hex(&hash)[..16],
        &redoubt_vault::hex(now.version_hash())[..16]
    );
    Ok(())
}
