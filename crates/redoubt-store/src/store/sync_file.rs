//! A local sync from another instance (`redoubt sync-file`): planned by the vault's own rule
//! ([`Instance::sync_from`]), committed as one transaction across every client it touches.

use redb::ReadableDatabase;
use redoubt_vault::{ClientId, Instance, MergeReport, Record, SyncConfig};

use super::{Store, sketch::Before};
use crate::Error;

impl Store {
    /// Pulls from `source` as `config` says, exactly as [`Instance::sync_from`] would into
    /// the state [`Self::load_instance`] reads (same records taken, same report; the same clock whenever a version
    /// is taken), and commits every
    /// version taken, across all clients, with the clock and its journal events (one, or as
    /// many consecutive ones as the caps on one event need), in ONE durable commit: a crash
    /// leaves the store as it was before the sync or as it is after, never half of it.
    ///
    /// Nothing is written when no version is taken, even if the source's stamps would move
    /// the clock: the store (its clock included) stays exactly as it
    /// was, and no empty journal event is made. A source is trusted no further than what it
    /// gave: stamps of versions it did not give us do not move our clock (so, under
    /// `KeepOld`, a later local write may be stamped below a refused remote version, which a
    /// later newest-wins sync would then prefer).
    ///
    /// The plan runs on the whole state read from the file, and a copy of it (the vault's rule
    /// is the one source of truth for what a sync takes): memory for the duration of the call
    /// is twice the vault's. Fails before changing anything if a client `config` selects is absent from
    /// `source` (the vault's `ClientNotFound`).
    pub fn sync_from(
        &mut self,
        source: &Instance,
        config: &SyncConfig,
    ) -> Result<MergeReport, Error> {
        let (before, damaged) =
            super::load_records(&self.db.begin_read()?, &self.keys, self.node, self.clock)?;
        let mut after = before.clone();
        let report = after.sync_from(source, config)?;
        let changes = changed(&before, &after);
        if changes.is_empty() {
            return Ok(report);
        }
        let was = |client: &[u8], record: &Record| {
            let id = ClientId::from_path(client);
            let ids = record.location().ids();
            match before.record(&id, ids) {
                Some(old) => Before::of(old),
                None if damaged.contains(&self.keys.record_row(&id, ids)) => Before::Damaged,
                None => Before::Absent,
            }
        };
        let befores: Vec<Before> = changes.iter().map(|(c, r)| was(c, r)).collect();
        self.commit(
            changes
                .iter()
                .zip(befores)
                .map(|((client, record), b)| (client.as_slice(), record, b)),
            after.clock(),
        )?;
        Ok(report)
    }
}

