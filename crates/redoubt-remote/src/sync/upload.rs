//! The upload side of a sync: what to send (new journal events, or a base), sealed into
//! segments, and the head that names the newest.

use object_store::{PutMode, UpdateVersion};
use redoubt_store::{
    Store,
    journal::{Entry, v1, v2},
};

use super::{Remote, SyncReport, Uploaded, now_ms};
use crate::Access;
use crate::{
    Error,
    crypto::{Kind, chain, random_nonce, segment_hash},
    format::{self, Head, SEGMENT_TARGET, Segment, SegmentKind, Skip, head_name, segment_name},
};

/// What a sync uploads: the segment kind, the event plaintexts, whether the mark moves down.
type Outgoing = (SegmentKind, Vec<Vec<u8>>, bool);

/// What a segment links to besides the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Links {
    /// Nothing: an events segment, or a later part of a base.
    Chain,
    /// The chain before it: a base object where readers stop (format 2).
    Base,
    /// The chain before it and the run it stands for: a pack (format 3).
    Pack(Skip),
}

/// Journal events read per page while collecting what to upload.
pub(super) const PAGE: usize = 256;
/// Records per event of a base segment.
const BASE_EVENT_RECORDS: usize = 4096;
/// Bytes a base event grows to before the next starts (a record with its history holds up to
/// 1 MiB of earlier values, so a count alone could pass the journal's event cap).
const BASE_EVENT_BYTES: usize = 8 << 20;

impl Remote {
    /// What to upload: the local events after the uploaded mark up to `before_merge`; a base
    /// (every current record of the chosen clients) instead when the journal was folded past
    /// the mark, restarted below it (a rekey starts it again empty), or this is the device's
    /// first upload from a vault that already holds records (the journal may not reach back to
    /// them: a vault migrated from a snapshot file starts with an empty journal). The flag says
    /// whether the mark must move down (a restarted journal).
    pub(super) fn outgoing(&self, store: &Store, before_merge: u64) -> Result<Outgoing, Error> {
        let from = self.state.uploaded + 1;
        let restarted = self.state.uploaded > before_merge;
        let folded = before_merge >= from && from < store.journal_oldest();
        let first = self.state.uploaded == 0 && self.state.own.seq == 0;
        let unfinished = self.state.base_open;
        if restarted || folded || unfinished || (first && !store.is_empty()) {
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
    pub(super) async fn upload(
        &mut self,
        vault: &mut impl Access,
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
            let links = match (base, i) {
                (true, 0) => Links::Base,
                _ => Links::Chain,
            };
            let up = self.put_segment(vault, kind, events, mark, links).await?;
            bytes += up.bytes as u64;
            report.uploaded.push(up);
        }
        if base {
            self.state.base = first_seq;
            self.state.base_at_ms = now_ms();
            self.state.base_bytes = bytes;
            self.state.since_base_bytes = 0;
            self.state.base_open = false;
            self.state.restart_packs();
            self.persist(vault)?;
        } else if count > 0 {
            self.state.since_base_bytes = self.state.since_base_bytes.saturating_add(bytes);
            self.persist(vault)?;
        } else if final_mark != self.state.uploaded {
            self.state.uploaded = final_mark;
            self.persist(vault)?;
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

    pub(super) fn carry(&self, entry: &Entry) -> Result<Option<Vec<u8>>, Error> {
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
    pub(super) fn base_events(&self, store: &Store) -> Result<Vec<Vec<u8>>, Error> {
        let mut records = Vec::new();
        for (id, client) in store.clients() {
            if self.state.chooses(client) {
                records.extend(store.records(id)?.into_iter().map(|r| (client, r)));
            }
        }
        record_events(records.into_iter(), store.node(), store.clock().last())
    }

    /// Creates segment `own.seq + 1` (create-if-absent; with `links`, a format-2 base object
    /// or a pack carrying the chain before it), records it as pending in the vault, points the
    /// head at it, then records the new head and `mark` as uploaded.
    pub(super) async fn put_segment(
        &mut self,
        vault: &mut impl Access,
        kind: SegmentKind,
        events: Vec<Vec<u8>>,
        mark: u64,
        links: Links,
    ) -> Result<Uploaded, Error> {
        let seq = self.state.own.seq + 1;
        let count = events.len();
        let segment = Segment {
            kind,
            seq,
            prev: self.state.own.latest,
            chain_before: (links != Links::Chain).then_some(self.state.own.chain),
            skip: match links {
                Links::Pack(skip) => Some(skip),
                Links::Chain | Links::Base => None,
            },
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
        self.persist(vault)?;
        self.write_head(head).await?;
        self.state.own = head;
        self.state.uploaded = mark;
        self.state.pending = None;
        self.persist(vault)?;
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

/// `records` (client, record) as events of at most [`BASE_EVENT_RECORDS`] records and about
/// [`BASE_EVENT_BYTES`] each, numbered from 1 with a zero parent, written by `writer` at
/// `(wall_ms, counter)`: a base's, or a pack's.
pub(super) fn record_events<'a, R: std::borrow::Borrow<redoubt_vault::Record>>(
    records: impl Iterator<Item = (&'a [u8], R)>,
    writer: redoubt_vault::NodeId,
    (wall_ms, counter): (u64, u32),
) -> Result<Vec<Vec<u8>>, Error> {
    let mut chunks: Vec<Vec<v1::RecordChange>> = Vec::new();
    let mut bytes = 0usize;
    for (client, r) in records {
        let change = v1::RecordChange {
            client: client.to_vec(),
            record: r.borrow().clone(),
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
    let mut out = Vec::new();
    for (i, records) in chunks.into_iter().enumerate() {
        let event = v1::Event {
            seq: i as u64 + 1,
            parent: [0; 32],
            writer,
            wall_ms,
            counter,
            records,
            grants: Vec::new(),
        };
        out.push(encode_event(&event)?);
    }
    Ok(out)
}
