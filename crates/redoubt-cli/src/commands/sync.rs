//! `redoubt sync`: pull from a live peer, then ask it to pull from us.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use redoubt_node::{
    Handle, Progress, PullOutcome,
    libp2p::{Multiaddr, PeerId},
    spawn,
};
use redoubt_protocol::Mode;
use redoubt_vault::MergeReport;
use serde::Serialize;
use tokio::sync::watch;

use crate::{cli::SyncArgs, live, output::ReportJson, store::open};

/// What `sync --json` prints: a report per direction, `null` for a direction not run.
#[derive(Serialize)]
struct SyncJson {
    pulled: Option<ReportJson>,
    pushed: Option<ReportJson>,
}

fn mode(args: &SyncArgs) -> Mode {
    match &args.client {
        None => Mode::Import { clients: vec![] },
        Some(c) if args.vault_paths.is_empty() => Mode::Full {
            client: c.as_bytes().to_vec(),
        },
        Some(c) => Mode::Partial {
            client: c.as_bytes().to_vec(),
            vaults: args
                .vault_paths
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            records: vec![],
        },
    }
}

/// Pull, then push (or one of them), naming the direction in any error. A client that only
/// one side holds is not an error.
async fn run_directions(
    handle: &Handle,
    addr: &Multiaddr,
    mode: Mode,
    args: &SyncArgs,
    progress: Option<watch::Sender<Progress>>,
) -> Result<(Option<PullOutcome>, Option<MergeReport>)> {
    let mut missing_there = false;
    let pulled = if args.push_only {
        None
    } else {
        match handle
            .pull_with_progress(addr, mode.clone(), progress)
            .await
        {
            Ok(p) => Some(p),
            Err(e) if e.is_client_not_found() && !args.pull_only => {
                missing_there = true;
                Some(PullOutcome::default())
            }
            Err(e) => return Err(anyhow::Error::new(e).context("pull")),
        }
    };
    let pushed = if args.pull_only {
        None
    } else {
        match handle.push(addr, mode).await {
            Ok(r) => Some(r),
            Err(e) if e.is_client_not_found() && !missing_there && !args.push_only => {
                Some(MergeReport::default())
            }
            Err(e) => {
                let what = if pulled.is_some() {
                    "push (the pull before it completed and was saved)"
                } else {
                    "push"
                };
                return Err(anyhow::Error::new(e).context(what));
            }
        }
    };
    Ok((pulled, pushed))
}

/// Where the peer is: ADDR as given, or the address discovery finds for --peer.
async fn peer_addr(handle: &Handle, args: &SyncArgs) -> Result<Multiaddr> {
    if let Some(addr) = &args.addr {
        return addr
            .parse()
            .with_context(|| format!("{addr:?} is not a multiaddr"));
    }
    let peer = args.peer.as_deref().unwrap_or_default();
    let id: PeerId = peer
        .parse()
        .with_context(|| format!("--peer {peer:?} is not a peer id"))?;
    Ok(handle.discover(id, Duration::from_secs(args.wait)).await?)
}

pub(crate) fn run(path: &Path, args: &SyncArgs) -> Result<()> {
    if let Some(addr) = &args.addr {
        addr.parse::<Multiaddr>()
            .with_context(|| format!("{addr:?} is not a multiaddr"))?;
    }
    let mode = mode(args);
    let mut vault = live::Live::new(open(path, true)?);
    live::init_logs("error");
    let before = vault.digest();
    let result: Result<(Option<PullOutcome>, Option<MergeReport>)> =
        live::runtime()?.block_on(async {
            let discovery = args.peer.is_some() && !args.no_discovery;
            let config = vault.config(Vec::new())?.with_discovery(discovery);
            let (handle, _events) = spawn(config, vault.shared()).await?;
            let addr = match peer_addr(&handle, args).await {
                Ok(a) => a,
                Err(e) => {
                    handle.shutdown().await;
                    return Err(e);
                }
            };
            let (progress, bar) = live::progress_bar();
            let result = run_directions(&handle, &addr, mode, args, progress).await;
            if let Some(bar) = bar {
                let _ = bar.await;
            }
            handle.shutdown().await;
            result
        });
    // Whatever was verified and merged is kept, even when the session failed later.
    if vault.digest() != before {
        vault.save()?;
    }
    let (pulled, pushed) = result?;
    let pulled = pulled.map(|p| p.report);
    if args.json {
        let json = SyncJson {
            pulled: pulled.as_ref().map(ReportJson::from),
            pushed: pushed.as_ref().map(ReportJson::from),
        };
        println!("{}", serde_json::to_string(&json)?);
    } else {
        if let Some(r) = pulled {
            println!("pulled: {r}");
        }
        if let Some(r) = pushed {
            println!("pushed: {r}");
        }
    }
    Ok(())
}
