//! Glue between an opened vault and a live node: the runtime, the shared store, committing
//! it back, logs and the progress bar.

use std::{
    io::IsTerminal,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use redoubt_node::{
    NodeConfig, Persist, Progress, Shared, Store, keypair_from_seed,
    libp2p::{Multiaddr, PeerId},
};
use redoubt_vault::{MergePolicy, Rights, SyncConfig};
use tokio::sync::watch;

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
pub(crate) fn peer_id(store: &redoubt_store::Store) -> Result<PeerId> {
    Ok(keypair_from_seed(store.identity().expose_seed())?
        .public()
        .to_peer_id())
}

/// A vault lent to a live node: its instance and grants are copied into the node's shared
/// store, and the node's [`Persist`] commits what changed back into the vault's store after
/// every merge, before the node acknowledges it.
pub(crate) struct Live {
    saver: Arc<Saver>,
    shared: Shared,
}

/// Commits the node's shared store into the vault's store: the node's [`Persist`].
struct Saver {
    vault: Mutex<redoubt_store::Store>,
}

impl Persist for Saver {
    /// Brings the vault's store to the node's state: every record version that differs, in
    /// one durable commit (the node took them by its own rule already, so `Replace` with no
    /// bound on stamps takes exactly those), then each grant that differs.
    fn persist(&self, node: &mut Store) -> Result<(), String> {
        let mut vault = self
            .vault
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let all = SyncConfig::full()
            .policy(MergePolicy::Replace)
            .max_ahead_ms(u64::MAX);
        vault
            .sync_from(&node.instance, &all)
            .map_err(|e| format!("committing to {}: {e}", vault.path().display()))?;
        let stale: Vec<(Vec<u8>, Vec<u8>)> = vault
            .grants()
            .iter()
            .filter(|(p, c, _)| node.access.rights(p, c).bits() == 0)
            .map(|(p, c, _)| (p.to_vec(), c.to_vec()))
            .collect();
        let wanted: Vec<(Vec<u8>, Vec<u8>, Rights)> = node
            .access
            .iter()
            .filter(|(p, c, r)| vault.rights(p, c) != *r)
            .map(|(p, c, r)| (p.to_vec(), c.to_vec(), r))
            .chain(stale.into_iter().map(|(p, c)| (p, c, Rights::default())))
            .collect();
        for (peer, client, rights) in wanted {
            vault
                .set_rights(&peer, &client, rights)
                .map_err(|e| format!("committing a grant to {}: {e}", vault.path().display()))?;
        }
        Ok(())
    }
}

impl Live {
    pub(crate) fn new(vault: redoubt_store::Store) -> Self {
        let store = Store {
            instance: vault.instance().clone(),
            access: vault.grants().clone(),
        };
        let saver = Arc::new(Saver {
            vault: Mutex::new(vault),
        });
        let shared = Shared::durable(store, saver.clone());
        Self { saver, shared }
    }

    pub(crate) fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// A node config with this vault's identity (discovery off; see [`NodeConfig::with_discovery`]).
    pub(crate) fn config(&self, listen: Vec<Multiaddr>) -> Result<NodeConfig> {
        let vault = self
            .saver
            .vault
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut config = NodeConfig::new(keypair_from_seed(vault.identity().expose_seed())?);
        config.listen = listen;
        Ok(config)
    }

    /// The state digest of the shared instance.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.shared.lock().instance.state_digest()
    }

    /// Commits the shared store durably.
    pub(crate) fn save(&mut self) -> Result<()> {
        Ok(self.shared.commit()?)
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
