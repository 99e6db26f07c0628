//! The store's side of the journal: appending one event per commit (several consecutive ones
//! for a commit past one event's caps; always in the commit's own transaction), reading the chain back with every link checked, and folding old events away.

use redb::{Durability, ReadTransaction, ReadableDatabase, ReadableTable};
use redoubt_vault::{
    Clock,
    codec::{Reader, Writer},
};

use super::Store;
use crate::{
    Error,
    envelope::{
        JOURNAL_STATE_AAD_LABEL, open_event, open_state, random_nonce, seal_event, seal_state,
    },
    journal::{self, Entry, Limits, v1, v2},
    keys::Keys,
    tables::{JOURNAL, META, META_JOURNAL_FOLDED, Tables, read_row},
};

/// What the store knows of its journal between commits.
#[derive(Clone, Debug)]
pub(super) struct JournalState {
    /// The last event's sequence number (0 before the first) and hash.
    head: (u64, [u8; 32]),
    /// The oldest kept event's sequence number; `head + 1` when none is kept.
    oldest: u64,
    /// The last folded event's sequence number and hash (zero when none was folded): the
    /// parent the oldest kept event must name.
    folded: (u64, [u8; 32]),
    limits: Limits,
    /// The largest event a commit writes and the most record changes it holds: the format's
    /// caps ([`v1::MAX_EVENT_LEN`], [`v1::MAX_RECORDS`]) unless a test lowers them.
    caps: (usize, usize),
}

/// A sealed event, ready to go into a commit.
pub(super) struct Pending {
    seq: u64,
    hash: [u8; 32],
    sealed: Vec<u8>,
}

/// Events a commit folds: every kept event before `cutoff`; the last of them is `folded`.
pub(super) struct Folding {
    cutoff: u64,
    folded: (u64, [u8; 32]),
}

impl JournalState {
    /// The state of an empty journal.
    pub(super) fn empty() -> Self {
        Self {
            head: (0, [0; 32]),
            oldest: 1,
            folded: (0, [0; 32]),
            limits: Limits::default(),
            caps: (v1::MAX_EVENT_LEN, v1::MAX_RECORDS),
        }
    }

    /// Reads the head (from the last row, opened and hashed), the oldest kept row and the
    /// folded-through row. A store written before the journal existed has none of them. A
    /// last row that fails to open does not fail the load: the sequence continues after it,
    /// and reading the journal names it.
    pub(super) fn load(tx: &ReadTransaction, keys: &Keys) -> Result<Self, Error> {
        let mut state = Self::empty();
        if let Some(row) = read_row(tx, META, META_JOURNAL_FOLDED)? {
            state.folded = open_folded(keys, &row)?;
        }
        state.head = state.folded;
        state.oldest = state.folded.0 + 1;
        let table = match tx.open_table(JOURNAL) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(state),
            Err(e) => return Err(e.into()),
        };
        if let Some((seq, _)) = table.first()? {
            state.oldest = seq.value();
        }
        if let Some((seq, value)) = table.last()? {
            let seq = seq.value();
            let hash = open_event(&keys.journal, seq, value.value())
                .and_then(|plain| journal::hash(&plain))
                .unwrap_or([0; 32]);
            state.head = (seq, hash);
        }
        Ok(state)
    }
}

impl Store {
    /// Seals the next event: `records` and `grants` changed at the writer's clock reading
    /// `clock`, after the current head.
    pub(super) fn next_event(
        &self,
        clock: Clock,
        records: Vec<v1::RecordChange>,
        grants: Vec<v1::GrantChange>,
    ) -> Result<Pending, Error> {
        self.event_after(self.journal.head, clock, records, grants)
    }

    /// Seals the event after `(seq, parent)`.
    fn event_after(
        &self,
        (seq, parent): (u64, [u8; 32]),
        clock: Clock,
        records: Vec<v1::RecordChange>,
        grants: Vec<v1::GrantChange>,
    ) -> Result<Pending, Error> {
        let seq = seq.checked_add(1).ok_or(Error::Corrupted(
            "the journal's sequence numbers are exhausted",
        ))?;
        let (wall_ms, counter) = clock.last();
        let event = v1::Event {
            seq,
            parent,
            writer: self.node(),
            wall_ms,
            counter,
            records,
            grants,
        };
        // Version 1 unless a record carries lineage, so stores without it stay as they were.
        let (plain, hash) = if v2::needed(&event) {
            let plain = v2::encode(&event)?;
            let hash = v2::hash(&plain);
            (plain, hash)
        } else {
            let plain = v1::encode(&event)?;
            let hash = v1::hash(&plain);
            (plain, hash)
        };
        let sealed = seal_event(&self.keys.journal, seq, &plain, &random_nonce()?)?;
        Ok(Pending { seq, hash, sealed })
    }

