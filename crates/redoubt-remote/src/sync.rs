//! A [`Remote`]: setting one up (add, join), and the sync algorithm: one LIST of the heads, a
//! GET of each head that changed and of each segment not seen yet, one merge commit, then this
//! device's new journal events as one segment and a head update; past a threshold, a
//! compaction base, and after a grace period the deletion of this device's older segments.

use std::time::Duration;

use object_store::{ObjectMeta, PutMode, UpdateVersion};
use redoubt_snapshot::{KdfLimits, KdfParams};
use redoubt_store::{
    Store,
    journal::{self, Entry, v1, v2},
};
use redoubt_vault::{Instance, MergeBounds, MergePolicy, MergeReport};

use crate::{
    Backend, Error,
    crypto::{DeviceId, Kind, StorageKey, chain, random_nonce, segment_hash},
    format::{
        self, HEAD_OBJECT_LEN, Head, KEY_OBJECT_LEN, KEY_OBJECT_NAME, MAX_SEGMENT_OBJECT,
        SEGMENT_TARGET, Segment, SegmentKind, head_name, parse_head_name, parse_segment_name,
        segment_name,
    },
    state::{RemoteState, empty_head},
};

/// A fetched segment: its name, content hash and contents.
type Fetched = (String, [u8; 32], Segment);
/// What a sync uploads: the segment kind, the event plaintexts, whether the mark moves down.
type Outgoing = (SegmentKind, Vec<Vec<u8>>, bool);

/// Journal events read per page while collecting what to upload.
const PAGE: usize = 256;
/// Records per event of a base segment.
const BASE_EVENT_RECORDS: usize = 4096;
/// Bytes a base event grows to before the next starts (a record with its history holds up to
/// 1 MiB of earlier values, so a count alone could pass the journal's event cap).
const BASE_EVENT_BYTES: usize = 8 << 20;

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
}

