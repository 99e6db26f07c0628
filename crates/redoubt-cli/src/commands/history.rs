//! `redoubt history | restore`: a record's versions, and making an earlier one current again.
//! Both run on the vault file, or through a running agent (`agent_client`, `agent_requests`),
//! with the same output from the functions here.

use std::{fmt::Display, path::Path};

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
    print(&VersionEntry::all(&record), args.json)
}

/// Prints a record's versions as `history` does: one line each, or one JSON array.
pub(crate) fn print(entries: &[VersionEntry], json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(entries)?);
    } else {
        for e in entries {
            outln!("{}", e.line());
        }
    }
    Ok(())
}

/// The target `restore`'s arguments name.
pub(crate) fn restore_target(args: &RestoreArgs) -> Target {
    Target {
        client: args.client.clone(),
        vault: args.vault_path.clone(),
        record: args.record.clone(),
    }
}

pub(crate) fn restore(path: &Path, args: &RestoreArgs) -> Result<()> {
    let target = restore_target(args);
    let loc = location(&target)?;
    let mut vault = open(path)?;
    let record: Record = vault
        .store
        .record(target.client.as_bytes(), &loc)
        .with_context(|| format!("reading {target}"))?
        .with_context(|| format!("no record at {target}"))?;
    let hash = chosen(&record, &target, &args.version)?;
    // One durable commit before anything is printed.
    vault
        .store
        .revert(target.client.as_bytes(), &loc, &hash)
        .with_context(|| format!("restoring {target}"))?;
    let now = vault
        .store
        .record(target.client.as_bytes(), &loc)?
        .with_context(|| format!("no record at {target}"))?;
    outln!("{}", restored(&target, &hash, &now));
    Ok(())
}

/// The hash of the version of `record` that `version` (a hex prefix) names, unless it names
/// none or the current one.
pub(crate) fn chosen(record: &Record, target: &impl Display, version: &str) -> Result<[u8; 32]> {
    let Some(found) = history::find_version(record, version)? else {
        bail!(
            "{target} has no version {} (`redoubt history {}` lists them)",
            escape(version.as_bytes()),
            escape(target.to_string().as_bytes())
        );
    };
    if found.hash() == record.version_hash() {
        bail!("version {version} is already current at {target}");
    }
    Ok(*found.hash())
}

/// The line `restore` prints once the restore is committed; `now` is the record after it.
pub(crate) fn restored(target: &impl Display, hash: &[u8; 32], now: &Record) -> String {
    format!(
        "restored {target} to {}: new version {}",
        &redoubt_vault::hex(hash)[..16],
        &redoubt_vault::hex(now.version_hash())[..16]
    )
}
