//! `redoubt serve`: answer peers' pulls and pushes until interrupted.

use std::path::Path;

use anyhow::{Context, Result};
use redoubt_node::{NodeEvent, libp2p::Multiaddr, spawn};
use tracing::{info, warn};

use crate::{cli::ServeArgs, live, store::open};

pub(crate) fn run(path: &Path, args: &ServeArgs) -> Result<()> {
    let listen = args
        .listen
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .with_context(|| format!("--listen {a:?} is not a multiaddr"))
        })
        .collect::<Result<Vec<_>>>()?;
    // The exclusive lock is held until serve exits: other commands on this vault fail at
    // once with "in use" instead of racing our saves.
    let mut vault = live::Live::new(open(path, true)?);
    live::init_logs("info");
    live::runtime()?.block_on(async {
        let (handle, mut events) = spawn(
            vault.config(listen)?.with_discovery(!args.no_discovery),
            vault.shared(),
        ).await?;
        for addr in handle.listen_addrs() {
            println!("listening on {addr}");
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(NodeEvent::Merged { peer, report }) => {
                        info!(%peer, "merged: {report}");
                        if let Err(e) = vault.save() {
                            warn!("saving the vault failed: {e:#}");
                        }
                    }
                    Some(NodeEvent::PullFailed { peer, error }) => warn!(%peer, "invited pull failed: {error}"),
                    Some(_) => {}
                    None => break,
                },
                _ = shutdown_signal() => {
                    info!("interrupted; stopping");
                    break;
                }
            }
        }
        handle.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    vault.save()
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
