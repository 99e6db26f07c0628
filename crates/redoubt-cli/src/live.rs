//! Glue between an opened vault and a live node: the runtime, the shared store, saving it
//! back, logs and the progress bar.

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
use redoubt_vault::Instance;
use tokio::sync::watch;

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

/// A vault lent to a live node: its instance and grants move into the shared store, which the
/// node commits to the (still locked) snapshot file after every merge, before acknowledging it.
pub(crate) struct Live {
    saver: Arc<Saver>,
    shared: Shared,
}

/// Saves the shared store into the locked snapshot file: the node's [`Persist`].
struct Saver {
    /// The opened vault, its instance and grants lent out to the store.
    vault: Mutex<Opened>,
}

impl Persist for Saver {
    /// Saves atomically and durably (temporary file, fsync, rename). The store stays locked
    /// while it is sealed and written, so what is saved is one consistent state.
    fn persist(&self, store: &mut Store) -> Result<(), String> {
        let mut vault = self
            .vault
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lent = Lent::new(&mut vault, store);
        lent.vault.save().map_err(|e| format!("{e:#}"))
    }
}

/// The store's instance and grants lent to the snapshot for one save; given back on drop, so
/// even a panic inside the save leaves them with the store (never an empty placeholder that a
/// later save would write).
struct Lent<'a> {
    vault: &'a mut Opened,
    store: &'a mut Store,
}

impl<'a> Lent<'a> {
    fn new(vault: &'a mut Opened, store: &'a mut Store) -> Self {
        let mut lent = Self { vault, store };
        lent.swap();
        lent
    }

    fn swap(&mut self) {
        std::mem::swap(&mut self.vault.snapshot.instance, &mut self.store.instance);
        std::mem::swap(&mut self.vault.snapshot.access, &mut self.store.access);
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.swap();
    }
}

impl Live {
    pub(crate) fn new(mut vault: Opened) -> Self {
        let node = vault.snapshot.instance.node();
        let store = Store {
            instance: std::mem::replace(&mut vault.snapshot.instance, Instance::new(node)),
            access: std::mem::take(&mut vault.snapshot.access),
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
        let mut config = NodeConfig::new(keypair_from_seed(vault.snapshot.identity.expose_seed())?);
        config.listen = listen;
        Ok(config)
    }

    /// The state digest of the shared instance.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.shared.lock().instance.state_digest()
    }

    /// Saves the shared store atomically and durably.
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
