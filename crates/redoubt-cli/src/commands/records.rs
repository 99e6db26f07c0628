//! `redoubt put | get | rm | list`.

use std::{io::Write, path::Path};

use anyhow::{Context, Result};
use redoubt_vault::{ClientId, Location};

use crate::{
    cli::{ListArgs, LocationArgs},
    output::ListEntry,
    secrets::secret_from_stdin,
    store::open,
};

fn location(args: &LocationArgs) -> Result<Location> {
    Ok(Location::new(
        args.vault_path.as_bytes(),
        args.record.as_bytes(),
    )?)
}

pub(crate) fn put(path: &Path, args: &LocationArgs) -> Result<()> {
    let loc = location(args)?;
    let mut vault = open(path, true)?;
    let secret = secret_from_stdin()?;
    vault
        .snapshot
        .instance
        .write(args.client.as_bytes(), &loc, secret)?;
    vault.save()
}

pub(crate) fn get(path: &Path, args: &LocationArgs) -> Result<()> {
    let loc = location(args)?;
    let vault = open(path, false)?;
    let value = vault
        .snapshot
        .instance
        .read(args.client.as_bytes(), &loc)
        .with_context(|| {
            format!(
                "no record at {}/{}/{}",
                args.client, args.vault_path, args.record
            )
        })?;
    let mut out = std::io::stdout().lock();
    out.write_all(value.expose())
        .and_then(|()| out.flush())
        .context("writing the secret to stdout")
}

pub(crate) fn rm(path: &Path, args: &LocationArgs) -> Result<()> {
    let loc = location(args)?;
    let mut vault = open(path, true)?;
    vault
        .snapshot
        .instance
        .delete(args.client.as_bytes(), &loc)?;
    vault.save()
}

pub(crate) fn list(path: &Path, args: &ListArgs) -> Result<()> {
    let vault = open(path, false)?;
    let instance = &vault.snapshot.instance;
    let mut entries = Vec::new();
    for (id, client) in instance.clients() {
        if args.client.as_ref().is_some_and(|c| c.as_bytes() != client) {
            continue;
        }
        entries.extend(
            instance
                .records(id)
                .filter(|r| !r.is_tombstone())
                .map(|r| ListEntry::new(client, r)),
        );
    }
    if let Some(c) = &args.client
        && instance
            .records(&ClientId::from_path(c.as_bytes()))
            .next()
            .is_none()
    {
        anyhow::bail!("no client {c:?} in this vault");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for e in &entries {
            println!("{}", e.line());
        }
    }
    Ok(())
}
