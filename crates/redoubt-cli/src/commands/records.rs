//! `redoubt put | get | rm | list | find`.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::Path,
};

use anyhow::{Context, Result, bail};
use redoubt_vault::{ClientId, Location, SecretValue};

use crate::{
    cli::{FindArgs, GetArgs, ListArgs, LocationArgs, PutArgs},
    output::{ListEntry, escape},
    paths::Target,
    secrets::secret_from_stdin,
    store::{Opened, open},
};

pub(crate) fn target(args: &LocationArgs) -> Result<Target> {
    args.target().map_err(anyhow::Error::msg)
}

pub(crate) fn location(target: &Target) -> Result<Location> {
    Ok(Location::new(
        target.vault.as_bytes(),
        target.record.as_bytes(),
    )?)
}

pub(crate) fn put(path: &Path, args: &PutArgs) -> Result<()> {
    let target = target(&args.at)?;
    let loc = location(&target)?;
    let mut vault = open(path)?;
    // Decide about an existing secret before asking for the new one.
    if !args.force && exists(&vault, &target, &loc)? {
        confirm_overwrite(&target)?;
    }
    let secret = secret_from_stdin()?;
    if secret.expose().is_empty() && !args.allow_empty {
        bail!(
            "refusing to store an empty secret at {target} (empty stdin or an empty answer); \
             pass --allow-empty if that is what you mean"
        );
    }
    store(&mut vault, &target, &loc, secret)
}

/// Writes `secret` at `target`: one durable commit.
pub(crate) fn store(
    vault: &mut Opened,
    target: &Target,
    loc: &Location,
    secret: SecretValue,
) -> Result<()> {
    vault
        .store
        .put(target.client.as_bytes(), loc, secret)
        .with_context(|| format!("storing {target}"))?;
    Ok(())
}

/// Whether a live secret is stored at `target`.
pub(crate) fn exists(vault: &Opened, target: &Target, loc: &Location) -> Result<bool> {
    Ok(vault
        .store
        .get(target.client.as_bytes(), loc)
        .with_context(|| format!("reading {target}"))?
        .is_some())
}

/// On a terminal, asks whether to replace the secret at `target`; elsewhere fails, naming
/// --force.
pub(crate) fn confirm_overwrite(target: &Target) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{target} already holds a secret; pass --force to replace it");
    }
    eprint!("{target} already holds a secret. Replace it? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if !matches!(line.trim(), "y" | "Y" | "yes") {
        bail!("kept the secret at {target}; nothing was changed");
    }
    Ok(())
}

pub(crate) fn get(path: &Path, args: &GetArgs) -> Result<()> {
    let target = target(&args.at)?;
    let loc = location(&target)?;
    let vault = open(path)?;
    let value = vault
        .store
        .get(target.client.as_bytes(), &loc)
        .with_context(|| format!("reading {target}"))?
        .with_context(|| format!("no record at {target}"))?;
    if args.clip {
        return crate::commands::clip::copy(value.expose(), args.clip_timeout);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(value.expose())?;
    // On a terminal the prompt must not land on the secret's line; a pipe gets the exact bytes.
    if out.is_terminal() && !value.expose().ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn rm(path: &Path, args: &LocationArgs) -> Result<()> {
    let target = target(args)?;
    let loc = location(&target)?;
    let mut vault = open(path)?;
    vault.store.delete(target.client.as_bytes(), &loc)?;
    Ok(())
}

/// Every live record's entry (of `client` only, if given), sorted by client, vault, record.
fn entries(vault: &Opened, client: Option<&str>) -> Result<Vec<ListEntry>> {
    let store = &vault.store;
    let mut entries = Vec::new();
    for (id, name) in store.clients() {
        if client.is_some_and(|c| c.as_bytes() != name) {
            continue;
        }
        let records = store
            .records(id)
            .with_context(|| format!("reading client {}", String::from_utf8_lossy(name)))?;
        entries.extend(
            records
                .iter()
                .filter(|r| !r.is_tombstone())
                .map(|r| ListEntry::new(name, r)),
        );
    }
    if let Some(c) = client
        && store
            .client_path(&ClientId::from_path(c.as_bytes()))
            .is_none()
    {
        bail!("no client {c:?} in this vault");
    }
    entries.sort_by(|a, b| a.key().cmp(b.key()));
    Ok(entries)
}

pub(crate) fn list(path: &Path, args: &ListArgs) -> Result<()> {
    let vault = open(path)?;
    let entries = entries(&vault, args.client.as_deref())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        for e in &entries {
            writeln!(out, "{}", e.line())?;
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn find(path: &Path, args: &FindArgs) -> Result<()> {
    let vault = open(path)?;
    let needle = args.pattern.to_lowercase();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in entries(&vault, None)? {
        let [client, vault, record] = e.names();
        let path = format!("{}/{}/{}", escape(client), escape(vault), escape(record));
        if String::from_utf8_lossy(&[client, b"/", vault, b"/", record].concat())
            .to_lowercase()
            .contains(&needle)
        {
            writeln!(out, "{path}")?;
        }
    }
    out.flush()?;
    Ok(())
}
