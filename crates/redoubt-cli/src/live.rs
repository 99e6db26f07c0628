//! Glue between an opened vault and a live node: the runtime, the vault the node owns, logs
//! and the progress bar.

use std::{io::IsTerminal, time::Duration};

use anyhow::{Context, Result};
use redoubt_node::{
    Handle, NodeConfig, NodeEvent, Progress, Vault, keypair_from_seed,
    libp2p::{Multiaddr, PeerId, identity::Keypair},
    store::Store,
};
use tokio::sync::{mpsc, watch};

/// A tokio runtime for one command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Logs to stderr at `default` level unless RUST_LOG says otherwise; libp2p's own crates log
/// at `warn` at most by default (their INFO lines, such as mDNS starting, say nothing to a
/// user). Logs name peers, sessions, clients and counts, never secret values.
pub(crate) fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let quiet = matches!(default, "off" | "error");
        let libp2p = if quiet { "" } else { ",libp2p=warn" };
        tracing_subscriber::EnvFilter::new(format!("{default}{libp2p}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Checks that each TCP listen address can be bound, so a port in use says so (the node's own
/// error carries no cause). The probe socket is closed at once.
pub(crate) fn check_listen(addrs: &[Multiaddr]) -> Result<()> {
    use redoubt_node::libp2p::multiaddr::Protocol;
    for addr in addrs {
        let mut ip = None;
        let mut port = None;
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
                Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
                Protocol::Tcp(p) => port = Some(p),
                _ => {}
            }
        }
        if let (Some(ip), Some(port)) = (ip, port)
            && port != 0
            && let Err(e) = std::net::TcpListener::bind((ip, port))
        {
            let what = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another program, perhaps another `redoubt serve`, listens there: stop it or \
                 choose another port)"
            } else {
                ""
            };
            anyhow::bail!("cannot listen on {addr}: {e}{what}");
        }
    }
    Ok(())
}

/// The peer id of a vault's identity.
pub(crate) fn peer_id(store: &Store) -> Result<PeerId> {
    Ok(keypair_from_seed(store.identity().expose_seed())?
        .public()
        .to_peer_id())
}

/// An opened vault on its way to a live node: a [`Vault`] over the vault's store, which the
/// node owns once [`Live::spawn`] started it. Every change, a local write, a merge from a peer
/// or a grant, is committed to the store file by the vault before it returns (and so before
/// the node acknowledges it): there is nothing to save afterwards.
pub(crate) struct Live {
    /// The vault until a node takes it.
    vault: Option<Vault>,
    /// The node that took it.
    node: Option<Handle>,
    /// The vault's identity, as the node's key.
    keypair: Keypair,
}

impl Live {
    pub(crate) fn new(store: Store) -> Result<Self> {
        let keypair = keypair_from_seed(store.identity().expose_seed())?;
        Ok(Self {
            vault: Some(Vault::new(store)),
            node: None,
            keypair,
        })
    }

    /// Starts a node that owns this vault (once).
    pub(crate) async fn spawn(
        &mut self,
        config: NodeConfig,
    ) -> Result<(Handle, mpsc::Receiver<NodeEvent>)> {
        let vault = self
            .vault
            .take()
            .context("this vault already runs a node")?;
        let (handle, events) = redoubt_node::spawn(config, vault).await?;
        self.node = Some(handle.clone());
        Ok((handle, events))
    }

    /// Runs `f` on the vault, wherever it is now.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Vault) -> R) -> Result<R> {
        match (&self.node, &self.vault) {
            (Some(node), _) => Ok(node.read(f)),
            (None, Some(vault)) => Ok(f(vault)),
            (None, None) => anyhow::bail!("the vault was closed when its node failed to start"),
        }
    }

    /// Runs `f` on the vault to change it (each change one durable commit of the vault).
    pub(crate) fn write<R>(&mut self, f: impl FnOnce(&mut Vault) -> R) -> Result<R> {
        match (&self.node, &mut self.vault) {
            (Some(node), _) => Ok(node.write(f)),
            (None, Some(vault)) => Ok(f(vault)),
            (None, None) => anyhow::bail!("the vault was closed when its node failed to start"),
        }
    }

    /// A node config with this vault's identity (discovery off; see [`NodeConfig::with_discovery`]).
    pub(crate) fn config(&self, listen: Vec<Multiaddr>) -> Result<NodeConfig> {
        let mut config = NodeConfig::new(self.keypair.clone());
        config.listen = listen;
        Ok(config)
    }

    /// The state digest of the vault (reads every record).
    pub(crate) fn digest(&self) -> Result<[u8; 32]> {
        Ok(self.read(|v| v.store().state_digest())??)
    }
}

/// A progress bar on stderr for a pull, shown only on a terminal and once the announced
/// transfer exceeds 1 MiB. Returns the sender to hand to the node, and the task drawing it.
pub(crate) fn progress_bar() -> (
    Option<watch::Sender<Progress>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    if !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let (tx, mut rx) = watch::channel(Progress::default());
    let task = tokio::spawn(async move {
        let mut bar: Option<indicatif::ProgressBar> = None;
        while rx.changed().await.is_ok() {
            let p = *rx.borrow_and_update();
            if bar.is_none() && p.total >= 1024 * 1024 {
                let b = indicatif::ProgressBar::new(p.total);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                bar = Some(b);
            }
            if let Some(b) = &bar {
                b.set_position(p.bytes);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    });
    (Some(tx), Some(task))
}
