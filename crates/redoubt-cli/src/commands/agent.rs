//! `redoubt agent` (also `serve`): unlock the vault once, own it, serve peers and this user's
//! commands over the control socket, and keep paired peers in sync, until interrupted.
//!
//! The agent's vault is open (its node runs and owns it) or locked: after `redoubt lock` or
//! `--lock-after` of no command, the node is stopped and the vault dropped, so the key is
//! gone from memory; the agent keeps the socket, answers `status` and `id`, refuses record
//! access as "locked", and holds the vault file's lock, so no other process opens it behind
//! it. `redoubt unlock` opens it again with the password it brings.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use redoubt_node::{
    Handle, NodeEvent,
    libp2p::{Multiaddr, PeerId},
    peer_id_of,
    store::Store,
    with_peer,
};
use tokio::{
    net::UnixListener,
    sync::{Notify, broadcast},
    time::Instant,
};
use tracing::{info, warn};

use super::{agent_remotes, agent_sync, serve};
use crate::{
    cli::AgentArgs,
    control::{Connection, socket_for_agent},
    live,
    secrets::Secret,
    store::{open, open_store},
};

pub(crate) fn run(path: &Path, args: &AgentArgs) -> Result<()> {
    let listen = serve::listen_addrs(args)?;
    live::check_listen(&listen)?;
    let lock_after = args.lock_after.as_deref().map(parse_duration).transpose()?;
    let peers = args
        .peers
        .iter()
        .map(|a| parse_peer_addr(a))
        .collect::<Result<Vec<_>>>()?;
    if path.exists() && Connection::to_agent_of(path)?.is_some() {
        bail!("an agent already runs on {}", path.display());
    }
    // Started locked (by a service, before anyone can type the password), the vault is opened
    // by the first `redoubt unlock`; it must be a store already (a snapshot is migrated by an
    // unlocked open).
    let store = if args.locked {
        if crate::store::file_kind(path)? != Some(crate::store::Kind::Store) {
            bail!(
                "{} is not a vault store yet: start the agent once without --locked (or run \
                 any command on it) so it is migrated first",
                path.display()
            );
        }
        None
    } else {
        Some(open(path)?.store)
    };
    live::init_logs("info");
    live::runtime()?.block_on(async {
        // Listen for signals before anything else, once.
        let stop = serve::shutdown_signal()?;
        tokio::pin!(stop);
        let socket = socket_for_agent(path)?;
        let listener = bind(&socket)?;
        let agent = Arc::new_cyclic(|me: &Weak<Agent>| Agent {
            me: me.clone(),
            path: path.to_path_buf(),
            peer_id: std::sync::Mutex::new(None),
            listen: std::sync::Mutex::new(listen),
            args: AgentSettings::from(args),
            lock_after,
            state: tokio::sync::Mutex::new(State::Closed),
            last_use: std::sync::Mutex::new(Instant::now()),
            used: Notify::new(),
            book: std::sync::Mutex::new(agent_sync::Book::default()),
            sync_wake: Notify::new(),
            remotes: std::sync::Mutex::new(agent_remotes::Remotes::default()),
            remotes_wake: Notify::new(),
            served: broadcast::channel(SERVED_BUFFER).0,
            locking: Notify::new(),
        });
        {
            let now = Instant::now();
            let mut book = agent.book();
            for addr in peers {
                book.learn(peer_id_of(&addr)?, addr, now);
            }
        }
        *agent.state.lock().await = match store {
            Some(store) => State::Open(agent.start_node(store).await?),
            None => {
                info!("started locked: `redoubt unlock` opens the vault");
                State::Locked {
                    _hold: agent.hold_file().await,
                }
            }
        };
        info!(socket = %socket.display(), "control socket ready");
        let idle = tokio::spawn(idle_lock(agent.clone()));
        let syncer = tokio::spawn(agent_sync::run(agent.clone()));
        let remotes = tokio::spawn(agent_remotes::run(agent.clone()));
        let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match connections.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let agent = agent.clone();
                            tokio::spawn(async move {
                                super::agent_requests::serve_connection(agent, stream).await;
                                drop(permit);
                            });
                        }
                        Err(_) => warn!("control socket: over {MAX_CONNECTIONS} connections; one refused"),
                    },
                    Err(e) => warn!("control socket: {e}"),
                },
                () = &mut stop => {
                    info!("interrupted; stopping");
                    break;
                }
            }
        }
        idle.abort();
        syncer.abort();
        remotes.abort();
        let _ = syncer.await;
        let _ = remotes.await;
        let _ = std::fs::remove_file(&socket);
        agent.close().await;
        Ok::<_, anyhow::Error>(())
    })
}

