//! Glue between an opened vault and a live node: the runtime, the vault the node owns, saving
//! it back, logs and the progress bar.

use std::{io::IsTerminal, time::Duration};

use anyhow::{Context, Result};
use redoubt_node::{
    Handle, NodeConfig, NodeEvent, Progress, Vault, keypair_from_seed,
    libp2p::{Multiaddr, PeerId},
};
use redoubt_vault::Instance;
use tokio::sync::{mpsc, watch};

use crate::store::Opened;

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

/// The peer id of an opened vault's identity.
pub(crate) fn peer_id(vault: &Opened) -> Result<PeerId> {
    Ok(keypair_from_seed(vault.snapshot.identity.expose_seed())?
        .public()
        .to_peer_id())
}

/// A vault lent to a live node: its instance and grants move into an in-memory
/// [`Vault`] (redb's in-memory backend) that the node owns once [`Live::spawn`] started it;
/// [`Live::save`] writes that vault's state back to the (still locked) snapshot file.
///
/// Interim, until the CLI keeps its vaults in the store file: every merge and grant is
/// committed to the in-memory vault before the node acknowledges it, but reaches the snapshot
/// file only at the command's save (for `serve`, when it stops). A `serve` or `pair` killed
/// before that loses what it acknowledged since it started.
pub(crate) struct Live {
    opened: Opened,
    /// The vault until a node takes it.
    vault: Option<Vault>,
    /// The node that took it.
    node: Option<Handle>,
}

impl Live {
    pub(crate) fn new(mut opened: Opened) -> Result<Self> {
        // The instance keeps the snapshot identity's node id, which stamps local writes.
        let node = opened.snapshot.instance.node();
        let instance = std::mem::replace(&mut opened.snapshot.instance, Instance::new(node));
        let access = std::mem::take(&mut opened.snapshot.access);
        let vault = Vault::in_memory(instance, access)?;
        Ok(Self {
            opened,
            vault: Some(vault),
            node: None,
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
            (None, None) => anyhow::bail!("the vault was lost when its node failed to start"),
        }
    }

    /// Runs `f` on the vault to change it (each change one commit of the vault).
    pub(crate) fn write<R>(&mut self, f: impl FnOnce(&mut Vault) -> R) -> Result<R> {
        match (&self.node, &mut self.vault) {
            (Some(node), _) => Ok(node.write(f)),
            (None, Some(vault)) => Ok(f(vault)),
            (None, None) => anyhow::bail!("the vault was lost when its node failed to start"),
        }
    }

    /// A node config with this vault's identity (discovery off; see [`NodeConfig::with_discovery`]).
    pub(crate) fn config(&self, listen: Vec<Multiaddr>) -> Result<NodeConfig> {
        let mut config = NodeConfig::new(keypair_from_seed(
            self.opened.snapshot.identity.expose_seed(),
        )?);
        config.listen = listen;
        Ok(config)
    }

    /// The state digest of the vault's instance.
    pub(crate) fn digest(&self) -> Result<[u8; 32]> {
        self.read(|v| v.instance().state_digest())
    }

    /// Saves the vault's state into the snapshot file, atomically and durably.
    pub(crate) fn save(&mut self) -> Result<()> {
        let (instance, access) = self.read(|v| (v.instance().clone(), v.grants().clone()))?;
        self.opened.snapshot.instance = instance;
        self.opened.snapshot.access = access;
        self.opened.save()
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
