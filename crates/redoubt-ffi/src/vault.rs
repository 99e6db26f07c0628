//! The [`Vault`] object: one vault file, its node when started, and its listener.

use std::{
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use redoubt_node::{
    ClientId, Handle, Mode, NodeConfig, Rights, SecretValue, keypair_from_seed,
    libp2p::{Multiaddr, PeerId},
    spawn,
    store::{KdfLimits, KdfParams, Password, Store},
};

use crate::{
    ChangeListener, Entry, Grant, RedoubtError, Status, SyncSummary, VersionInfo,
    runtime::block_on,
    types::{location, text, version_hash},
};

/// How strong the password's key derivation is when a vault is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum KdfStrength {
    /// The store's default Argon2id parameters: use this for every real vault.
    Default,
    /// Fast, weak parameters, for tests only: a stolen file falls to guessing quickly.
    InsecureFastForTests,
}

impl KdfStrength {
    pub(crate) fn params(self) -> KdfParams {
        match self {
            Self::Default => KdfParams::default(),
            Self::InsecureFastForTests => KdfParams::insecure_fast(),
        }
    }
}

/// Where the vault is: in the app's hands (node stopped) or the node's.
pub(crate) enum Place {
    /// Boxed: a vault is large beside a handle.
    Stopped(Box<redoubt_node::Vault>),
    Running(Handle),
    /// Lost: the node could not give it back when it stopped (a call still held it, and
    /// closed it when done); open the file again.
    Gone,
}

