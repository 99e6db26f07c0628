//! The node half of `redoubt agent` (also `redoubt serve`): answer peers' pulls and pushes.

use anyhow::{Context, Result};
use redoubt_node::{
    Handle, NodeConfig, NodeEvent, Vault, keypair_from_seed,
    libp2p::{Multiaddr, multiaddr::Protocol},
    store::Store,
};
use tracing::{info, warn};

use crate::cli::AgentArgs;

/// The `--listen` addresses, parsed.
pub(crate) fn listen_addrs(args: &AgentArgs) -> Result<Vec<Multiaddr>> {
    args.listen
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .with_context(|| format!("--listen {a:?} is not a multiaddr"))
        })
        .collect()
}

/// Starts a node that owns the vault over `store`, listening on `listen`, and a task that
/// logs what it does. The node commits every merge to the vault file before it answers, so
/// its events are for the log only.
/// Each event also goes to `on_event`.
pub(crate) async fn start(
    store: Store,
    listen: Vec<Multiaddr>,
    args: &AgentArgs,
    on_event: impl Fn(NodeEvent) + Send + 'static,
) -> Result<Handle> {
    let keypair = keypair_from_seed(store.identity().expose_seed())?;
    let mut config = NodeConfig::new(keypair)
        .with_discovery(!args.no_discovery)
        .with_allow_unbound(args.allow_unbound);
    config.listen = listen;
    let (handle, mut events) = redoubt_node::spawn(config, Vault::new(store)).await?;
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match &event {
                NodeEvent::Merged { peer, report } => info!(%peer, "merged: {report}"),
                NodeEvent::PullFailed { peer, error } => {
                    warn!(%peer, "invited pull failed: {error}")
                }
                _ => {}
            }
            on_event(event);
        }
    });
    Ok(handle)
}

/// The addresses a node listens on without their `/p2p/PEER_ID` ending: what to listen on
/// again to be found at the same ports.
pub(crate) fn bound(handle: &Handle) -> Vec<Multiaddr> {
    handle
        .listen_addrs()
        .iter()
        .map(|a| {
            a.iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect()
        })
        .collect()
}

/// Resolves at the first Ctrl-C, or SIGTERM on Unix. The handlers are installed when this is
/// called (not when the future is first polled), so a signal that comes early is not lost.
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
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