/// Every version `after` holds that `before` does not (by record hash), with its client path,
/// in client then location order.
fn changed(before: &Instance, after: &Instance) -> Vec<(Vec<u8>, Record)> {
    let mut out = Vec::new();
    for (client_id, client) in after.clients() {
        for record in after.records(client_id) {
            let old = before.record(client_id, record.location().ids());
            if old.is_none_or(|old| old.hash() != record.hash()) {
                out.push((client.to_vec(), record.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use redoubt_snapshot::{KdfLimits, KdfParams};
    use redoubt_vault::{Location, MergePolicy, NodeId, SecretValue};

    use super::*;
    use crate::Password;

    fn value(v: &[u8]) -> SecretValue {
        SecretValue::new(v.to_vec())
    }

    #[test]
    fn a_sync_commits_once_across_clients_and_matches_the_vault_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.redb");
        let pw = Password::new(b"pw".to_vec());
        let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
        let loc = |r: &str| Location::new("v", r).unwrap();
        store.put(b"alice", &loc("mine"), value(b"m")).unwrap();
        store.put(b"alice", &loc("both"), value(b"old")).unwrap();

        let mut source = Instance::new(NodeId::from_bytes([9; 16]));
        source.write(b"alice", &loc("both"), value(b"new")).unwrap();
        source.write(b"alice", &loc("theirs"), value(b"t")).unwrap();
        source.write(b"bob", &loc("x"), value(b"b")).unwrap();

        for config in [
            SyncConfig::full(),
            SyncConfig::full().policy(MergePolicy::KeepOld),
            SyncConfig::full().map_vault(b"v", b"w").unwrap(),
            SyncConfig::full().client(b"bob").unwrap(),
        ] {
            let mut copy = Store::create(
                &dir.path().join(format!("{}.redb", rand_name())),
                &pw,
                KdfParams::insecure_fast(),
            )
            .unwrap();
            // The same starting state: the store's own records synced in.
            copy.sync_from(&store.load_instance().unwrap(), &SyncConfig::full())
                .unwrap();
            let mut expected = copy.load_instance().unwrap();
            let want = expected.sync_from(&source, &config).unwrap();
            let (head, _) = copy.journal_head();
            let got = copy.sync_from(&source, &config).unwrap();
            assert_eq!(got, want, "the same report as the vault's rule");
            assert_eq!(copy.state_digest().unwrap(), expected.state_digest());
            assert_eq!(copy.clock(), expected.clock());
            if got.changed() {
                assert_eq!(
                    copy.journal_head().0,
                    head + 1,
                    "one commit for the whole sync"
                );
            }
            // What was committed is what opens.
            let at = copy.path().to_path_buf();
            drop(copy);
            let reopened = Store::open(&at, &pw, &KdfLimits::default()).unwrap();
            assert_eq!(reopened.state_digest().unwrap(), expected.state_digest());
        }
    }

    #[test]
    fn a_sync_that_changes_nothing_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Password::new(b"pw".to_vec());
        let mut store =
            Store::create(&dir.path().join("a.redb"), &pw, KdfParams::insecure_fast()).unwrap();
        let loc = Location::new("v", "r").unwrap();
        store.put(b"c", &loc, value(b"x")).unwrap();
        let same = store.load_instance().unwrap();
        let head = store.journal_head();
        let report = store.sync_from(&same, &SyncConfig::full()).unwrap();
        assert!(!report.changed());
        assert_eq!(store.journal_head(), head);
        // A client the source lacks fails before anything changes.
        let config = SyncConfig::full().client(b"nobody").unwrap();
        assert!(store.sync_from(&same, &config).is_err());
        assert_eq!(store.journal_head(), head);
    }

    #[test]
    fn a_sync_past_the_event_caps_is_one_commit_of_consecutive_events_within_them() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Password::new(b"pw".to_vec());
        let mut source = Instance::new(NodeId::from_bytes([9; 16]));
        for i in 0..10 {
            let loc = Location::new("v", format!("r{i}")).unwrap();
            source.write(b"alice", &loc, value(b"0123456789")).unwrap();
        }
        let one = |r: &Record| 2 + b"alice".len() + crate::journal::v1::LAYOUT.encoded_len(r);
        let sizes: Vec<usize> = source
            .clients()
            .flat_map(|(id, _)| source.records(id).map(one))
            .collect();
        assert!(
            sizes.windows(2).all(|w| w[0] == w[1]),
            "every change the same size"
        );
        let empty = crate::journal::v1::HEADER_LEN + 8;
        for (max_len, max_records, events) in [
            // Exactly three changes fit by length: 3 + 3 + 3 + 1.
            (empty + 3 * sizes[0], usize::MAX, 4),
            // One byte short of three: two per event.
            (empty + 3 * sizes[0] - 1, usize::MAX, 5),
            // By count: four per event.
            (usize::MAX, 4, 3),
            // Under both caps: one event.
            (usize::MAX, usize::MAX, 1),
        ] {
            let path = dir.path().join(format!("{}.redb", rand_name()));
            let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
            store.set_journal_event_caps(max_len, max_records);
            let report = store.sync_from(&source, &SyncConfig::full()).unwrap();
            assert_eq!(report.added, 10);
            assert_eq!(
                store.journal_head().0,
                events,
                "events at {max_len}/{max_records}"
            );
            let kept = store.journal(0).unwrap();
            assert_eq!(kept.len() as u64, events);
            let mut changes = 0;
            for e in &kept {
                let v1 = e.event.as_v1().unwrap();
                assert!(crate::journal::encode(&e.event).unwrap().len() <= max_len);
                assert!(v1.records.len() <= max_records);
                assert!(!v1.records.is_empty(), "no empty event");
                changes += v1.records.len();
            }
            assert_eq!(changes, 10, "every change journaled once");
            // Replaying the events onto an empty instance gives the store's records.
            let mut replay = Instance::new(store.node());
            for e in &kept {
                crate::journal::apply(&mut replay, &e.event).unwrap();
            }
            assert_eq!(replay.state_digest(), store.state_digest().unwrap());
            drop(store);
            let reopened = Store::open(&path, &pw, &KdfLimits::default()).unwrap();
            assert_eq!(reopened.journal(0).unwrap().len() as u64, events);
            assert_eq!(reopened.len(), 10);
        }

        // One change alone over the cap: refused, nothing written.
        let path = dir.path().join("small.redb");
        let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
        store.set_journal_event_caps(empty + sizes[0] - 1, usize::MAX);
        let err = store.sync_from(&source, &SyncConfig::full()).unwrap_err();
        assert!(err.to_string().contains("over the event cap"), "{err}");
        assert_eq!(store.journal_head().0, 0);
        assert_eq!(store.len(), 0);
        drop(store);
        let reopened = Store::open(&path, &pw, &KdfLimits::default()).unwrap();
        assert_eq!(reopened.len(), 0);
    }

    #[test]
    fn a_sync_that_only_moves_the_clock_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Password::new(b"pw".to_vec());
        let path = dir.path().join("a.redb");
        let mut store = Store::create(&path, &pw, KdfParams::insecure_fast()).unwrap();
        let loc = Location::new("v", "r").unwrap();
        store.put_at(b"c", &loc, value(b"mine"), 1_000).unwrap();
        // The source's version is newer (now, against 1 s after the epoch): kept out by
        // keep-old, but its stamp is ahead of the clock.
        let mut source = Instance::new(NodeId::from_bytes([9; 16]));
        source
            .write_at(b"c", &loc, value(b"theirs"), redoubt_vault::now_ms())
            .unwrap();
        let config = SyncConfig::full().policy(MergePolicy::KeepOld);
        let mut planned = store.load_instance().unwrap();
        planned.sync_from(&source, &config).unwrap();
        assert_ne!(planned.clock(), store.clock(), "the clock would move");
        let (head, clock) = (store.journal_head(), store.clock());
        let report = store.sync_from(&source, &config).unwrap();
        assert!(!report.changed(), "{report:?}");
        assert_eq!(store.journal_head(), head, "no journal event");
        assert_eq!(store.clock(), clock);
        // Nor on the file: the clock row and the journal are as they were.
        drop(store);
        let reopened = Store::open(&path, &pw, &KdfLimits::default()).unwrap();
        assert_eq!(reopened.journal_head(), head);
        assert_eq!(reopened.clock(), clock);
    }

    fn rand_name() -> String {
        let mut b = [0u8; 8];
        redoubt_crypto::fill_random(&mut b).unwrap();
        redoubt_vault::hex(&b)
    }
}