/// One vault on this device: open it, read and change it, start its node to pair and sync.
/// Every change is committed (on disk, fsynced) before the call returns. Safe to call from any
/// thread; calls on one vault take turns.
#[derive(uniffi::Object)]
pub struct Vault {
    place: Mutex<Place>,
    peer_id: PeerId,
    path: PathBuf,
    listener: Mutex<Option<crate::listen::Delivery>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("peer_id", &self.peer_id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Vault {
    /// Creates a new vault file at `path` (refusing to overwrite one), sealed under `password`.
    #[uniffi::constructor]
    pub fn create(
        path: String,
        password: Vec<u8>,
        kdf: KdfStrength,
    ) -> Result<Arc<Self>, RedoubtError> {
        let password = Password::new(password);
        let store = Store::create(path.as_ref(), &password, kdf.params())?;
        Self::over(store)
    }

    /// Opens the vault file at `path`. A wrong password fails with
    /// [`RedoubtError::WrongPassword`] and changes nothing.
    #[uniffi::constructor]
    pub fn open(path: String, password: Vec<u8>) -> Result<Arc<Self>, RedoubtError> {
        let password = Password::new(password);
        let store = Store::open(path.as_ref(), &password, &KdfLimits::default())?;
        Self::over(store)
    }

    /// This device's peer id (base58): what another device grants.
    pub fn peer_id(&self) -> String {
        self.peer_id.to_base58()
    }

    /// Writes `value` at `vault`/`record` of `client`; committed when it returns.
    pub fn put(
        &self,
        client: String,
        vault: String,
        record: String,
        value: Vec<u8>,
    ) -> Result<(), RedoubtError> {
        let loc = location(&vault, &record)?;
        self.write(|v| v.put(client.as_bytes(), &loc, SecretValue::new(value)))?;
        Ok(())
    }

    /// The live value at `vault`/`record` of `client`, or `None` when absent or deleted.
    pub fn get(
        &self,
        client: String,
        vault: String,
        record: String,
    ) -> Result<Option<Vec<u8>>, RedoubtError> {
        let loc = location(&vault, &record)?;
        let value = self.read(|v| v.get(client.as_bytes(), &loc))??;
        Ok(value.map(|v| v.expose().to_vec()))
    }

    /// Deletes the record (its history stays, so `restore` can bring it back). Fails with
    /// [`RedoubtError::NotFound`] when nothing is live there.
    pub fn remove(
        &self,
        client: String,
        vault: String,
        record: String,
    ) -> Result<(), RedoubtError> {
        let loc = location(&vault, &record)?;
        self.write(|v| v.delete(client.as_bytes(), &loc))?;
        Ok(())
    }

    /// The live records of `client`, by vault then record path.
    pub fn list(&self, client: String) -> Result<Vec<Entry>, RedoubtError> {
        let id = ClientId::from_path(client.as_bytes());
        let mut out: Vec<Entry> = self.read(|v| {
            v.store().records(&id).map(|records| {
                records
                    .iter()
                    .filter(|r| !r.is_tombstone())
                    .map(|r| Entry {
                        vault: text(r.location().vault_path()),
                        record: text(r.location().record_path()),
                        size: r.size(),
                    })
                    .collect()
            })
        })??;
        out.sort_by(|a, b| (&a.vault, &a.record).cmp(&(&b.vault, &b.record)));
        Ok(out)
    }

    /// The clients this vault holds.
    pub fn clients(&self) -> Result<Vec<String>, RedoubtError> {
        self.read(|v| v.store().clients().map(|(_, path)| text(path)).collect())
    }

    /// Every version the record keeps, the current one first, then older ones newest first.
    pub fn history(
        &self,
        client: String,
        vault: String,
        record: String,
    ) -> Result<Vec<VersionInfo>, RedoubtError> {
        let loc = location(&vault, &record)?;
        let record = self
            .read(|v| v.store().record(client.as_bytes(), &loc))??
            .ok_or_else(|| RedoubtError::not_found(format!("no record {vault}/{record}")))?;
        let current = *record.version_hash();
        // The record keeps its history newest first already.
        let versions: Vec<VersionInfo> = std::iter::once(record.current())
            .chain(record.history())
            .map(|v| VersionInfo {
                hash: redoubt_vault::hex(v.hash()),
                written_ms: v.stamp().wall_ms,
                deleted: v.is_tombstone(),
                size: v.size(),
                current: *v.hash() == current,
            })
            .collect();
        Ok(versions)
    }

    /// Makes the version hashed `version` (64 hex digits, from `history`) current again, as a
    /// new write; committed when it returns.
    pub fn restore(
        &self,
        client: String,
        vault: String,
        record: String,
        version: String,
    ) -> Result<(), RedoubtError> {
        let loc = location(&vault, &record)?;
        let hash = version_hash(&version)?;
        self.write(|v| v.revert(client.as_bytes(), &loc, &hash))?;
        Ok(())
    }

    /// Lets the peer `peer_id` (base58 text, validated: anything else is
    /// [`RedoubtError::InvalidInput`]) read and/or write `client`; both false removes the
    /// grant. Committed when it returns.
    pub fn allow(
        &self,
        peer_id: String,
        client: String,
        read: bool,
        write: bool,
    ) -> Result<(), RedoubtError> {
        let peer = parse_peer(&peer_id)?;
        let rights = Rights { read, write };
        self.write(|v| v.set_rights(&peer, client.as_bytes(), rights))?;
        Ok(())
    }

    /// Removes the peer's grant on `client`, or on every client when `None`; returns how
    /// many grants were removed.
    pub fn deny(&self, peer_id: String, client: Option<String>) -> Result<u64, RedoubtError> {
        let peer = parse_peer(&peer_id)?;
        let n = self.write(|v| v.revoke(&peer, client.as_deref().map(str::as_bytes)))?;
        Ok(n as u64)
    }

    /// Every grant this vault holds.
    pub fn grants(&self) -> Result<Vec<Grant>, RedoubtError> {
        self.read(|v| {
            v.grants()
                .iter()
                .map(|(peer, client, rights)| Grant {
                    peer_id: text(peer),
                    client: text(client),
                    read: rights.read,
                    write: rights.write,
                })
                .collect()
        })
    }

    /// Changes the vault's password: checks `old`, then rewraps the vault's key under `new`
    /// with a fresh salt (no record is rewritten). Committed when it returns; on any error
    /// (a wrong `old` is [`RedoubtError::WrongPassword`]) the old password still opens it.
    pub fn change_password(
        &self,
        old: Vec<u8>,
        new: Vec<u8>,
        kdf: KdfStrength,
    ) -> Result<(), RedoubtError> {
        let (old, new) = (Password::new(old), Password::new(new));
        self.write(|v| v.change_password(&old, &new, kdf.params()))
    }

    /// Starts the node, listening on `listen_addrs` (multiaddrs such as
    /// `/ip4/0.0.0.0/tcp/0`; none means `/ip4/0.0.0.0/tcp/0`), finding paired peers on the
    /// local network by mDNS when `discovery`. Returns the addresses it listens on.
    pub fn start(
        &self,
        listen_addrs: Vec<String>,
        discovery: bool,
    ) -> Result<Vec<String>, RedoubtError> {
        let addrs = if listen_addrs.is_empty() {
            vec!["/ip4/0.0.0.0/tcp/0".to_owned()]
        } else {
            listen_addrs
        };
        let addrs = addrs
            .iter()
            .map(|a| parse_addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut place = self.lock();
        let vault = match std::mem::replace(&mut *place, Place::Gone) {
            Place::Stopped(v) => v,
            running @ Place::Running(_) => {
                *place = running;
                return Err(RedoubtError::invalid("the node is already running"));
            }
            Place::Gone => return Err(gone()),
        };
        let key = match keypair_from_seed(vault.store().identity().expose_seed()) {
            Ok(k) => k,
            Err(e) => {
                *place = Place::Stopped(vault);
                return Err(e.into());
            }
        };
        let mut config = NodeConfig::new(key).with_discovery(discovery);
        for a in addrs {
            config = config.listen_on(a);
        }
        // A node that fails to start gives its vault back: the app may fix the address and
        // start again, and reads and writes go on meanwhile.
        let (handle, mut events) = match block_on(spawn(config, *vault))? {
            Ok(up) => up,
            Err(failed) => {
                let (error, vault) = failed.into_parts();
                *place = Place::Stopped(Box::new(vault));
                return Err(error.into());
            }
        };
        let listening = handle
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        // Nothing depends on the node's events (every change is committed first and told to
        // the change listener): drain them so the node never waits on a full channel.
        crate::runtime::runtime()?.spawn(async move { while events.recv().await.is_some() {} });
        *place = Place::Running(handle);
        Ok(listening)
    }

    /// Stops the node (in-flight syncs fail); the vault stays open for reads and writes.
    pub fn stop(&self) -> Result<(), RedoubtError> {
        let mut place = self.lock();
        let handle = match std::mem::replace(&mut *place, Place::Gone) {
            Place::Running(h) => h,
            other => {
                *place = other;
                return Ok(());
            }
        };
        *place = Place::Stopped(Box::new(block_on(handle.stop())??));
        Ok(())
    }

    /// Pulls `client` from the peer, then lets it pull from us, so both end converged as far
    /// as both sides' grants allow. `peer` is its address (ending with `/p2p/<peer id>`) or
    /// its peer id, dialed at the addresses this vault keeps for it (paired peers).
    pub fn sync(&self, peer: String, client: String) -> Result<SyncSummary, RedoubtError> {
        let handle = self.handle("sync")?;
        let addr = self.address_of(&handle, &peer)?;
        let mode = Mode::Full {
            client: client.into_bytes(),
        };
        let out = block_on(async { handle.sync(&addr, mode, None).await })??;
        // The address worked: keep it (for a paired peer) so the next sync may name the peer.
        if let Ok(peer) = redoubt_node::peer_id_of(&addr) {
            handle.write(|v| v.note_peer_addresses(peer, std::slice::from_ref(&addr)))?;
        }
        Ok(SyncSummary {
            pulled: (&out.pulled.report).into(),
            pushed: (&out.pushed).into(),
        })
    }

    /// The vault's state for a status screen.
    pub fn status(&self) -> Result<Status, RedoubtError> {
        let (running, listen_addrs) = match &*self.lock() {
            Place::Running(h) => (
                true,
                h.listen_addrs().iter().map(|a| a.to_string()).collect(),
            ),
            Place::Stopped(_) => (false, Vec::new()),
            Place::Gone => return Err(gone()),
        };
        let (clients, records, book) = self.read(|v| {
            let i = v.store();
            let clients = i.clients().map(|(_, p)| text(p)).collect::<Vec<_>>();
            (clients, i.len(), v.address_book())
        })?;
        Ok(Status {
            peer_id: self.peer_id.to_base58(),
            running,
            listen_addrs,
            clients,
            records,
            known_peers: book?.iter().map(|(p, _)| p.to_base58()).collect(),
        })
    }

    /// Calls `listener` for each change from now on (replacing any listener set before);
    /// `None` stops telling.
    pub fn set_listener(
        &self,
        listener: Option<Arc<dyn ChangeListener>>,
    ) -> Result<(), RedoubtError> {
        let mut slot = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.take() {
            old.stop();
        }
        if let Some(listener) = listener {
            let changes = self.read(|v| v.changes())?;
            *slot = Some(crate::listen::Delivery::start(changes, listener)?);
        }
        Ok(())
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        // The listener goes with the vault, while the app that owns it still runs.
        if let Some(delivery) = self.listener.get_mut().ok().and_then(Option::take) {
            delivery.stop();
        }
    }
}

impl Vault {
    fn over(store: Store) -> Result<Arc<Self>, RedoubtError> {
        let key = keypair_from_seed(store.identity().expose_seed())?;
        Ok(Arc::new(Self {
            peer_id: key.public().to_peer_id(),
            path: store.path().to_path_buf(),
            place: Mutex::new(Place::Stopped(Box::new(redoubt_node::Vault::new(store)))),
            listener: Mutex::new(None),
        }))
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Place> {
        // A panic while held (a bug) leaves the place as it was between two calls.
        self.place.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&redoubt_node::Vault) -> R,
    ) -> Result<R, RedoubtError> {
        match &*self.lock() {
            Place::Stopped(v) => Ok(f(v)),
            Place::Running(h) => Ok(h.read(f)),
            Place::Gone => Err(gone()),
        }
    }

    fn write<R, E: Into<RedoubtError>>(
        &self,
        f: impl FnOnce(&mut redoubt_node::Vault) -> Result<R, E>,
    ) -> Result<R, RedoubtError> {
        match &mut *self.lock() {
            Place::Stopped(v) => f(v).map_err(Into::into),
            Place::Running(h) => h.write(f).map_err(Into::into),
            Place::Gone => Err(gone()),
        }
    }

    /// The running node's handle, for a call that needs the network.
    pub(crate) fn handle(&self, what: &str) -> Result<Handle, RedoubtError> {
        match &*self.lock() {
            Place::Running(h) => Ok(h.clone()),
            Place::Stopped(_) => Err(RedoubtError::not_running(format!(
                "{what} needs the node: call start first"
            ))),
            Place::Gone => Err(gone()),
        }
    }

    /// The address to dial `peer` at: `peer` itself when it is an address, else the most
    /// recent address this vault keeps for that peer id.
    fn address_of(&self, handle: &Handle, peer: &str) -> Result<Multiaddr, RedoubtError> {
        if peer.trim_start().starts_with('/') {
            return parse_addr(peer);
        }
        let id = parse_peer(peer)?;
        let book = handle.read(|v| v.address_book())?;
        book.into_iter()
            .find(|(p, _)| *p == id)
            .and_then(|(_, addrs)| addrs.into_iter().next())
            .map(|(a, _)| a)
            .ok_or_else(|| {
                RedoubtError::not_found(format!(
                    "no address known for peer {id}; give its address instead"
                ))
            })
    }
}

/// A peer id from its base58 text, or a clear error (a grant keyed by anything else would
/// match no peer, so it is refused here rather than recorded and useless).
pub(crate) fn parse_peer(text: &str) -> Result<PeerId, RedoubtError> {
    PeerId::from_str(text.trim()).map_err(|_| {
        RedoubtError::invalid(format!(
            "{text:?} is not a peer id (base58, as peer_id() gives)"
        ))
    })
}

/// A multiaddr from its text, or a clear error.
pub(crate) fn parse_addr(text: &str) -> Result<Multiaddr, RedoubtError> {
    text.trim()
        .parse()
        .map_err(|e| RedoubtError::invalid(format!("{text:?} is not a multiaddr: {e}")))
}

pub(crate) fn gone() -> RedoubtError {
    RedoubtError::not_running(
        "the node stopped while another call still used it, and that call closed the vault: \
         open it again",
    )
}

/// How long a joiner looks for the host on the local network when no address was given.
pub(crate) const DISCOVERY_WAIT: Duration = Duration::from_secs(10);
