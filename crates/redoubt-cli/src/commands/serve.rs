//! `redoubt serve`: answer peers' pulls and pushes until interrupted.

use std::{io::Write, path::Path};

use anyhow::{Context, Result};
use redoubt_node::{NodeEvent, libp2p::Multiaddr};
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
    live::check_listen(&listen)?;
    // The store stays open (and locked) until serve exits: other commands on this vault fail
    // at once with "in use".
    let mut vault = live::Live::new(open(path)?.store)?;
    live::init_logs("info");
    live::runtime()?.block_on(async {
        // Listen for signals before anything else, once: a listener made per loop pass missed
        // signals that arrived between passes.
        let stop = shutdown_signal()?;
        tokio::pin!(stop);
        let config = vault
            .config(listen)?
            .with_discovery(!args.no_discovery)
            .with_allow_unbound(args.allow_unbound);
        let (handle, mut events) = vault.spawn(config).await?;
        // A reader that went away (a closed pipe) must not stop the server.
        let mut out = std::io::stdout().lock();
        for addr in handle.listen_addrs() {
            let _ = writeln!(out, "listening on {addr}");
        }
        let _ = out.flush();
        drop(out);
        loop {
            tokio::select! {
                // The node commits every merge to the vault file before it answers, so these
                // are for the log.
                event = events.recv() => match event {
                    Some(NodeEvent::Merged { peer, report }) => info!(%peer, "merged: {report}"),
                    Some(NodeEvent::PullFailed { peer, error }) => warn!(%peer, "invited pull failed: {error}"),
                    Some(_) => {}
                    None => break,
                },
                () = &mut stop => {
                    info!("interrupted; stopping");
                    break;
                }
            }
        }
        handle.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })
}

/// Resolves at the first Ctrl-C, or SIGTERM on Unix. The handlers are installed when this is
/// called (not when the future is first polled), so a signal that comes early is not lost.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