/// Served sessions kept for a pairing that waits for its import.
const SERVED_BUFFER: usize = 16;
/// How long a lock waits for a pairing conversation to let go of the node.
const PAIRING_RELEASE: Duration = Duration::from_secs(5);

/// Control connections served at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 32;

/// Binds the control socket at `path` (mode 0600; its directory is already 0700), replacing
/// one left behind by an agent that was killed.
fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("an agent already listens on {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("creating the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok(listener)
}

/// What a node is started with again at an unlock.
pub(crate) struct AgentSettings {
    no_discovery: bool,
    allow_unbound: bool,
}

impl From<&AgentArgs> for AgentSettings {
    fn from(a: &AgentArgs) -> Self {
        Self {
            no_discovery: a.no_discovery,
            allow_unbound: a.allow_unbound,
        }
    }
}

/// The running agent, shared by its connections and tasks.
pub(crate) struct Agent {
    /// Itself, for the node's event task.
    me: Weak<Agent>,
    pub(crate) path: PathBuf,
    /// The vault's peer id, once it was opened.
    peer_id: std::sync::Mutex<Option<PeerId>>,
    /// Where to listen: `--listen`, then where the node listened first (ports included), so
    /// that after an unlock peers find it where they found it.
    listen: std::sync::Mutex<Vec<Multiaddr>>,
    args: AgentSettings,
    pub(crate) lock_after: Option<Duration>,
    /// Open or locked; each request holds it while it runs, so requests take turns.
    pub(crate) state: tokio::sync::Mutex<State>,
    /// When a command last asked for something.
    last_use: std::sync::Mutex<Instant>,
    /// Told at each use, so the idle timer starts again.
    used: Notify,
    /// Who to sync with, and when.
    book: std::sync::Mutex<agent_sync::Book>,
    /// Told when the plan changed or the vault opened.
    pub(crate) sync_wake: Notify,
    /// How the syncs with the vault's remotes went.
    remotes: std::sync::Mutex<agent_remotes::Remotes>,
    /// Told when the vault opened, for the remotes' task.
    pub(crate) remotes_wake: Notify,
    /// Each session a peer pulled from us (peer, records), for a pairing awaiting its import.
    served: broadcast::Sender<(PeerId, u64)>,
    /// Told when the agent locks: a pairing conversation ends and lets go of the node.
    pub(crate) locking: Notify,
}

/// The agent's vault: owned by its running node, or locked (key dropped, file still held).
pub(crate) enum State {
    Open(Handle),
    /// The vault file, held locked so no other process opens it meanwhile.
    Locked {
        _hold: Option<std::fs::File>,
    },
    /// Starting or stopping.
    Closed,
}

