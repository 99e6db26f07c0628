//! Shared storage (a folder, an S3/Azure/GCS bucket) as a remote of the vault: set one up,
//! join one, sync with it. The same remotes as the CLI's `redoubt remote add/join/sync`.

use redoubt_node::{
    Handle,
    store::{KdfLimits, Store},
};
use redoubt_remote::{Access, Backend, Noter, Remote, SyncReport};
use zeroize::Zeroizing;

use crate::{
    RedoubtError, RemoteSummary,
    runtime::block_on,
    vault::{KdfStrength, Place, Vault, gone},
};

#[uniffi::export]
impl Vault {
    /// Sets up the storage at `url` (`file:///path/to/folder`, `s3://bucket/prefix`,
    /// `az://container/prefix`, `gs://bucket/prefix`; credentials from the environment) as
    /// remote `name` of this vault, the first device on it: a fresh storage key, wrapped
    /// under the recovery `passphrase` (derived with `kdf`) in the storage, then a first
    /// sync. `clients` limits what this device uploads and takes (none: every client). Works
    /// whether the node runs or not.
    pub fn remote_add(
        &self,
        name: String,
        url: String,
        passphrase: Vec<u8>,
        kdf: KdfStrength,
        clients: Vec<String>,
    ) -> Result<RemoteSummary, RedoubtError> {
        let backend = Backend::from_url(&url)?;
        let passphrase = Zeroizing::new(passphrase);
        let clients = selected(clients);
        self.lent(|access| {
            block_on(async {
                let mut remote = Remote::add(
                    access,
                    &name,
                    &url,
                    backend,
                    clients,
                    &passphrase,
                    kdf.params(),
                )
                .await?;
                remote.sync(access).await
            })?
            .map_err(Into::into)
        })
        .map(summary)
    }

    /// Joins remote `name` at `url`, set up by another device, with its recovery
    /// `passphrase`, then syncs with it. A wrong passphrase is
    /// [`RedoubtError::WrongPassword`] and writes nothing, here or on the storage.
    pub fn remote_join(
        &self,
        name: String,
        url: String,
        passphrase: Vec<u8>,
        clients: Vec<String>,
    ) -> Result<RemoteSummary, RedoubtError> {
        let backend = Backend::from_url(&url)?;
        let passphrase = Zeroizing::new(passphrase);
        let clients = selected(clients);
        self.lent(|access| {
            block_on(async {
                let mut remote = Remote::join(
                    access,
                    &name,
                    &url,
                    backend,
                    clients,
                    &passphrase,
                    &KdfLimits::default(),
                )
                .await?;
                remote.sync(access).await
            })?
            .map_err(Into::into)
        })
        .map(summary)
    }

    /// Syncs with the remote (shared storage) named `name` in this vault, with credentials
    /// from the environment; works whether the node runs or not.
    pub fn remote_sync(&self, name: String) -> Result<RemoteSummary, RedoubtError> {
        self.lent(|access| {
            let mut remote = access.read(|s| Remote::open(s, &name, None))?;
            block_on(remote.sync(access))?.map_err(Into::into)
        })
        .map(summary)
    }

    /// The remotes this vault has, by name.
    pub fn remotes(&self) -> Result<Vec<String>, RedoubtError> {
        self.read(|v| v.store().remote_names())?.map_err(Into::into)
    }
}

impl Vault {
    /// Runs `run` with the vault lent for a remote's steps: through the node when it runs
    /// (held only for each short step, never across a request to the storage, so the node
    /// serves its peers meanwhile), else the stopped vault itself.
    fn lent<R>(
        &self,
        run: impl FnOnce(&mut Lent<'_>) -> Result<R, RedoubtError>,
    ) -> Result<R, RedoubtError> {
        let running = match &*self.lock() {
            Place::Running(h) => Some(h.clone()),
            Place::Stopped(_) => None,
            Place::Gone => return Err(gone()),
        };
        if let Some(handle) = running {
            return run(&mut Lent::Node(handle));
        }
        let mut place = self.lock();
        let Place::Stopped(vault) = &mut *place else {
            return Err(RedoubtError::not_running(
                "the node started meanwhile; retry",
            ));
        };
        run(&mut Lent::Here(vault))
    }
}

/// The vault, as a remote reaches it: the running node's, or the stopped one in hand.
enum Lent<'a> {
    Node(Handle),
    Here(&'a mut redoubt_node::Vault),
}

impl Access for Lent<'_> {
    fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        match self {
            Self::Node(h) => Access::read(h, f),
            Self::Here(v) => Access::read(&**v, f),
        }
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        match self {
            Self::Node(h) => Access::write(h, f),
            Self::Here(v) => Access::write(&mut **v, f),
        }
    }

    fn merge<R>(
        &mut self,
        remote: &str,
        f: impl FnOnce(&mut Store, Option<&mut Noter<'_>>) -> R,
    ) -> R {
        match self {
            Self::Node(h) => Access::merge(h, remote, f),
            Self::Here(v) => Access::merge(&mut **v, remote, f),
        }
    }
}

/// The clients a remote is limited to: none given means every client.
fn selected(clients: Vec<String>) -> Option<Vec<Vec<u8>>> {
    (!clients.is_empty()).then(|| clients.into_iter().map(String::into_bytes).collect())
}

fn summary(report: SyncReport) -> RemoteSummary {
    RemoteSummary {
        merged: (&report.merge).into(),
        failed: report
            .failed
            .iter()
            .map(|(device, e)| format!("{device}: {e}"))
            .collect(),
    }
}