    /// Seals `records` (changed at the writer's clock reading `clock`) as consecutive events
    /// after the current head, as few as the caps on one event allow (at least one): the events
    /// of ONE commit, each within [`v1::MAX_EVENT_LEN`] and [`v1::MAX_RECORDS`], so a commit of
    /// any size can be journaled. Fails before sealing anything if one change alone is over the
    /// cap.
    pub(super) fn next_events(
        &self,
        clock: Clock,
        records: Vec<v1::RecordChange>,
    ) -> Result<Vec<Pending>, Error> {
        let (max_len, max_records) = self.journal.caps;
        // An event's fixed part; version 2 (a record with lineage in it) adds its wrapper.
        let empty =
            |lineage: bool| v1::HEADER_LEN + 4 + 4 + if lineage { v2::WRAPPER_LEN } else { 0 };
        let mut chunks: Vec<Vec<v1::RecordChange>> = Vec::new();
        let mut chunk = Vec::new();
        // The chunk's length as a version 1 event and as a version 2 one (each record change
        // then carries its lineage, at least two bytes).
        let (mut len_v1, mut len_v2, mut chunk_lineage) = (0usize, 0usize, false);
        for change in records {
            let one_v1 = 2 + change.client.len() + v1::LAYOUT.encoded_len(&change.record);
            let one_v2 = v2::change_len(&change);
            let lineage = change.record.has_lineage();
            let one = if lineage { one_v2 } else { one_v1 };
            if empty(lineage).saturating_add(one) > max_len {
                return Err(Error::Malformed(
                    "journal event too large: one record change is over the event cap",
                ));
            }
            let after = if lineage || chunk_lineage {
                empty(true).saturating_add(len_v2).saturating_add(one_v2)
            } else {
                empty(false).saturating_add(len_v1).saturating_add(one_v1)
            };
            if !chunk.is_empty() && (after > max_len || chunk.len() >= max_records) {
                chunks.push(std::mem::take(&mut chunk));
                (len_v1, len_v2, chunk_lineage) = (0, 0, false);
            }
            len_v1 = len_v1.saturating_add(one_v1);
            len_v2 = len_v2.saturating_add(one_v2);
            chunk_lineage |= lineage;
            chunk.push(change);
        }
        chunks.push(chunk);
        let mut out = Vec::with_capacity(chunks.len());
        let mut head = self.journal.head;
        for chunk in chunks {
            let pending = self.event_after(head, clock, chunk, Vec::new())?;
            head = (pending.seq, pending.hash);
            out.push(pending);
        }
        Ok(out)
    }

    /// Inserts every one of `pending` (consecutive events from [`Self::next_events`]) into the
    /// commit's tables, folding as [`Self::append`] does after the last.
    pub(super) fn append_all(
        &self,
        t: &mut Tables<'_>,
        pending: &[Pending],
    ) -> Result<Option<Folding>, Error> {
        let Some((last, before)) = pending.split_last() else {
            return Ok(None);
        };
        for p in before {
            t.journal.insert(p.seq, p.sealed.as_slice())?;
        }
        self.append(t, last)
    }

    /// After the commit of `pending` (and `folding`): the new head, the last event's.
    pub(super) fn appended_all(&mut self, mut pending: Vec<Pending>, folding: Option<Folding>) {
        if let Some(last) = pending.pop() {
            self.appended(last, folding);
        }
    }

    /// Lowers the caps on one event a commit writes (the format's are 256 MiB and 2^20 record
    /// changes), so tests reach them quickly. Not stored; tests only.
    #[doc(hidden)]
    pub fn set_journal_event_caps(&mut self, max_len: usize, max_records: usize) {
        self.journal.caps = (
            max_len.min(v1::MAX_EVENT_LEN),
            max_records.clamp(1, v1::MAX_RECORDS),
        );
    }

