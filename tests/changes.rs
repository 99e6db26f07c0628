//! The change stream a vault gives its app: every committed change names its location and why
//! (a local write, a merge from a peer, a resolved conflict), is sent after its commit, and a
//! subscriber that falls behind is told so instead of missing changes silently.

use redoubt_node::{
    CHANGE_BUFFER, Cause, Change, ChangeEvent, Changes, Origin, Vault, What, libp2p::PeerId,
};
use redoubt_protocol::Mode;
use redoubt_remote::{Backend, Remote};
use redoubt_store::{KdfLimits, KdfParams, Store};
use redoubt_tests::TestNode;
use redoubt_vault::{AccessTable, Instance, Location, NodeId, SecretValue};

fn full(client: &str) -> Mode {
    Mode::Full {
        client: client.as_bytes().to_vec(),
    }
}

fn loc(record: &str) -> Location {
    Location::new("wallet", record).unwrap_or_else(|e| panic!("{e}"))
}

/// Every change waiting now, in order.
fn drain(changes: &mut Changes) -> Vec<ChangeEvent> {
    std::iter::from_fn(|| changes.try_next()).collect()
}

fn changed(client: &str, record: &str, what: What, cause: Cause) -> ChangeEvent {
    ChangeEvent::Changed(Change::new(
        client.as_bytes().to_vec(),
        loc(record),
        what,
        cause,
    ))
}

/// An empty vault in memory, with no peer and no grant.
fn empty_vault() -> anyhow::Result<Vault> {
    Ok(Vault::new(empty_store(1)?))
}

/// An empty store in memory, written by node `n`.
fn empty_store(n: u8) -> anyhow::Result<Store> {
    Ok(Store::in_memory_from(
        Instance::new(NodeId::from_bytes([n; 16])),
        &AccessTable::default(),
    )?)
}

fn from_peer(peer: PeerId) -> Origin {
    Origin::Peer(peer.to_base58())
}

#[test]
fn local_writes_deletes_and_restores_are_told_in_order_after_their_commit() -> anyhow::Result<()> {
    let mut vault = empty_vault()?;
    let mut changes = vault.changes();
    let seed = loc("seed");
    vault.put(b"alice", &seed, SecretValue::new(b"one".to_vec()))?;
    let first = vault
        .store()
        .record(b"alice", &seed)?
        .map(|r| *r.version_hash())
        .ok_or_else(|| anyhow::anyhow!("no record"))?;
    vault.put(b"alice", &seed, SecretValue::new(b"two".to_vec()))?;
    vault.delete(b"alice", &seed)?;
    vault.revert(b"alice", &seed, &first)?;

    assert_eq!(
        drain(&mut changes),
        vec![
            changed("alice", "seed", What::Written, Cause::Local),
            changed("alice", "seed", What::Written, Cause::Local),
            changed("alice", "seed", What::Deleted, Cause::Local),
            changed("alice", "seed", What::Written, Cause::Local),
        ]
    );
    // Sent after the commit: what it names is there to read.
    assert_eq!(
        vault.get(b"alice", &seed)?.map(|v| v.expose().to_vec()),
        Some(b"one".to_vec())
    );
    // A refused change tells nothing.
    assert!(vault.delete(b"alice", &loc("absent")).is_err());
    assert_eq!(changes.try_next(), None);
    Ok(())
}

#[tokio::test]
async fn a_pull_names_each_merged_location_and_the_peer_it_came_from() -> anyhow::Result<()> {
    let (desktop, phone) = TestNode::two_trusting("alice").await?;
    desktop.put("alice", "wallet", "seed", b"s3cret");
    desktop.put("alice", "wallet", "pin", b"1234");
    let mut changes = phone.handle.changes();

    phone.handle.pull(&desktop.addr(), full("alice")).await?;
    let mut got = drain(&mut changes);
    got.sort_by_key(|e| format!("{e:?}"));
    let merged = Cause::Merged {
        from: from_peer(desktop.peer()),
    };
    let mut want = vec![
        changed("alice", "seed", What::Written, merged.clone()),
        changed("alice", "pin", What::Written, merged.clone()),
    ];
    want.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(got, want);
    // Each was committed before it was told.
    assert_eq!(
        phone.get("alice", "wallet", "seed"),
        Some(b"s3cret".to_vec())
    );

    // A delete pushed to the phone (it pulls what the desktop invites) is told as one.
    desktop.delete("alice", "wallet", "pin");
    desktop.handle.push(&phone.addr(), full("alice")).await?;
    assert_eq!(
        drain(&mut changes),
        vec![changed("alice", "pin", What::Deleted, merged)]
    );
    // Nothing new to pull tells nothing.
    phone.handle.pull(&desktop.addr(), full("alice")).await?;
    assert_eq!(changes.try_next(), None);
    Ok(())
}

