//! Packs (`docs/storage-format.md` 5.6 and 8): after a sync's upload, once enough segments
//! were written since the last pack of a level, one segment that holds the last version of
//! each location the run changed and links past the run, so a device that is behind reads the
//! pack instead of every segment of the run.

use redoubt_store::{Store, journal};
use redoubt_vault::Instance;

use super::{
    Remote, SyncReport,
    upload::{Links, PAGE, record_events},
};
use crate::{
    Access, Error,
    format::{SEGMENT_TARGET, SegmentKind, Skip},
    state::PACK_LEVELS,
};

/// The most journal event bytes one pack is built from: a run whose events pass this is not
/// packed (its net changes would likely pass [`SEGMENT_TARGET`] anyway), so building one never
/// holds more than this in memory.
const MAX_RUN_EVENT_BYTES: usize = 8 * SEGMENT_TARGET;

impl Remote {
    /// Writes the pack of the highest level whose run is due and can be built: level 1 once
    /// [`super::Compaction::pack_every`] segments were written since the last pack (or base),
    /// level 2 once its square was. A level whose pack cannot be built (the journal was folded
    /// past the run's start, the run's events pass [`MAX_RUN_EVENT_BYTES`] or its net changes
    /// [`SEGMENT_TARGET`], or reading them failed: then in [`SyncReport::failed`] under this
    /// device's id) starts its run again after the own head, and the next lower level that is
    /// due is tried; the segments stay readable one by one.
    pub(super) async fn pack(
        &mut self,
        vault: &mut impl Access,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let due: Vec<usize> = (0..PACK_LEVELS)
            .rev()
            .filter(|l| self.pack_due(*l))
            .collect();
        for level in due {
            let (origin, from_mark) = self.state.packs[level];
            let to = self.state.uploaded;
            let restart = (self.state.own, self.state.uploaded);
            match vault.read(|store| self.pack_events(store, from_mark, to)) {
                Ok(Some(events)) => {
                    let skip = Skip {
                        from: origin.seq + 1,
                        hash: origin.latest,
                        chain: origin.chain,
                    };
                    let up = self
                        .put_segment(vault, SegmentKind::Pack, events, to, Links::Pack(skip))
                        .await?;
                    report.uploaded.push(up);
                    let after = (self.state.own, self.state.uploaded);
                    for p in &mut self.state.packs[..=level] {
                        *p = after;
                    }
                    return self.persist(vault);
                }
                Ok(None) => {}
                Err(e) => report.failed.push((self.device.to_string(), e)),
            }
            self.state.packs[level] = restart;
            self.persist(vault)?;
        }
        Ok(())
    }

    /// Whether the run of pack level `level` (0-based) is long enough.
    fn pack_due(&self, level: usize) -> bool {
        let every = self.compaction.pack_every;
        if every < 2 {
            return false;
        }
        let run = (0..level).fold(every, |r, _| r.saturating_mul(every));
        let (origin, _) = self.state.packs[level];
        self.state.own.seq.saturating_sub(origin.seq) >= run
    }

    /// The pack of the local journal events after `from` through `to` (those the run's
    /// segments carried, and the merges from this remote between them, versions the device
    /// holds as newest): each location's last version in them, of the chosen clients, as base
    /// events, built page by page. `None` when the journal no longer reaches back to
    /// `from + 1`, or the events pass [`MAX_RUN_EVENT_BYTES`], or the pack [`SEGMENT_TARGET`].
    fn pack_events(
        &self,
        store: &Store,
        from: u64,
        to: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        if to > from && from + 1 < store.journal_oldest() {
            return Ok(None);
        }
        let mut scratch = Instance::new(store.node());
        let (mut next, mut read) = (from + 1, 0usize);
        'pages: while next <= to {
            let page = store.journal_page(next, PAGE)?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                if entry.seq > to {
                    break 'pages;
                }
                next = entry.seq + 1;
                let Some(plain) = self.carry(entry)? else {
                    continue;
                };
                read = read.saturating_add(plain.len());
                if read > MAX_RUN_EVENT_BYTES {
                    return Ok(None);
                }
                journal::apply(&mut scratch, &journal::decode(&plain)?)?;
            }
        }
        let records = scratch
            .clients()
            .flat_map(|(id, client)| scratch.records(id).map(move |r| (client, r)));
        let events = record_events(records, store.node(), store.clock().last())?;
        let size: usize = events.iter().map(|e| e.len() + 4).sum();
        Ok((size <= SEGMENT_TARGET).then_some(events))
    }
}
