//! A [`Remote`]: setting one up (add, join), and the sync algorithm: one LIST of the heads, a
//! GET of each head that changed and of each segment not seen yet, one merge commit, then this
//! device's new journal events as one segment and a head update; past a threshold, a
//! compaction base, and after a grace period the deletion of this device's older segments.

use std::time::Duration;

use object_store::{ObjectMeta, PutMode};
use redoubt_snapshot::{KdfLimits, KdfParams};
use redoubt_store::Store;
use redoubt_vault::{MergeBounds, MergePolicy, MergeReport};

use crate::{
    Access, Backend, Error,
    crypto::{DeviceId, Kind, StorageKey, random_nonce},
    format::{
        self, HEAD_OBJECT_LEN, Head, KEY_OBJECT_LEN, KEY_OBJECT_NAME, SegmentKind, head_name,
        parse_head_name, parse_segment_name,
    },
    state::RemoteState,
};

mod download;
mod pack;
mod upload;

/// When a device compacts its own segments, and how long it keeps the ones a base replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// A sync writes a base once this device has written at least this many segments since
    /// its last base (0: never automatically; [`Remote::compact`] still does) ...
    pub every: u64,
    /// ... and those segments add up to at least `1 / ratio` of the last base's size, so the
    /// bases uploaded cost at most `ratio` times the changes (0 or 1: no size condition).
    pub ratio: u64,
    /// Segments older than the latest base are deleted only once that base is this old.
    pub grace: Duration,
    /// A sync writes a pack once this many segments were written since the last pack of its
    /// level (or base): level 1 stands for `pack_every` segments, level 2 for `pack_every²`,
    /// so a device behind by N segments reads at most about `4 × (pack_every − 1) +
    /// N / pack_every²` of them (0 or 1: no packs; `docs/storage-format.md` sections 7, 8).
    pub pack_every: u64,
}

impl Default for Compaction {
    /// A base once 64 segments and a quarter of the last base's size were written since it,
    /// the older segments deleted a day later; a pack every 64 segments, and every 4096.
    fn default() -> Self {
        Self {
            every: 64,
            ratio: 4,
            grace: Duration::from_secs(24 * 3600),
            pack_every: 64,
        }
    }
}

/// One remote of one vault: its state (persisted sealed in the vault's store after every step
/// that changes it) and its backend.
#[derive(Debug)]
pub struct Remote {
    name: String,
    state: RemoteState,
    backend: Backend,
    device: DeviceId,
    compaction: Compaction,
}

/// One segment this device uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Its sequence number in this device's chain.
    pub seq: u64,
    /// Events or a base.
    pub kind: SegmentKind,
    /// Journal events it carries.
    pub events: usize,
    /// Its size on the storage, bytes (padded and sealed).
    pub bytes: usize,
}

/// What a sync did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SyncReport {
    /// The merge of everything fetched (one commit).
    pub merge: MergeReport,
    /// Other devices whose head changed since the last sync.
    pub devices_changed: usize,
    /// Segments fetched.
    pub segments_fetched: usize,
    /// Bytes of segments and heads fetched.
    pub bytes_fetched: u64,
    /// Records found of clients not chosen for this remote, refused.
    pub refused_records: u64,
    /// Segments this device uploaded.
    pub uploaded: Vec<Uploaded>,
    /// Devices whose objects were refused (tampered, missing, rolled back), by opaque id,
    /// with why; the others still synced, and the refused ones are retried next time.
    pub failed: Vec<(String, Error)>,
    /// This device's own segments deleted (older than its latest base, past the grace).
    pub segments_deleted: usize,
}

