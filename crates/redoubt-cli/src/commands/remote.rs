//! `redoubt remote add|join|sync|list`: sync through shared storage ([`redoubt_remote`]).

use std::path::Path;

use anyhow::{Context, Result, bail};
use redoubt_node::store::{KdfLimits, KdfParams, Store};
use redoubt_remote::{Backend, Remote, SyncReport};
use serde_json::json;

use crate::{
    cli::{RemoteCommand, RemoteListArgs, RemoteSetUpArgs, RemoteSyncArgs},
    secrets::{new_password, password},
    store::open,
};

/// Where the recovery passphrase comes from when not typed.
const PASSPHRASE_ENV: &str = "REDOUBT_REMOTE_PASSPHRASE";

pub(crate) fn run(path: &Path, command: RemoteCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let mut vault = open(path)?;
    let store = &mut vault.store;
    match command {
        RemoteCommand::Add(args) => runtime.block_on(add(store, &args)),
        RemoteCommand::Join(args) => runtime.block_on(join(store, &args)),
        RemoteCommand::Sync(args) => runtime.block_on(sync(store, &args, false)),
        RemoteCommand::Compact(args) => runtime.block_on(sync(store, &args, true)),
        RemoteCommand::List(args) => list(store, &args),
    }
}

fn clients(args: &RemoteSetUpArgs) -> Option<Vec<Vec<u8>>> {
    (!args.clients.is_empty()).then(|| args.clients.iter().map(|c| c.as_bytes().to_vec()).collect())
}

async fn add(store: &mut Store, args: &RemoteSetUpArgs) -> Result<()> {
    let backend = Backend::from_url(&args.url)?;
    if store.remote(&args.name)?.is_some() {
        bail!("this vault already has a remote named {}", args.name);
    }
    let passphrase = new_password(
        PASSPHRASE_ENV,
        "New recovery passphrase for the remote",
        None,
    )?;
    let mut remote = Remote::add(
        store,
        &args.name,
        &args.url,
        backend,
        clients(args),
        passphrase.expose(),
        KdfParams::default(),
    )
    .await?;
    eprintln!("remote {} set up; device {}", args.name, remote.device());
    let report = remote.sync(store).await?;
    print_sync(&args.name, &report, false)
}

async fn join(store: &mut Store, args: &RemoteSetUpArgs) -> Result<()> {
    let backend = Backend::from_url(&args.url)?;
    if store.remote(&args.name)?.is_some() {
        bail!("this vault already has a remote named {}", args.name);
    }
    let passphrase = password(
        PASSPHRASE_ENV,
        &format!("Recovery passphrase for {}: ", args.name),
    )?;
    let mut remote = Remote::join(
        store,
        &args.name,
        &args.url,
        backend,
        clients(args),
        passphrase.expose(),
        &KdfLimits::default(),
    )
    .await?;
    eprintln!("joined remote {}; device {}", args.name, remote.device());
    let report = remote.sync(store).await?;
    print_sync(&args.name, &report, false)
}

async fn sync(store: &mut Store, args: &RemoteSyncArgs, compact: bool) -> Result<()> {
    let names = match &args.name {
        Some(n) => vec![n.clone()],
        None => store.remote_names()?,
    };
    if names.is_empty() {
        bail!("this vault has no remote (add one with `redoubt remote add NAME URL`)");
    }
    let mut failed = 0;
    for name in names {
        let mut remote = Remote::open(store, &name, None)?;
        let report = if compact {
            remote.compact(store).await
        } else {
            remote.sync(store).await
        }
        .with_context(|| format!("remote {name}"))?;
        failed += report.failed.len();
        print_sync(&name, &report, args.json)?;
    }
    if failed > 0 {
        bail!("{failed} device(s) on the remote were refused (see above); the rest synced");
    }
    Ok(())
}

fn print_sync(name: &str, r: &SyncReport, as_json: bool) -> Result<()> {
    let uploaded_bytes: usize = r.uploaded.iter().map(|u| u.bytes).sum();
    let uploaded_events: usize = r.uploaded.iter().map(|u| u.events).sum();
    let bases = r
        .uploaded
        .iter()
        .filter(|u| u.kind == redoubt_remote::format::SegmentKind::Base)
        .count();
    if as_json {
        let failed: Vec<_> = r
            .failed
            .iter()
            .map(|(d, e)| json!({"device": d, "error": e.to_string()}))
            .collect();
        let out = json!({
            "remote": name,
            "added": r.merge.added,
            "updated": r.merge.updated,
            "deleted": r.merge.deleted,
            "unchanged": r.merge.unchanged,
            "conflicts_resolved": r.merge.conflicts_resolved,
            "refused_ahead": r.merge.refused_ahead,
            "refused_clients": r.refused_records,
            "devices_changed": r.devices_changed,
            "segments_fetched": r.segments_fetched,
            "bytes_fetched": r.bytes_fetched,
            "segments_uploaded": r.uploaded.len(),
            "events_uploaded": uploaded_events,
            "bytes_uploaded": uploaded_bytes,
            "bases_uploaded": bases,
            "segments_deleted": r.segments_deleted,
            "failed": failed,
        });
        println!("{out}");
    } else {
        println!(
            "{name}: {} added, {} updated, {} deleted, {} unchanged ({} conflicts resolved, {} refused); \
             fetched {} segments from {} devices; uploaded {} segments ({} events, {} bytes, {} bases); \
             deleted {} old segments",
            r.merge.added,
            r.merge.updated,
            r.merge.deleted,
            r.merge.unchanged,
            r.merge.conflicts_resolved,
            r.refused_records + r.merge.refused_ahead,
            r.segments_fetched,
            r.devices_changed,
            r.uploaded.len(),
            uploaded_events,
            uploaded_bytes,
            bases,
            r.segments_deleted
        );
        for (device, e) in &r.failed {
            eprintln!("redoubt: warning: device {device} refused: {e}");
        }
    }
    Ok(())
}

fn list(store: &Store, args: &RemoteListArgs) -> Result<()> {
    for name in store.remote_names()? {
        let bytes = store.remote(&name)?.context("remote vanished")?;
        let state = redoubt_remote::RemoteState::decode(&bytes)?;
        let clients = match &state.clients {
            None => "*".to_owned(),
            Some(c) => c
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        };
        let device = state.key.device_id(&store.node()).to_string();
        if args.json {
            println!(
                "{}",
                json!({"name": name, "url": state.url, "clients": clients, "device": device,
                       "segments": state.own.seq, "devices_seen": state.seen.len()})
            );
        } else {
            println!(
                "{name}\t{}\t{clients}\tdevice {device}\t{} segments\t{} other devices",
                state.url,
                state.own.seq,
                state.seen.len()
            );
        }
    }
    Ok(())
}
