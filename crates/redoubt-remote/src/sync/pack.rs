//! Packs (`docs/storage-format.md` 5.6 and 8): after a sync's upload, once enough segments
//! were written since the last pack of a level, one segment that holds the last version of
//! each location the run changed and links past the run, so a device that is behind reads the
//! pack instead of every segment of the run.

use redoubt_store::{Store, journal};
use redoubt_vault::Instance;

use super::{
    Remote, SyncReport,
    upload::{Links, record_events},
};
use crate::{
    Access, Error,
    format::{SEGMENT_TARGET, SegmentKind, Skip},
    state::PACK_LEVELS,
};

impl Remote {
    /// Writes the pack of the highest level whose run is due, if one is: level 1 once
    /// [`super::Compaction::pack_every`] segments were written since the last pack (or base),
    /// level 2 once its square was. A pack that cannot be built (the journal was folded past
    /// the run's start, or the run's net changes pass [`SEGMENT_TARGET`]) is not written: that
    /// level's run starts again after the own head, and its segments stay readable one by one.
    pub(super) async fn pack(
        &mut self,
        vault: &mut impl Access,
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let Some(level) = self.pack_due() else {
            return Ok(());
        };
        let (origin, from_mark) = self.state.packs[level];
        let to = self.state.uploaded;
        let events = vault.read(|store| self.pack_events(store, from_mark, to))?;
        if let Some(events) = events {
            let skip = Skip {
                from: origin.seq + 1,
                hash: origin.latest,
                chain: origin.chain,
            };
            let up = self
                .put_segment(vault, SegmentKind::Pack, events, to, Links::Pack(skip))
                .await?;
            report.uploaded.push(up);
        }
        let restart = (self.state.own, self.state.uploaded);
        for p in &mut self.state.packs[..=level] {
            *p = restart;
        }
        self.persist(vault)
    }

    /// The highest pack level (0-based) whose run is long enough, if any.
    fn pack_due(&self) -> Option<usize> {
        let every = self.compaction.pack_every;
        if every < 2 {
            return None;
        }
        let mut run = every;
        let mut due = None;
        for (level, (origin, _)) in self.state.packs.iter().enumerate().take(PACK_LEVELS) {
            if self.state.own.seq.saturating_sub(origin.seq) >= run {
                due = Some(level);
            }
            run = run.saturating_mul(every);
        }
        due
    }

    /// The pack of the local journal events after `from` through `to` (those the run's
    /// segments carried, and the merges from this remote between them): each location's last
    /// version in them, of the chosen clients, as base events. `None` when the journal no
    /// longer reaches back to `from + 1` or the pack would pass [`SEGMENT_TARGET`].
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
        for plain in self.new_events(store, from + 1, to)? {
            let event = journal::decode(&plain)?;
            journal::apply(&mut scratch, &event)?;
        }
        let records = scratch
            .clients()
            .flat_map(|(id, client)| scratch.records(id).map(move |r| (client, r)));
        let events = record_events(records, store.node(), store.instance().clock().last())?;
        let size: usize = events.iter().map(|e| e.len() + 4).sum();
        Ok((size <= SEGMENT_TARGET).then_some(events))
    }
}