impl Remote {
    /// Sets up the storage behind `backend` as remote `name` of `store` (the first device):
    /// a fresh storage key, wrapped under `passphrase` with Argon2id `params` into the key
    /// object (created only if absent: [`Error::AlreadySetUp`] otherwise).
    pub async fn add(
        store: &mut impl Access,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<Self, Error> {
        if store.read(|s| s.remote(name))?.is_some() {
            return Err(Error::RemoteExists(name.to_owned()));
        }
        params
            .check_within(&KdfLimits::default())
            .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        let key = StorageKey::random()?;
        let mut salt = [0u8; 16];
        redoubt_crypto::fill_random(&mut salt)?;
        let object = format::wrap_key(&key, passphrase, params, &salt, &random_nonce()?)?;
        match backend.put(KEY_OBJECT_NAME, object, PutMode::Create).await {
            Ok(_) => {}
            Err(Error::Storage { source, .. })
                if matches!(*source, object_store::Error::AlreadyExists { .. }) =>
            {
                return Err(Error::AlreadySetUp);
            }
            Err(e) => return Err(e),
        }
        Self::join_with_key(store, name, url, backend, clients, key).await
    }

    /// Joins the storage behind `backend` as remote `name` of `store` with the recovery
    /// `passphrase`. A wrong passphrase fails with [`Error::WrongPassphrase`] and writes
    /// nothing, neither to the store nor to the storage.
    pub async fn join(
        store: &mut impl Access,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        passphrase: &[u8],
        limits: &KdfLimits,
    ) -> Result<Self, Error> {
        if store.read(|s| s.remote(name))?.is_some() {
            return Err(Error::RemoteExists(name.to_owned()));
        }
        let object = match backend.get_capped(KEY_OBJECT_NAME, KEY_OBJECT_LEN).await {
            Ok((bytes, _)) => bytes,
            Err(e) if e.is_not_found() => return Err(Error::NotSetUp),
            Err(e) => return Err(e),
        };
        let key = format::unwrap_key(&object, passphrase, limits)?;
        Self::join_with_key(store, name, url, backend, clients, key).await
    }

    /// Joins with a storage key received otherwise (over a pairing channel). Adopts this
    /// device's head if the storage already holds one (the remote was removed and joined
    /// again).
    ///
    /// `vault` is held only for short steps, never across the request to the storage (a
    /// [`Store`] is an [`Access`], and so is a node's shared vault).
    pub async fn join_with_key(
        vault: &mut impl Access,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        key: StorageKey,
    ) -> Result<Self, Error> {
        if vault.read(|s| s.remote(name))?.is_some() {
            return Err(Error::RemoteExists(name.to_owned()));
        }
        let device = key.device_id(&vault.read(Store::node));
        let mut remote = Self {
            name: name.to_owned(),
            state: RemoteState::new(url.to_owned(), clients, key),
            backend,
            device,
            compaction: Compaction::default(),
        };
        if let Some((head, meta)) = remote.own_head().await? {
            remote.state.own = head;
            remote.state.head_etag = meta.e_tag;
            remote.state.head_version = meta.version;
            remote.state.restart_packs();
        }
        // Checked again in the commit itself: another join of this name may have landed
        // while the head was fetched.
        let state = remote.state.encode()?;
        vault.write(|s| -> Result<(), Error> {
            if s.remote(name)?.is_some() {
                return Err(Error::RemoteExists(name.to_owned()));
            }
            s.set_remote(name, &state)?;
            Ok(())
        })?;
        Ok(remote)
    }

    /// Remote `name` of `store`, on `backend`, or on the backend its stored URL names
    /// (credentials from the environment) when `None`.
    pub fn open(store: &Store, name: &str, backend: Option<Backend>) -> Result<Self, Error> {
        let bytes = store
            .remote(name)?
            .ok_or_else(|| Error::NoSuchRemote(name.to_owned()))?;
        let state = RemoteState::decode(&bytes)?;
        let backend = match backend {
            Some(b) => b,
            None => Backend::from_url(&state.url)?,
        };
        let device = state.key.device_id(&store.node());
        Ok(Self {
            name: name.to_owned(),
            state,
            backend,
            device,
            compaction: Compaction::default(),
        })
    }

    /// Sets when this remote compacts (the default: [`Compaction::default`]).
    pub fn set_compaction(&mut self, compaction: Compaction) {
        self.compaction = compaction;
    }

    /// The remote's name in the vault.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the vault keeps about it.
    pub fn state(&self) -> &RemoteState {
        &self.state
    }

    /// This device's opaque id on it.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Syncs `store` with the remote: fetches and merges what other devices uploaded since
    /// the last sync (refusing records of clients not chosen), then uploads this device's new
    /// journal events. With nothing new anywhere, it makes one LIST request and no other.
    /// Past [`Compaction::every`] own segments it then writes a base, and deletes the segments
    /// an older base replaced once it is older than [`Compaction::grace`].
    ///
    /// A failed request (an error or [`Error::Timeout`]) of the LIST, of this device's own
    /// head or of an upload ends the sync with that error; what was committed before stays
    /// (nothing is marked uploaded or seen that did not land), and the next sync goes on from
    /// there. A failed GET of another device's objects refuses that device only (in
    /// [`SyncReport::failed`]).
    pub async fn sync(&mut self, vault: &mut impl Access) -> Result<SyncReport, Error> {
        self.sync_and_compact(vault, false).await
    }

    /// Syncs, then writes a base of this device's records whatever the threshold (if it wrote
    /// anything since its last base), then deletes what the grace period allows.
    pub async fn compact(&mut self, vault: &mut impl Access) -> Result<SyncReport, Error> {
        self.sync_and_compact(vault, true).await
    }

    async fn sync_and_compact(
        &mut self,
        vault: &mut impl Access,
        force: bool,
    ) -> Result<SyncReport, Error> {
        let mut report = SyncReport::default();
        let listing = self.backend.list_dir(None).await?;
        let mut changed = Vec::new();
        for meta in listing.objects {
            let Some(device) = parse_head_name(meta.location.as_ref()) else {
                continue;
            };
            if device == self.device {
                continue;
            }
            let print = fingerprint(&meta);
            match self.state.seen.get(&device) {
                Some((_, Some(old))) if *old == print => {}
                _ => changed.push((device, meta, print)),
            }
        }
        report.devices_changed = changed.len();

        let mut incoming = Vec::new();
        let mut updates = Vec::new();
        for (device, meta, print) in changed {
            match self.fetch_device(device, &meta, &mut report).await {
                Ok((head, segments)) => {
                    let (records, refused) = self.records_of(&segments)?;
                    report.refused_records += refused;
                    incoming.extend(records);
                    updates.push((device, head, print));
                }
                Err(e) => report.failed.push((device.to_string(), e)),
            }
        }
        // What this device uploads is read before the merge: the merge's own events (and, for
        // a base, its records) came from this remote and are not sent back.
        // Read, merge and mark in one step: a local change made between them would count as
        // the merge's and never be uploaded.
        self.resolve_pending(vault).await?;
        let (outgoing, merge, after_merge) = vault.merge(&self.name, |store, noter| {
            let before_merge = store.journal_head().0;
            let outgoing = self.outgoing(store, before_merge)?;
            let (policy, bounds) = (MergePolicy::Newest, MergeBounds::now());
            let merge = match noter {
                _ if incoming.is_empty() => MergeReport::default(),
                Some(note) => store.merge_batch_noting(incoming, policy, &bounds, |c, l, r| {
                    note(c, l, r);
                })?,
                None => store.merge_batch(incoming, policy, &bounds)?,
            };
            Ok::<_, Error>((outgoing, merge, store.journal_head().0))
        })?;
        report.merge = merge;
        // A version refused for its stamp (too far ahead of this clock) must be offered again:
        // the heads are then not marked seen, so the next sync fetches the same segments.
        if !updates.is_empty() && report.merge.refused_ahead == 0 {
            for (device, head, print) in updates {
                self.state.seen.insert(device, (head, Some(print)));
            }
            self.persist(vault)?;
        }
        self.upload(vault, outgoing, after_merge, &mut report)
            .await?;
        let since = self.state.own.seq.saturating_sub(self.state.base);
        let grown = self
            .state
            .since_base_bytes
            .saturating_mul(self.compaction.ratio.max(1))
            >= self.state.base_bytes;
        let due = self.compaction.every > 0 && since >= self.compaction.every && grown;
        if since > 0 && (force || due) {
            let events = vault.read(|store| self.base_events(store))?;
            let mark = self.state.uploaded;
            self.upload(vault, (SegmentKind::Base, events, false), mark, &mut report)
                .await?;
        } else {
            self.pack(vault, &mut report).await?;
        }
        report.segments_deleted = self.collect(vault).await?;
        Ok(report)
    }

    /// Deletes this device's segments below its latest base once the base is older than the
    /// grace period (one LIST of its own prefix, one DELETE per segment); the mark moves only
    /// after every one is gone, so a failure is retried whole next time.
    async fn collect(&mut self, vault: &mut impl Access) -> Result<usize, Error> {
        let base = self.state.base;
        let grace = u64::try_from(self.compaction.grace.as_millis()).unwrap_or(u64::MAX);
        if base <= 1 || self.state.deleted_below >= base {
            return Ok(0);
        }
        if now_ms().saturating_sub(self.state.base_at_ms) < grace {
            return Ok(0);
        }
        let prefix = format!("{}/", self.device);
        let mut deleted = 0;
        for meta in self.backend.list_all(&prefix).await? {
            let name = meta.location.to_string();
            match parse_segment_name(&name) {
                Some((device, seq, _)) if device == self.device && seq < base => {
                    self.backend.delete(&name).await?;
                    deleted += 1;
                }
                _ => {}
            }
        }
        self.state.deleted_below = base;
        self.persist(vault)?;
        Ok(deleted)
    }

    /// After a sync cut between a segment upload and its head update: adopts the head if it
    /// landed, forgets the pending segment if it did not (it stays an orphan, never named by a
    /// head), and refuses a head that is neither.
    async fn resolve_pending(&mut self, vault: &mut impl Access) -> Result<(), Error> {
        let Some((pending, mark)) = self.state.pending else {
            return Ok(());
        };
        let current = self.own_head().await?;
        match current {
            Some((head, meta)) if head == pending => {
                self.state.own = head;
                self.state.uploaded = self.state.uploaded.max(mark);
                self.state.head_etag = meta.e_tag;
                self.state.head_version = meta.version;
            }
            Some((head, _)) if head == self.state.own => {}
            None if self.state.own.seq == 0 => {}
            _ => return Err(self.conflict()),
        }
        self.state.pending = None;
        self.persist(vault)
    }

    /// This device's head as the storage holds it, with its metadata.
    async fn own_head(&self) -> Result<Option<(Head, ObjectMeta)>, Error> {
        let name = head_name(&self.device);
        match self.backend.get_capped(&name, HEAD_OBJECT_LEN).await {
            Ok((bytes, meta)) => Ok(Some((self.open_head(self.device, &name, &bytes)?, meta))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_head(&self, device: DeviceId, name: &str) -> Result<Head, Error> {
        let (bytes, _) = self.backend.get_capped(name, HEAD_OBJECT_LEN).await?;
        self.open_head(device, name, &bytes)
    }

    fn open_head(&self, device: DeviceId, name: &str, bytes: &[u8]) -> Result<Head, Error> {
        let tampered = |reason| Error::Tampered {
            name: name.to_owned(),
            reason,
        };
        let plain = self
            .state
            .key
            .open(Kind::Head, &device, 0, bytes)
            .map_err(tampered)?;
        format::decode_head(&plain).map_err(|_| tampered("malformed"))
    }

    fn conflict(&self) -> Error {
        Error::HeadConflict {
            device: self.device.to_string(),
        }
    }

    fn persist(&self, vault: &mut impl Access) -> Result<(), Error> {
        let state = self.state.encode()?;
        vault.write(|store| store.set_remote(&self.name, &state))?;
        Ok(())
    }
}

/// Now, milliseconds since the Unix epoch (0 before it).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
/// What a listing says about an object, to tell whether it changed without reading it.
fn fingerprint(meta: &ObjectMeta) -> String {
    format!(
        "{}|{}|{}|{}",
        meta.e_tag.as_deref().unwrap_or(""),
        meta.version.as_deref().unwrap_or(""),
        meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
        meta.size
    )
}