impl Default for Compaction {
    /// A base once 64 segments and a quarter of the last base's size were written since it,
    /// the older segments deleted a day later.
    fn default() -> Self {
        Self {
            every: 64,
            ratio: 4,
            grace: Duration::from_secs(24 * 3600),
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
        store: &mut Store,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<Self, Error> {
        if store.remote(name)?.is_some() {
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
        store: &mut Store,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        passphrase: &[u8],
        limits: &KdfLimits,
    ) -> Result<Self, Error> {
        if store.remote(name)?.is_some() {
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
    pub async fn join_with_key(
        store: &mut Store,
        name: &str,
        url: &str,
        backend: Backend,
        clients: Option<Vec<Vec<u8>>>,
        key: StorageKey,
    ) -> Result<Self, Error> {
        if store.remote(name)?.is_some() {
            return Err(Error::RemoteExists(name.to_owned()));
        }
        let device = key.device_id(&store.node());
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
        }
        remote.persist(store)?;
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
    pub async fn sync(&mut self, store: &mut Store) -> Result<SyncReport, Error> {
        self.sync_and_compact(store, false).await
    }

    /// Syncs, then writes a base of this device's records whatever the threshold (if it wrote
    /// anything since its last base), then deletes what the grace period allows.
    pub async fn compact(&mut self, store: &mut Store) -> Result<SyncReport, Error> {
        self.sync_and_compact(store, true).await
    }

    async fn sync_and_compact(
        &mut self,
        store: &mut Store,
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
        self.resolve_pending(store).await?;
        let before_merge = store.journal_head().0;
        let outgoing = self.outgoing(store, before_merge)?;
        if !incoming.is_empty() {
            report.merge = store.merge_batch(incoming, MergePolicy::Newest, &MergeBounds::now())?;
        }
        let after_merge = store.journal_head().0;
        // A version refused for its stamp (too far ahead of this clock) must be offered again:
        // the heads are then not marked seen, so the next sync fetches the same segments.
        if !updates.is_empty() && report.merge.refused_ahead == 0 {
            for (device, head, print) in updates {
                self.state.seen.insert(device, (head, Some(print)));
            }
            self.persist(store)?;
        }
        self.upload(store, outgoing, after_merge, &mut report)
            .await?;
        let since = self.state.own.seq.saturating_sub(self.state.base);
        let grown = self
            .state
            .since_base_bytes
            .saturating_mul(self.compaction.ratio.max(1))
            >= self.state.base_bytes;
        let due = self.compaction.every > 0 && since >= self.compaction.every && grown;
        if since > 0 && (force || due) {
            let events = self.base_events(store)?;
            let mark = self.state.uploaded;
            self.upload(store, (SegmentKind::Base, events, false), mark, &mut report)
                .await?;
        }
        report.segments_deleted = self.collect(store).await?;
        Ok(report)
    }

    /// Deletes this device's segments below its latest base once the base is older than the
    /// grace period (one LIST of its own prefix, one DELETE per segment); the mark moves only
    /// after every one is gone, so a failure is retried whole next time.
    async fn collect(&mut self, store: &mut Store) -> Result<usize, Error> {
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
        self.persist(store)?;
        Ok(deleted)
    }

    /// Reads `device`'s head and every segment after the one seen, newest first by each
    /// segment's link to the one before, then checks the chain from the seen one to the head.
    ///
    /// A segment found missing makes it read the head once more: if the device compacted in
    /// the meantime (a base now covers the missing segment), the walk starts again from the new
    /// head; otherwise the device is refused with [`Error::SegmentMissing`].
    async fn fetch_device(
        &self,
        device: DeviceId,
        meta: &ObjectMeta,
        report: &mut SyncReport,
    ) -> Result<(Head, Vec<Fetched>), Error> {
        let name = meta.location.to_string();
        let mut head = self.read_head(device, &name).await?;
        report.bytes_fetched += HEAD_OBJECT_LEN as u64;
        match self.walk(device, head, report).await {
            Err(missing @ Error::SegmentMissing { .. }) => {
                let again = self.read_head(device, &name).await?;
                report.bytes_fetched += HEAD_OBJECT_LEN as u64;
                if again == head {
                    return Err(missing);
                }
                head = again;
                Ok((head, self.walk(device, head, report).await?))
            }
            other => Ok((head, other?)),
        }
    }

    /// The segments from the one after the last seen of `device` to `head` (or from the
    /// newest format-2 base on that way), checked: names, seals, links and chain.
    async fn walk(
        &self,
        device: DeviceId,
        head: Head,
        report: &mut SyncReport,
    ) -> Result<Vec<Fetched>, Error> {
        let seen = self
            .state
            .seen
            .get(&device)
            .map(|(h, _)| *h)
            .unwrap_or_else(empty_head);
        let broken = |reason| Error::ChainBroken {
            device: device.to_string(),
            reason,
        };
        if head.seq < seen.seq {
            return Err(broken("its head went backwards (rolled back)"));
        }
        if head.seq == seen.seq {
            if head.chain != seen.chain {
                return Err(broken("its head was replaced at the same sequence"));
            }
            return Ok(Vec::new());
        }
        let mut segments = Vec::new();
        let mut base_chain = None;
        let (mut seq, mut hash) = (head.seq, head.latest);
        while seq > seen.seq {
            let name = segment_name(&device, seq, &hash);
            let bytes = match self.backend.get_capped(&name, MAX_SEGMENT_OBJECT).await {
                Ok((bytes, _)) => bytes,
                Err(e) if e.is_not_found() => {
                    return Err(Error::SegmentMissing {
                        device: device.to_string(),
                        name,
                    });
                }
                Err(e) => return Err(e),
            };
            report.segments_fetched += 1;
            report.bytes_fetched += bytes.len() as u64;
            let tampered = |reason| Error::Tampered {
                name: name.clone(),
                reason,
            };
            if segment_hash(&bytes) != hash {
                return Err(tampered("its content does not match the hash in its name"));
            }
            let plain = self
                .state
                .key
                .open(Kind::Segment, &device, seq, &bytes)
                .map_err(tampered)?;
            let segment = format::decode_segment(&plain).map_err(|_| tampered("malformed"))?;
            if segment.seq != seq {
                return Err(tampered("it names another sequence number"));
            }
            let this = hash;
            hash = segment.prev;
            seq -= 1;
            let before = segment.chain_before;
            segments.push((name, this, segment));
            // A base holds every current record: what came before it is not needed.
            if let Some(before) = before {
                base_chain = Some(before);
                break;
            }
        }
        let mut c = match base_chain {
            Some(before) if seq > seen.seq => before,
            Some(before) if before != seen.chain => {
                return Err(broken(
                    "its base's chain does not lead back to the segment seen last",
                ));
            }
            _ => seen.chain,
        };
        if seq == seen.seq && hash != seen.latest {
            return Err(broken(
                "its chain does not lead back to the segment seen last",
            ));
        }
        segments.reverse();
        for (_, h, s) in &segments {
            c = chain(&c, s.seq, h);
        }
        if c != head.chain {
            return Err(broken("its chain hash disagrees with its head"));
        }
        Ok(segments)
    }

    /// The record versions `segments` carry, in order (later versions of a location replace
    /// earlier ones, as the writer's journal did), of chosen clients; and how many were of
    /// other clients (refused).
    #[allow(clippy::type_complexity)]
    fn records_of(
        &self,
        segments: &[Fetched],
    ) -> Result<(Vec<(Vec<u8>, redoubt_vault::Record)>, u64), Error> {
        let mut scratch = Instance::new(redoubt_vault::NodeId::from_bytes([0; 16]));
        for (name, _, segment) in segments {
            for plain in &segment.events {
                let event = journal::decode(plain).map_err(|_| Error::Tampered {
                    name: name.clone(),
                    reason: "an event does not decode (or is of a schema this build cannot read)",
                })?;
                journal::apply(&mut scratch, &event)?;
            }
        }
        let (mut out, mut refused) = (Vec::new(), 0u64);
        for (id, client) in scratch.clients() {
            if self.state.chooses(client) {
                out.extend(scratch.records(id).map(|r| (client.to_vec(), r.clone())));
            } else {
                refused += scratch.records(id).count() as u64;
            }
        }
        Ok((out, refused))
    }

    /// What to upload: the local events after the uploaded mark up to `before_merge`; a base
    /// (every current record of the chosen clients) instead when the journal was folded past
    /// the mark, restarted below it (a rekey starts it again empty), or this is the device's
    /// first upload from a vault that already holds records (the journal may not reach back to
    /// them: a vault migrated from a snapshot file starts with an empty journal). The flag says
    /// whether the mark must move down (a restarted journal).
    fn outgoing(&self, store: &Store, before_merge: u64) -> Result<Outgoing, Error> {
        let from = self.state.uploaded + 1;
        let restarted = self.state.uploaded > before_merge;
        let folded = before_merge >= from && from < store.journal_oldest();
        let first = self.state.uploaded == 0 && self.state.own.seq == 0;
        let unfinished = self.state.base_open;
        if restarted || folded || unfinished || (first && !store.instance().is_empty()) {
            return Ok((SegmentKind::Base, self.base_events(store)?, restarted));
        }
        if before_merge < from {
            return Ok((SegmentKind::Events, Vec::new(), false));
        }
        let events = self.new_events(store, from, before_merge)?;
        Ok((SegmentKind::Events, events, false))
    }

    /// Uploads `outgoing` in segments of about [`SEGMENT_TARGET`], then moves the mark to
    /// `after_merge`: the events of this sync's merge came from the remote. A base is one
    /// segment or more (at least one, even empty); its first part is a format-2 base object
    /// (readers stop their walk there, so every later part is read first), the later parts
    /// format-1 bases; it counts as this device's latest base once every part landed.
    async fn upload(
        &mut self,
        store: &mut Store,
        (kind, events, restarted): Outgoing,
        after_merge: u64,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let mut chunks: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut size = 0;
        for e in events {
            if chunks.is_empty() || size + e.len() > SEGMENT_TARGET {
                chunks.push(Vec::new());
                size = 0;
            }
            size += e.len() + 4;
            if let Some(last) = chunks.last_mut() {
                last.push(e);
            }
        }
        let base = kind == SegmentKind::Base;
        if base && chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let count = chunks.len();
        if base && count > 1 {
            self.state.base_open = true;
        }
        let first_seq = self.state.own.seq + 1;
        let mut bytes = 0u64;
        let final_mark = if restarted {
            after_merge
        } else {
            after_merge.max(self.state.uploaded)
        };
        for (i, events) in chunks.into_iter().enumerate() {
            let mark = if i + 1 == count {
                final_mark
            } else {
                self.state.uploaded
            };
            let up = self
                .put_segment(store, kind, events, mark, base && i == 0)
                .await?;
            bytes += up.bytes as u64;
            report.uploaded.push(up);
        }
        if base {
            self.state.base = first_seq;
            self.state.base_at_ms = now_ms();
            self.state.base_bytes = bytes;
            self.state.since_base_bytes = 0;
            self.state.base_open = false;
            self.persist(store)?;
        } else if count > 0 {
            self.state.since_base_bytes = self.state.since_base_bytes.saturating_add(bytes);
            self.persist(store)?;
        } else if final_mark != self.state.uploaded {
            self.state.uploaded = final_mark;
            self.persist(store)?;
        }
        Ok(())
    }

    /// The local events in `from..=to`, each as its plaintext for a segment: rebuilt with only
    /// the chosen clients' records (each with its lineage) and no grant changes (grants stay
    /// with the vault), in the oldest schema version that holds it ([`encode_event`]).
    fn new_events(&self, store: &Store, from: u64, to: u64) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        let mut next = from;
        while next <= to {
            let page = store.journal_page(next, PAGE)?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                if entry.seq > to {
                    return Ok(out);
                }
                if let Some(bytes) = self.carry(entry)? {
                    out.push(bytes);
                }
                next = entry.seq + 1;
            }
        }
        Ok(out)
    }

    fn carry(&self, entry: &Entry) -> Result<Option<Vec<u8>>, Error> {
        // Versions 1 and 2 share one content (version 2's records carry their lineage), so
        // both are filtered alike; each record keeps its lineage.
        let event = entry.event.content();
        let records: Vec<_> = event
            .records
            .iter()
            .filter(|c| self.state.chooses(&c.client))
            .cloned()
            .collect();
        if records.is_empty() {
            return Ok(None);
        }
        let kept = v1::Event {
            records,
            grants: Vec::new(),
            ..event.clone()
        };
        encode_event(&kept).map(Some)
    }

    /// Every current record of the chosen clients with its lineage, as events of at most
    /// [`BASE_EVENT_RECORDS`] records and about [`BASE_EVENT_BYTES`] each (numbered from 1,
    /// parent zero): version 2 where a record carries lineage, else version 1.
    fn base_events(&self, store: &Store) -> Result<Vec<Vec<u8>>, Error> {
        let (wall_ms, counter) = store.instance().clock().last();
        let mut chunks: Vec<Vec<v1::RecordChange>> = Vec::new();
        let mut bytes = 0usize;
        for (id, client) in store.clients() {
            if !self.state.chooses(client) {
                continue;
            }
            for r in store.records(id) {
                let change = v1::RecordChange {
                    client: client.to_vec(),
                    record: r.clone(),
                };
                let len = v2::change_len(&change);
                match chunks.last_mut() {
                    Some(c)
                        if c.len() < BASE_EVENT_RECORDS
                            && bytes.saturating_add(len) <= BASE_EVENT_BYTES =>
                    {
                        bytes = bytes.saturating_add(len);
                        c.push(change);
                    }
                    _ => {
                        bytes = len;
                        chunks.push(vec![change]);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (i, records) in chunks.into_iter().enumerate() {
            let event = v1::Event {
                seq: i as u64 + 1,
                parent: [0; 32],
                writer: store.node(),
                wall_ms,
                counter,
                records,
                grants: Vec::new(),
            };
            out.push(encode_event(&event)?);
        }
        Ok(out)
    }

    /// Creates segment `own.seq + 1` (create-if-absent; a format-2 base object carrying the
    /// chain before it when `stop_here`), records it as pending in the vault, points the head
    /// at it, then records the new head and `mark` as uploaded.
    async fn put_segment(
        &mut self,
        store: &mut Store,
        kind: SegmentKind,
        events: Vec<Vec<u8>>,
        mark: u64,
        stop_here: bool,
    ) -> Result<Uploaded, Error> {
        let seq = self.state.own.seq + 1;
        let count = events.len();
        let segment = Segment {
            kind,
            seq,
            prev: self.state.own.latest,
            chain_before: stop_here.then_some(self.state.own.chain),
            events,
        };
        let plain = format::encode_segment(&segment)?;
        let sealed =
            self.state
                .key
                .seal(Kind::Segment, &self.device, seq, &plain, &random_nonce()?)?;
        let bytes = sealed.len();
        let hash = segment_hash(&sealed);
        let name = segment_name(&self.device, seq, &hash);
        self.backend.put(&name, sealed, PutMode::Create).await?;
        let head = Head {
            seq,
            latest: hash,
            chain: chain(&self.state.own.chain, seq, &hash),
        };
        self.state.pending = Some((head, mark));
        self.persist(store)?;
        self.write_head(head).await?;
        self.state.own = head;
        self.state.uploaded = mark;
        self.state.pending = None;
        self.persist(store)?;
        Ok(Uploaded {
            seq,
            kind,
            events: count,
            bytes,
        })
    }

    /// Points this device's head at `head`: a compare-and-swap against the version this device
    /// last wrote where the backend has one; on a folder, a check that the head is still the
    /// one this device wrote, then an overwrite (atomic: staged, then renamed).
    async fn write_head(&mut self, head: Head) -> Result<(), Error> {
        let plain = format::encode_head(&head);
        let sealed = self
            .state
            .key
            .seal(Kind::Head, &self.device, 0, &plain, &random_nonce()?)?;
        let first = self.state.own.seq == 0 && self.state.head_etag.is_none();
        let mode = if first {
            PutMode::Create
        } else if self.backend.flavor.conditional_update() {
            PutMode::Update(UpdateVersion {
                e_tag: self.state.head_etag.clone(),
                version: self.state.head_version.clone(),
            })
        } else {
            let current = self.own_head().await?.map(|(h, _)| h);
            if current != Some(self.state.own) {
                return Err(self.conflict());
            }
            PutMode::Overwrite
        };
        match self
            .backend
            .put(&head_name(&self.device), sealed, mode)
            .await
        {
            Ok(done) => {
                self.state.head_etag = done.e_tag;
                self.state.head_version = done.version;
                Ok(())
            }
            Err(Error::Storage { source, .. })
                if matches!(
                    *source,
                    object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. }
                ) =>
            {
                Err(self.conflict())
            }
            Err(e) => Err(e),
        }
    }

    /// After a sync cut between a segment upload and its head update: adopts the head if it
    /// landed, forgets the pending segment if it did not (it stays an orphan, never named by a
    /// head), and refuses a head that is neither.
    async fn resolve_pending(&mut self, store: &mut Store) -> Result<(), Error> {
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
        self.persist(store)
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

    fn persist(&self, store: &mut Store) -> Result<(), Error> {
        store.set_remote(&self.name, &self.state.encode()?)?;
        Ok(())
    }
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

/// Now, milliseconds since the Unix epoch (0 before it).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An event's plaintext in the oldest schema that holds it: version 2 when a record carries
/// lineage, else version 1 (byte for byte what older readers read).
fn encode_event(event: &v1::Event) -> Result<Vec<u8>, Error> {
    let bytes = if v2::needed(event) {
        v2::encode(event)?
    } else {
        v1::encode(event)?
    };
    Ok(bytes.to_vec())
}