#[tokio::test]
async fn concurrent_edits_are_told_as_a_resolved_conflict() -> anyhow::Result<()> {
    let (desktop, phone) = TestNode::two_trusting("alice").await?;
    desktop.put("alice", "wallet", "seed", b"from the desktop");
    phone.put("alice", "wallet", "seed", b"from the phone");
    let mut changes = phone.handle.changes();

    phone.handle.pull(&desktop.addr(), full("alice")).await?;
    let got = drain(&mut changes);
    assert_eq!(got.len(), 1, "{got:?}");
    match &got[0] {
        ChangeEvent::Changed(change) => {
            assert_eq!(change.location, loc("seed"));
            assert_eq!(
                change.cause,
                Cause::ConflictResolved {
                    from: from_peer(desktop.peer())
                }
            );
            // Whichever version won, the loser is kept in the history: the location changed.
            assert!(
                matches!(change.what, What::Written | What::History),
                "{change:?}"
            );
        }
        other => panic!("not a change: {other:?}"),
    }
    Ok(())
}

#[test]
fn a_subscriber_that_falls_behind_is_told_it_lagged_and_then_gets_what_follows()
-> anyhow::Result<()> {
    let mut vault = empty_vault()?;
    let mut slow = vault.changes();
    let extra = 6;
    for i in 0..CHANGE_BUFFER + extra {
        vault.put(b"alice", &loc(&format!("r{i}")), SecretValue::new(vec![1]))?;
    }
    let got = drain(&mut slow);
    assert_eq!(got.len(), 1 + CHANGE_BUFFER);
    assert_eq!(
        got[0],
        ChangeEvent::Lagged {
            missed: extra as u64
        }
    );
    // What it still holds is the newest changes, in order, the last one last.
    assert_eq!(
        got[CHANGE_BUFFER],
        changed(
            "alice",
            &format!("r{}", CHANGE_BUFFER + extra - 1),
            What::Written,
            Cause::Local
        )
    );
    // And it goes on receiving.
    vault.put(b"alice", &loc("after"), SecretValue::new(vec![2]))?;
    assert_eq!(
        drain(&mut slow),
        vec![changed("alice", "after", What::Written, Cause::Local)]
    );
    Ok(())
}

#[test]
fn the_stream_ends_when_the_vault_is_gone() -> anyhow::Result<()> {
    let vault = empty_vault()?;
    let mut changes = vault.changes();
    drop(vault);
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    assert_eq!(rt.block_on(changes.next()), None);
    Ok(())
}

#[tokio::test]
async fn a_remote_sync_names_each_merged_location_and_the_remote_it_came_from() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let url = dir.path().to_str().ok_or_else(|| anyhow::anyhow!("path"))?;
    let (mut laptop, mut phone) = (empty_store(1)?, empty_store(2)?);
    let passphrase = b"correct horse battery staple";
    let mut on_laptop = Remote::add(
        &mut laptop,
        "nas",
        url,
        Backend::from_url(url)?,
        None,
        passphrase,
        KdfParams::insecure_fast(),
    )
    .await?;
    let mut on_phone = Remote::join(
        &mut phone,
        "nas",
        url,
        Backend::from_url(url)?,
        None,
        passphrase,
        &KdfLimits::default(),
    )
    .await?;
    let (mut laptop, mut phone) = (Vault::new(laptop), Vault::new(phone));
    laptop.put(b"alice", &loc("seed"), SecretValue::new(b"one".to_vec()))?;
    laptop.put(b"alice", &loc("pin"), SecretValue::new(b"1234".to_vec()))?;
    on_laptop.sync(&mut laptop).await?;

    let mut changes = phone.changes();
    let report = on_phone.sync(&mut phone).await?;
    assert_eq!(report.merge.added, 2, "{report:?}");
    let from = || Cause::Merged {
        from: Origin::Remote("nas".into()),
    };
    let mut got = drain(&mut changes);
    got.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        got,
        [
            changed("alice", "pin", What::Written, from()),
            changed("alice", "seed", What::Written, from()),
        ]
    );
    // A delete travels back and is told as one too; the laptop's own upload is not.
    let mut on_laptop_changes = laptop.changes();
    phone.delete(b"alice", &loc("pin"))?;
    on_phone.sync(&mut phone).await?;
    assert!(
        drain(&mut changes)
            .iter()
            .all(|e| matches!(e, ChangeEvent::Changed(c) if c.cause == Cause::Local))
    );
    on_laptop.sync(&mut laptop).await?;
    assert_eq!(
        drain(&mut on_laptop_changes),
        [changed("alice", "pin", What::Deleted, from())]
    );
    assert!(
        laptop.get(b"alice", &loc("pin"))?.is_none(),
        "the delete came through"
    );
    Ok(())
}
