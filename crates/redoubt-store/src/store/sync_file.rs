//! A local sync from another instance (`redoubt sync-file`): planned by the vault's own rule
//! ([`Instance::sync_from`]), committed as one transaction across every client it touches.

use redoubt_vault::{Instance, MergeReport, Record, SyncConfig};

use super::Store;
use crate::Error;

impl Store {
    /// Pulls from `source` as `config` says, exactly as [`Instance::sync_from`] would into
    /// [`Self::instance`] (same records taken, same report, same clock), and commits every
    /// version taken, across all clients, with the clock and ONE journal event, in one durable
    /// commit: a crash leaves the store as it was before the sync or as it is after, never
    /// half of it. Nothing is written when nothing changes.
    ///
    /// The plan runs on a copy of the live instance (the vault's rule is the one source of
    /// truth for what a sync takes): memory for the duration of the call is twice the
    /// instance's. Fails before changing anything if a client `config` selects is absent from
    /// `source` (the vault's `ClientNotFound`).
    pub fn sync_from(
        &mut self,
        source: &Instance,
        config: &SyncConfig,
    ) -> Result<MergeReport, Error> {
        let mut after = self.instance.clone();
        let report = after.sync_from(source, config)?;
        let changes = changed(&self.instance, &after);
        if changes.is_empty() && after.clock() == self.instance.clock() {
            return Ok(report);
        }
        self.commit(
            changes
                .iter()
                .map(|(client, record)| (client.as_slice(), record)),
            after.clock(),
        )?;
        self.instance = after;
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
            copy.sync_from(store.instance(), &SyncConfig::full())
                .unwrap();
            let mut expected = copy.instance().clone();
            let want = expected.sync_from(&source, &config).unwrap();
            let (head, _) = copy.journal_head();
            let got = copy.sync_from(&source, &config).unwrap();
            assert_eq!(got, want, "the same report as the vault's rule");
            assert_eq!(copy.instance().state_digest(), expected.state_digest());
            assert_eq!(copy.instance().clock(), expected.clock());
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
            assert_eq!(reopened.instance().state_digest(), expected.state_digest());
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
        let same = store.instance().clone();
        let head = store.journal_head();
        let report = store.sync_from(&same, &SyncConfig::full()).unwrap();
        assert!(!report.changed());
        assert_eq!(store.journal_head(), head);
        // A client the source lacks fails before anything changes.
        let config = SyncConfig::full().client(b"nobody").unwrap();
        assert!(store.sync_from(&same, &config).is_err());
        assert_eq!(store.journal_head(), head);
    }

    fn rand_name() -> String {
        let mut b = [0u8; 8];
        redoubt_crypto::fill_random(&mut b).unwrap();
        redoubt_vault::hex(&b)
    }
}