    /// Inserts `pending` into the commit's tables and, when that takes the journal past its
    /// count, folds the oldest events in the same commit (a cheap check; folding is skipped,
    /// and left to [`Self::fold`], if the last event to fold does not open).
    pub(super) fn append(
        &self,
        t: &mut Tables<'_>,
        pending: &Pending,
    ) -> Result<Option<Folding>, Error> {
        t.journal.insert(pending.seq, pending.sealed.as_slice())?;
        let max = self.journal.limits.max_events.max(1);
        let kept = pending.seq + 1 - self.journal.oldest;
        if kept <= max {
            return Ok(None);
        }
        let cutoff = (self.journal.oldest + (kept - max) + max / 64).min(pending.seq);
        let last = cutoff - 1;
        let hash = match t.journal.get(last)? {
            Some(v) => open_event(&self.keys.journal, last, v.value())
                .and_then(|plain| journal::hash(&plain))
                .ok(),
            None => None,
        };
        let Some(hash) = hash else {
            return Ok(None);
        };
        let folding = Folding {
            cutoff,
            folded: (last, hash),
        };
        self.fold_rows(t, &folding)?;
        Ok(Some(folding))
    }

    /// After the commit of `pending` (and `folding`): the new head.
    pub(super) fn appended(&mut self, pending: Pending, folding: Option<Folding>) {
        self.journal.head = (pending.seq, pending.hash);
        if let Some(f) = folding {
            self.journal.oldest = f.cutoff;
            self.journal.folded = f.folded;
        }
    }

    fn fold_rows(&self, t: &mut Tables<'_>, folding: &Folding) -> Result<(), Error> {
        for seq in self.journal.oldest..folding.cutoff {
            t.journal.remove(seq)?;
        }
        let sealed = seal_folded(&self.keys, folding.folded)?;
        t.meta.insert(META_JOURNAL_FOLDED, sealed.as_slice())?;
        Ok(())
    }

    /// The journal's head: the last event's sequence number (0 before the first commit) and
    /// hash (all zero before the first commit).
    pub fn journal_head(&self) -> (u64, [u8; 32]) {
        self.journal.head
    }

    /// The oldest kept event's sequence number; `journal_head().0 + 1` when every event was
    /// folded (or none was written). Events before it were folded into the records table.
    pub fn journal_oldest(&self) -> u64 {
        self.journal.oldest
    }

    /// When events are folded (default: 30 days, 100 000 events).
    pub fn journal_limits(&self) -> Limits {
        self.journal.limits
    }

    /// Sets when events are folded, for this handle (not stored: each open starts from the
    /// defaults). Takes effect at the next commit or [`Self::fold`].
    pub fn set_journal_limits(&mut self, limits: Limits) {
        self.journal.limits = limits;
    }

    /// The kept events from `from_seq` on (from the oldest kept if `from_seq` is older: check
    /// [`Self::journal_oldest`] to tell whether some you asked for were folded), decoded, with
    /// the chain checked as they are read: each event opens under its own sequence number,
    /// names it, and names the hash of the one before as its parent (the oldest kept names the
    /// folded-through hash, or zero), and the last is the head. Any failure is
    /// [`Error::JournalBroken`] naming the event's sequence number.
    ///
    /// This holds every kept event in memory at once; [`Self::journal_page`] reads a bounded
    /// page.
    pub fn journal(&self, from_seq: u64) -> Result<Vec<Entry>, Error> {
        self.journal_page(from_seq, usize::MAX)
    }