impl Agent {
    /// The sync plan.
    pub(crate) fn book(&self) -> std::sync::MutexGuard<'_, agent_sync::Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the syncs with the vault's remotes went.
    pub(crate) fn remotes(&self) -> std::sync::MutexGuard<'_, agent_remotes::Remotes> {
        self.remotes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's handle while the vault is open. The caller drops it soon: a lock waits for
    /// it to go before it holds the file.
    pub(crate) async fn handle(&self) -> Option<Handle> {
        match &*self.state.lock().await {
            State::Open(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// A local change was committed to a client shared with `peers`: it goes out to each.
    pub(crate) fn changed(&self, peers: &[PeerId]) {
        if !peers.is_empty() {
            self.book().changed(peers, Instant::now());
            self.sync_wake.notify_one();
        }
    }

    /// Whether the node serves and syncs unbound sessions (`--allow-unbound`).
    pub(crate) fn allows_unbound(&self) -> bool {
        self.args.allow_unbound
    }

    /// A peer holds no grant any more: it is not synced with.
    pub(crate) fn unpaired(&self, peer: &PeerId) {
        self.book().forget(peer);
    }

    /// A peer was granted rights: it is synced with from now on.
    pub(crate) fn paired(&self, peer: PeerId) {
        self.book().want_full(peer, Instant::now());
        self.sync_wake.notify_one();
    }

    /// The vault's remotes changed (a pairing brought one): the remotes task reads them again
    /// and syncs them, with no restart.
    pub(crate) fn remotes_changed(&self) {
        self.remotes_wake.notify_one();
    }

    /// Hears of each session a peer pulled from us from now on: (peer, records sent).
    pub(crate) fn served(&self) -> broadcast::Receiver<(PeerId, u64)> {
        self.served.subscribe()
    }

    /// The vault's peer id, once it was opened.
    pub(crate) fn peer_id(&self) -> Option<PeerId> {
        *self.peer_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the node over `store` and prints where it listens, its events feeding the sync
    /// plan: every paired peer is synced with, a peer we sync with that connects gets what
    /// waits for it, and where we reached it is kept.
    async fn start_node(&self, store: Store) -> Result<Handle> {
        let now = Instant::now();
        let peer_id = live::peer_id(&store)?;
        *self.peer_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(peer_id);
        {
            // Where paired peers were seen before (the vault's address book) is where they are
            // dialed, when nothing fresher (`--peer`, this run) is known: a restarted agent
            // reaches its peers without being told.
            let stored = redoubt_node::address_book_of(&store).unwrap_or_else(|e| {
                warn!("the address book could not be read: {e}");
                Vec::new()
            });
            let mut book = self.book();
            for (peer, addrs) in stored {
                book.seed(peer, addrs.into_iter().map(|(a, _)| with_peer(a, peer)));
            }
            for peer in paired_peers(&store) {
                book.want_full(peer, now);
            }
        }
        let me = self.me.clone();
        let on_event = move |event: NodeEvent| {
            let Some(agent) = me.upgrade() else {
                return;
            };
            if let NodeEvent::Served { peer, records, .. } = event {
                // Nobody listening is fine.
                let _ = agent.served.send((peer, records));
                return;
            }
            let now = Instant::now();
            let mut book = agent.book();
            match event {
                NodeEvent::Connected { peer, dialed } if book.knows(&peer) => {
                    book.connected(peer, dialed.map(|a| with_peer(a, peer)), now);
                }
                // A paired peer's addresses, most recent first (the node kept them).
                NodeEvent::Addresses { peer, addrs } if book.knows(&peer) => {
                    for addr in addrs.into_iter().rev() {
                        book.learn(peer, with_peer(addr, peer), now);
                    }
                }
                _ => return,
            }
            drop(book);
            agent.sync_wake.notify_one();
        };
        let listen = self
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let args = AgentArgs {
            listen: Vec::new(),
            peers: Vec::new(),
            no_discovery: self.args.no_discovery,
            allow_unbound: self.args.allow_unbound,
            lock_after: None,
            locked: false,
        };
        let handle = serve::start(store, listen, &args, on_event).await?;
        *self.listen.lock().unwrap_or_else(|p| p.into_inner()) = serve::bound(&handle);
        // A reader that went away (a closed pipe) must not stop the agent.
        let mut out = std::io::stdout().lock();
        for addr in handle.listen_addrs() {
            let _ = writeln!(out, "listening on {addr}");
        }
        let _ = out.flush();
        self.sync_wake.notify_one();
        self.remotes_wake.notify_one();
        Ok(handle)
    }

    /// Notes that a command used the agent now.
    pub(crate) fn touch(&self) {
        *self.last_use.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.used.notify_one();
    }

    /// How long the agent has been idle.
    pub(crate) fn idle(&self) -> Duration {
        self.last_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Stops the node and drops the vault (and its key), keeping the file locked.
    pub(crate) async fn lock(&self, state: &mut State) {
        if let State::Open(handle) = std::mem::replace(state, State::Closed) {
            // A pairing holds handles on the node, which would keep it (and the key) alive.
            self.locking.notify_waiters();
            let deadline = Instant::now() + PAIRING_RELEASE;
            while super::agent_pair::running() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let wiped = drop_vault(handle).await;
            let hold = self.hold_file().await;
            if hold.is_none() {
                warn!(
                    "locked, but could not hold {} against other processes",
                    self.path.display()
                );
            }
            if wiped {
                info!("locked: the key is no longer in memory");
            } else {
                warn!("locked, but the node did not stop: its key is dropped once it does");
            }
            *state = State::Locked { _hold: hold };
        }
    }

    /// The vault file, locked against other processes, once this agent's store has let go
    /// of it (a sync in flight may hold the vault for a moment after its node stopped).
    async fn hold_file(&self) -> Option<std::fs::File> {
        let file = std::fs::File::open(&self.path).ok()?;
        for _ in 0..250 {
            if file.try_lock().is_ok() {
                return Some(file);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Opens the vault with `password` and starts its node again.
    pub(crate) async fn unlock(&self, state: &mut State, password: Secret) -> Result<()> {
        if matches!(state, State::Open(_)) {
            return Ok(());
        }
        // Let go of the file so the store can take it; hold it again on failure.
        *state = State::Locked { _hold: None };
        let path = self.path.clone();
        let opened = tokio::task::spawn_blocking(move || open_store(&path, &password))
            .await
            .context("opening the vault")?;
        let store: Store = match opened {
            Ok(store) => store,
            Err(e) => {
                *state = State::Locked {
                    _hold: self.hold_file().await,
                };
                return Err(e);
            }
        };
        let handle = match self.start_node(store).await {
            Ok(h) => h,
            Err(e) => {
                *state = State::Locked {
                    _hold: self.hold_file().await,
                };
                return Err(e.context("serving the vault again (stop and start the agent)"));
            }
        };
        info!("unlocked");
        *state = State::Open(handle);
        Ok(())
    }

    /// Stops the node (every change is already committed) and drops the vault.
    async fn close(&self) {
        let mut state = self.state.lock().await;
        if let State::Open(handle) = std::mem::replace(&mut *state, State::Closed) {
            drop_vault(handle).await;
        }
    }
}

/// Every peer this vault grants rights to (the ones it is paired with).
fn paired_peers(store: &Store) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = store
        .grants()
        .iter()
        .filter_map(|(p, _, _)| std::str::from_utf8(p).ok()?.parse().ok())
        .collect();
    peers.dedup();
    peers
}

/// `--peer`'s value: an address ending with `/p2p/PEER_ID`.
fn parse_peer_addr(text: &str) -> Result<Multiaddr> {
    let addr: Multiaddr = text
        .parse()
        .with_context(|| format!("--peer {text:?} is not a multiaddr"))?;
    if peer_id_of(&addr).is_err() {
        bail!("--peer {text:?} does not end with /p2p/PEER_ID (as `redoubt agent` prints it)");
    }
    Ok(addr)
}

/// Stops `handle`'s node and drops its vault, key included.
/// Whether the vault (and its key) was dropped.
async fn drop_vault(handle: Handle) -> bool {
    match handle.stop().await {
        Ok(vault) => {
            drop(vault);
            true
        }
        Err(e) => {
            warn!("stopping the node: {e}");
            false
        }
    }
}

/// Locks the agent once it has been idle for `--lock-after`.
async fn idle_lock(agent: Arc<Agent>) {
    let Some(after) = agent.lock_after else {
        return;
    };
    loop {
        let idle = agent.idle();
        if idle < after {
            tokio::select! {
                () = tokio::time::sleep(after - idle) => {}
                () = agent.used.notified() => {}
            }
            continue;
        }
        // A pairing waiting for its user is use: its command is not idle.
        if super::agent_pair::running() {
            agent.touch();
            continue;
        }
        let mut state = agent.state.lock().await;
        if matches!(*state, State::Open(_)) && agent.idle() >= after {
            info!("idle for {} s", after.as_secs());
            agent.lock(&mut state).await;
        }
        drop(state);
        // Locked: nothing to time until a command uses the agent again.
        agent.used.notified().await;
    }
}

/// `90`, `90s`, `15m`, `2h`, `1d`: a duration of at least one second.
pub(crate) fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0);
    match secs {
        Some(n) => Ok(Duration::from_secs(n)),
        None => bail!(
            "--lock-after {text:?} is not a duration (a whole number of seconds, or one \
             followed by s, m, h or d, such as 15m; at least 1 s)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "0", "m", "5x", "1.5h", "-3", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