    /// At most `max` kept events from `from_seq` on, checked as [`Self::journal`] checks them
    /// (the check that the last is the head applies when the page reaches it). Walk the whole
    /// journal in bounded memory by asking again from the last page's last sequence number
    /// plus one: each page re-checks its link to the one before.
    pub fn journal_page(&self, from_seq: u64, max: usize) -> Result<Vec<Entry>, Error> {
        let from = from_seq.max(self.journal.oldest);
        let (head, _) = self.journal.head;
        if from > head {
            return Ok(Vec::new());
        }
        let tx = self.db.begin_read()?;
        let table = tx.open_table(JOURNAL)?;
        let mut parent = if from == self.journal.oldest {
            self.journal.folded.1
        } else {
            let prev = from - 1;
            let row = table.get(prev)?.ok_or(Error::JournalBroken {
                seq: prev,
                reason: "the event is missing",
            })?;
            let plain = open_event(&self.keys.journal, prev, row.value())?;
            journal::hash(&plain).map_err(|_| broken(prev, "unknown schema version"))?
        };
        let mut out = Vec::new();
        let mut expect = from;
        for row in table.range(from..)? {
            if out.len() >= max {
                return Ok(out);
            }
            let (seq, value) = row?;
            let seq = seq.value();
            if seq != expect {
                return Err(broken(expect, "the event is missing"));
            }
            let plain = open_event(&self.keys.journal, seq, value.value())?;
            let event = journal::decode(&plain).map_err(|e| match e {
                Error::Malformed(reason) => broken(seq, reason),
                _ => broken(seq, "the event breaks a vault rule"),
            })?;
            if event.seq() != seq {
                return Err(broken(seq, "the event names another sequence number"));
            }
            if event.parent() != &parent {
                return Err(broken(
                    seq,
                    "the parent hash is not the previous event's hash",
                ));
            }
            parent = journal::hash(&plain).map_err(|_| broken(seq, "unknown schema version"))?;
            out.push(Entry {
                seq,
                hash: parent,
                event,
            });
            expect += 1;
        }
        if expect != head + 1 {
            return Err(broken(expect, "the journal ends before its head"));
        }
        if parent != self.journal.head.1 {
            return Err(broken(head, "the last event is not the head"));
        }
        Ok(out)
    }

    /// Folds away every event older than the retention window (by its wall-clock ms against
    /// `now_ms`) or beyond the count, in one durable commit; returns how many were folded.
    /// The records table already holds their result, so only journal rows are deleted, and the
    /// hash of the last one folded is kept (sealed) as the oldest kept event's parent.
    pub fn fold(&mut self, now_ms: u64) -> Result<u64, Error> {
        let (head, _) = self.journal.head;
        let oldest = self.journal.oldest;
        if oldest > head {
            return Ok(0);
        }
        let max = self.journal.limits.max_events.max(1);
        let by_count = (head + 1).saturating_sub(max).max(oldest);
        let mut cutoff = oldest;
        let mut folded = self.journal.folded;
        {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(JOURNAL)?;
            for row in table.range(oldest..=head)? {
                let (seq, value) = row?;
                let seq = seq.value();
                let plain = open_event(&self.keys.journal, seq, value.value())?;
                let event = journal::decode(&plain).map_err(|e| match e {
                    Error::Malformed(reason) => broken(seq, reason),
                    _ => broken(seq, "the event breaks a vault rule"),
                })?;
                let expired = event
                    .wall_ms()
                    .saturating_add(self.journal.limits.retention_ms)
                    < now_ms;
                if seq >= by_count && !expired {
                    break;
                }
                let hash =
                    journal::hash(&plain).map_err(|_| broken(seq, "unknown schema version"))?;
                folded = (seq, hash);
                cutoff = seq + 1;
            }
        }
        if cutoff == oldest {
            return Ok(0);
        }
        let folding = Folding { cutoff, folded };
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut t = Tables::new(&tx)?;
            self.fold_rows(&mut t, &folding)?;
        }
        tx.commit()?;
        self.journal.oldest = cutoff;
        self.journal.folded = folded;
        Ok(cutoff - oldest)
    }
}

fn broken(seq: u64, reason: &'static str) -> Error {
    Error::JournalBroken { seq, reason }
}

fn seal_folded(keys: &Keys, (seq, hash): (u64, [u8; 32])) -> Result<Vec<u8>, Error> {
    let mut w = Writer::<Error>::with_capacity(40);
    w.u64(seq);
    w.raw(&hash);
    seal_state(
        &keys.state,
        JOURNAL_STATE_AAD_LABEL,
        META_JOURNAL_FOLDED.as_bytes(),
        &w.into_bytes(),
        &random_nonce()?,
    )
}

fn open_folded(keys: &Keys, bytes: &[u8]) -> Result<(u64, [u8; 32]), Error> {
    let plain = open_state(
        &keys.state,
        JOURNAL_STATE_AAD_LABEL,
        META_JOURNAL_FOLDED.as_bytes(),
        bytes,
        "the journal's folded row does not open",
    )?;
    let bad = |_| Error::Corrupted("the journal's folded row is malformed");
    let mut r = Reader::<Error>::new(&plain);
    let folded = (r.u64().map_err(bad)?, r.array().map_err(bad)?);
    r.finish().map_err(bad)?;
    Ok(folded)
}
